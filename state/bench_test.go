package state

import (
	"encoding/binary"
	"testing"
)

// benchKey writes i as an 8-byte big-endian key into buf, the shape of an
// Int64-keyed store.
func benchKey(buf []byte, i int) []byte {
	binary.BigEndian.PutUint64(buf, uint64(i))
	return buf
}

var benchValue = make([]byte, 100)

func benchPebbleStore(b *testing.B) KeyValueStore {
	return openTestPebble(b, b.TempDir(), PebbleOptions{}).Store("bench")
}

func benchPut(b *testing.B, s KeyValueStore) { benchPutKeys(b, s, 1<<16) }

// benchPutKeys updates a working set of keys round and round.
func benchPutKeys(b *testing.B, s KeyValueStore, keys int) {
	b.Helper()
	key := make([]byte, 8)
	b.ReportAllocs()
	b.SetBytes(int64(len(key) + len(benchValue)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Put(benchKey(key, i%keys), benchValue); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPebblePut(b *testing.B) { benchPut(b, benchPebbleStore(b)) }

func BenchmarkMemoryPut(b *testing.B) { benchPut(b, NewInMemory("bench")) }

// BenchmarkCachedPut writes through a 1 MiB cache over a logged Pebble
// store, the default stack of an aggregation: "hot" updates 1Ki keys, which
// fit in the cache (collapsing); "cold" updates 64Ki keys, so nearly every
// Put evicts an entry, which costs an inner Get (the old value for the
// listener) and an inner Put.
func BenchmarkCachedPut(b *testing.B) {
	for _, c := range []struct {
		name string
		keys int
	}{{"hot", 1 << 10}, {"cold", 1 << 16}} {
		b.Run(c.name, func(b *testing.B) {
			cache := NewCached(NewLogged(benchPebbleStore(b), noLog), 1<<20)
			cache.SetFlushListener(func([]byte, []byte, []byte, int64) error { return nil })
			benchPutKeys(b, cache, c.keys)
		})
	}
}

func BenchmarkPebbleGet(b *testing.B) {
	s := benchPebbleStore(b)
	key := make([]byte, 8)
	const n = 1 << 16
	for i := 0; i < n; i++ {
		if err := s.Put(benchKey(key, i), benchValue); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v, err := s.Get(benchKey(key, i%n))
		if err != nil || v == nil {
			b.Fatal(v, err)
		}
	}
}

// BenchmarkRestoreBatch restores 1000-entry batches, the unit a changelog
// fetch hands over; one op is one batch, and records/s is reported too.
func BenchmarkRestoreBatch(b *testing.B) {
	for _, kind := range []struct {
		name string
		open func(b *testing.B) KeyValueStore
	}{
		{"pebble", benchPebbleStore},
		{"memory", func(*testing.B) KeyValueStore { return NewInMemory("bench") }},
	} {
		b.Run(kind.name, func(b *testing.B) {
			r := kind.open(b).(Restorer)
			const size = 1000
			batch := make([]KeyValue, size)
			keys := make([]byte, 8*size)
			for i := range batch {
				batch[i] = KeyValue{Key: keys[8*i : 8*i+8], Value: benchValue}
			}
			b.ReportAllocs()
			b.SetBytes(int64(size * (8 + len(benchValue))))
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				for i := range batch {
					benchKey(batch[i].Key, n*size+i)
				}
				if err := r.RestoreBatch(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
