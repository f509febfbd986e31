// Package ktable is the typed DSL for changelog streams materialized as
// tables (Kafka Streams' KTable). Tables are built by aggregations and by
// reading a topic as a table; the typed handles live in internal/dsl and are
// re-exported here, like kstream's, so the two packages never import each
// other's internals in a cycle.
//
// This package is thin until state stores land: it holds the shared names.
package ktable

import "github.com/kstreams-go/kstreams/kstream"

// KeyValue is a table row.
type KeyValue[K, V any] = kstream.KeyValue[K, V]
