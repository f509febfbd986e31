// Package testutil helps test kstreams applications: an in-memory
// TopologyTestDriver-like test driver (driver.go) and an in-process Kafka
// cluster over the real wire protocol (cluster.go).
package testutil
