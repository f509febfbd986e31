// Package deploy holds what runs the wordcount example in containers
// besides the repository's top-level Dockerfile and docker-compose.yml:
// the Prometheus configuration, and a test that checks those files agree
// with each other and with the code, since CI has no Docker engine to run
// them. It has no code to import.
package deploy
