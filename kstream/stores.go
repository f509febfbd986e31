package kstream

import "github.com/kstreams-go/kstreams/internal/topology"

// StoreSpec describes a key-value state store for processors of the
// Processor API. The zero value (plus a Name) is what Kafka Streams'
// Stores.keyValueStoreBuilder makes: a Pebble store backed by a changelog
// topic, without a cache.
type StoreSpec struct {
	// Name names the store and its changelog topic
	// "<application.id>-<Name>-changelog".
	Name string
	// InMemory keeps the store in memory instead of Pebble on disk; it is
	// restored from its changelog after a restart.
	InMemory bool
	// LoggingDisabled stops backing the store by a changelog topic: its
	// data is then lost with the instance.
	LoggingDisabled bool
	// LogConfig holds extra changelog topic configs (the changelog is
	// always compacted).
	LogConfig map[string]string
	// Caching puts a write cache in front of the store: reads see every
	// write at once, the inner store and the changelog get the latest
	// value of each key at each commit.
	Caching bool
}

// AddStateStore declares a store and connects it to the named processors
// (added by Process or ProcessValues, under their Named or generated
// names). A processor gets it in Init as
//
//	kv := ctx.Store("name").(state.KeyValueStore)
//
// and may read and write it through a typed view:
// state.Typed(kv, keySerde, valueSerde). Processors sharing a store are
// placed in one sub-topology.
func AddStateStore(b *Builder, spec StoreSpec, processors ...string) {
	b.Fail(b.Topology().AddStore(topology.StoreSpec{
		Name:      spec.Name,
		InMemory:  spec.InMemory,
		Logging:   !spec.LoggingDisabled,
		LogConfig: spec.LogConfig,
		Caching:   spec.Caching,
	}, processors...))
}
