package dsl

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/serde"
)

// generatedName matches names the builder made up (KSTREAM-<OP>-<index>).
var generatedName = regexp.MustCompile(`^KSTREAM.*-[0-9]{10}$`)

// Stream is a typed handle on a node of the graph whose output is a record
// stream of K keys and V values.
type Stream[K, V any] struct {
	b          *Builder
	node       string
	keySerde   serde.Serde[K] // nil: not known, DefaultSerde at sinks
	valueSerde serde.Serde[V]
	// keyChanged marks a stream whose key was changed since its source, so
	// a later key-based stateful operator must repartition it first.
	keyChanged bool
}

// NewStream makes a handle for node; operators in other packages use it.
func NewStream[K, V any](b *Builder, node string, ks serde.Serde[K], vs serde.Serde[V], keyChanged bool) *Stream[K, V] {
	return &Stream[K, V]{b: b, node: node, keySerde: ks, valueSerde: vs, keyChanged: keyChanged}
}

// Builder returns the builder the stream belongs to.
func (s *Stream[K, V]) Builder() *Builder { return s.b }

// NodeName is the name of the node producing this stream.
func (s *Stream[K, V]) NodeName() string { return s.node }

// KeySerde is the serde known for the key, or nil.
func (s *Stream[K, V]) KeySerde() serde.Serde[K] { return s.keySerde }

// ValueSerde is the serde known for the value, or nil.
func (s *Stream[K, V]) ValueSerde() serde.Serde[V] { return s.valueSerde }

// KeyChanged reports whether a key-based stateful operator must repartition.
func (s *Stream[K, V]) KeyChanged() bool { return s.keyChanged }

// AddProcessor adds a processor node below this stream and returns its name.
func (s *Stream[K, V]) AddProcessor(op string, name []Named, sup topology.Supplier) string {
	n := s.b.NameOr(nameOf(name), op)
	s.b.Fail(s.b.topo.AddProcessor(n, sup, s.node))
	return n
}

// Source adds a source node reading topics and returns its stream.
func Source[K, V any](b *Builder, c Consumed[K, V], topics ...string) *Stream[K, V] {
	name := b.NameOr(c.Name, "SOURCE")
	ks, vs := OrDefault(c.KeySerde), OrDefault(c.ValueSerde)
	_, kd := Untyped(ks)
	_, vd := Untyped(vs)
	spec := topology.SourceSpec{Topics: topics, KeyDeserializer: kd, ValueDeserializer: vd,
		RawKey: IsPassThrough(ks), RawValue: IsPassThrough(vs)}
	if c.TimestampExtractor != nil {
		ex := c.TimestampExtractor
		spec.TimestampExtractor = func(_ topology.Metadata, key, value any, ts int64) int64 {
			return ex(As[K](key), As[V](value), time.UnixMilli(ts)).UnixMilli()
		}
	}
	b.Fail(b.topo.AddSource(name, spec))
	return NewStream(b, name, c.KeySerde, c.ValueSerde, false)
}

func (s *Stream[K, V]) derive(node string) *Stream[K, V] {
	return NewStream(s.b, node, s.keySerde, s.valueSerde, s.keyChanged)
}

// Filter keeps the records for which pred is true.
func (s *Stream[K, V]) Filter(pred func(key K, value V) bool, name ...Named) *Stream[K, V] {
	return s.derive(s.AddProcessor("FILTER", name, topology.Funcs(func(ctx topology.Context, r topology.Record) error {
		if pred(As[K](r.Key), As[V](r.Value)) {
			ctx.Forward(r)
		}
		return nil
	})))
}

// FilterNot drops the records for which pred is true.
func (s *Stream[K, V]) FilterNot(pred func(key K, value V) bool, name ...Named) *Stream[K, V] {
	return s.derive(s.AddProcessor("FILTER", name, topology.Funcs(func(ctx topology.Context, r topology.Record) error {
		if !pred(As[K](r.Key), As[V](r.Value)) {
			ctx.Forward(r)
		}
		return nil
	})))
}

// Peek calls fn for each record and passes it on unchanged.
func (s *Stream[K, V]) Peek(fn func(key K, value V), name ...Named) *Stream[K, V] {
	return s.derive(s.AddProcessor("PEEK", name, topology.Funcs(func(ctx topology.Context, r topology.Record) error {
		fn(As[K](r.Key), As[V](r.Value))
		ctx.Forward(r)
		return nil
	})))
}

// Foreach calls fn for each record; it ends the stream.
func (s *Stream[K, V]) Foreach(fn func(key K, value V), name ...Named) {
	s.AddProcessor("FOREACH", name, topology.Funcs(func(_ topology.Context, r topology.Record) error {
		fn(As[K](r.Key), As[V](r.Value))
		return nil
	}))
}

// Merge interleaves this stream with others into one.
func (s *Stream[K, V]) Merge(other *Stream[K, V], name ...Named) *Stream[K, V] {
	n := s.b.NameOr(nameOf(name), "MERGE")
	s.b.Fail(s.b.topo.AddProcessor(n, topology.Funcs(func(ctx topology.Context, r topology.Record) error {
		ctx.Forward(r)
		return nil
	}), s.node, other.node))
	out := s.derive(n)
	out.keyChanged = s.keyChanged || other.keyChanged
	return out
}

func sinkSpec[K, V any](s *Stream[K, V], p []Produced[K, V]) (topology.SinkSpec, string) {
	var prod Produced[K, V]
	if len(p) > 0 {
		prod = p[len(p)-1]
	}
	ks, vs := prod.KeySerde, prod.ValueSerde
	if ks == nil {
		ks = OrDefault(s.keySerde)
	}
	if vs == nil {
		vs = OrDefault(s.valueSerde)
	}
	kser, _ := Untyped(ks)
	vser, _ := Untyped(vs)
	spec := topology.SinkSpec{KeySerializer: kser, ValueSerializer: vser}
	if prod.Partitioner != nil {
		part := prod.Partitioner
		spec.Partitioner = func(topic string, key, value any, n int32) (int32, bool) {
			return part(topic, As[K](key), As[V](value), n)
		}
	}
	return spec, prod.Name
}

// To writes the stream to topic.
func (s *Stream[K, V]) To(topic string, p ...Produced[K, V]) {
	spec, name := sinkSpec(s, p)
	spec.Topic = topic
	n := s.b.NameOr(name, "SINK")
	s.b.Fail(s.b.topo.AddSink(n, spec, s.node))
}

// ToTopicFunc writes each record to the topic pick returns for it.
func (s *Stream[K, V]) ToTopicFunc(pick func(key K, value V, m topology.Metadata) string, p ...Produced[K, V]) {
	spec, name := sinkSpec(s, p)
	spec.TopicExtractor = func(key, value any, m topology.Metadata) string {
		return pick(As[K](key), As[V](value), m)
	}
	n := s.b.NameOr(name, "SINK")
	s.b.Fail(s.b.topo.AddSink(n, spec, s.node))
}

// Repartition writes the stream through an internal topic
// "<application.id>-<name>-repartition" and reads it back, so records are
// spread by their current key; the result starts a new sub-topology.
func (s *Stream[K, V]) Repartition(r ...Repartitioned[K, V]) *Stream[K, V] {
	rp := lastOf(r)
	base := s.b.NameOr(rp.Name, "REPARTITION")
	ks, vs := rp.KeySerde, rp.ValueSerde
	if ks == nil {
		ks = s.keySerde
	}
	if vs == nil {
		vs = s.valueSerde
	}
	return s.repartitionAs(base, ks, vs, rp.NumPartitions, rp.Partitioner)
}

// repartitionNames returns the topic and node names of a repartition
// through "<base>-repartition". As Kafka Streams' createRepartitionedSource,
// three indexes are always used up, and the generated node names are kept
// only for a generated base.
func (b *Builder) repartitionNames(base string) (topic, sink, filter, source string) {
	topic = base
	if !strings.HasSuffix(topic, "-repartition") {
		topic += "-repartition"
	}
	sink, filter, source = b.NewName("SINK"), b.NewName("FILTER"), b.NewName("SOURCE")
	if !generatedName.MatchString(base) {
		sink, filter, source = topic+"-sink", topic+"-filter", topic+"-source"
	}
	return topic, sink, filter, source
}

// repartitionAs writes the stream through "<base>-repartition" with the
// given serdes (nil: DefaultSerde) and returns the stream read back.
func (s *Stream[K, V]) repartitionAs(base string, ks serde.Serde[K], vs serde.Serde[V], partitions int32,
	partitioner func(topic string, key K, value V, numPartitions int32) (int32, bool)) *Stream[K, V] {
	topic, sinkName, filterName, sourceName := s.b.repartitionNames(base)
	s.b.Fail(s.b.topo.AddInternalTopic(topology.InternalTopic{
		Name: topic, Partitions: partitions,
		Config: map[string]string{"cleanup.policy": "delete"},
	}))
	s.b.Fail(s.b.topo.AddProcessor(filterName, topology.Funcs(func(ctx topology.Context, r topology.Record) error {
		ctx.Forward(r)
		return nil
	}), s.node))
	spec, _ := sinkSpec(s, []Produced[K, V]{{KeySerde: ks, ValueSerde: vs, Partitioner: partitioner}})
	spec.Topic = topic
	s.b.Fail(s.b.topo.AddSink(sinkName, spec, filterName))
	_, kd := Untyped(OrDefault(ks))
	_, vd := Untyped(OrDefault(vs))
	s.b.Fail(s.b.topo.AddSource(sourceName, topology.SourceSpec{Topics: []string{topic}, KeyDeserializer: kd, ValueDeserializer: vd,
		RawKey: IsPassThrough(OrDefault(ks)), RawValue: IsPassThrough(OrDefault(vs))}))
	return NewStream(s.b, sourceName, ks, vs, false)
}

// Split starts a branching of the stream: each record goes to the first
// branch whose predicate it matches, else to the default branch (if any).
func (s *Stream[K, V]) Split(name ...Named) *BranchedStream[K, V] {
	n := s.b.NameOr(nameOf(name), "BRANCH")
	// As Kafka Streams: branch names are the split's name (or generated
	// name) followed directly by the branch name or position.
	prefix := n
	bs := &BranchedStream[K, V]{s: s, node: n, prefix: prefix, out: map[string]*Stream[K, V]{}}
	s.b.Fail(s.b.topo.AddProcessor(n, func() topology.Processor { return &splitProcessor[K, V]{bs: bs} }, s.node))
	return bs
}

// BranchedStream collects the branches of a Split.
type BranchedStream[K, V any] struct {
	s        *Stream[K, V]
	node     string
	prefix   string
	preds    []func(K, V) bool
	children []string
	out      map[string]*Stream[K, V]
	done     bool
}

// Branch adds a branch for records matching pred. Its name is the split's
// prefix plus name, or plus its position (from 1) when name is empty.
func (bs *BranchedStream[K, V]) Branch(pred func(key K, value V) bool, name ...Named) *BranchedStream[K, V] {
	bs.add(pred, nameOf(name))
	return bs
}

// DefaultBranch adds the branch for records no predicate matched (named
// prefix+"0" when unnamed) and returns every branch by name.
func (bs *BranchedStream[K, V]) DefaultBranch(name ...Named) map[string]*Stream[K, V] {
	n := nameOf(name)
	if n == "" {
		n = "0"
	}
	bs.add(nil, n)
	bs.done = true
	return bs.out
}

// NoDefaultBranch drops records no predicate matched and returns every
// branch by name.
func (bs *BranchedStream[K, V]) NoDefaultBranch() map[string]*Stream[K, V] {
	bs.done = true
	return bs.out
}

func (bs *BranchedStream[K, V]) add(pred func(K, V) bool, name string) {
	if bs.done {
		bs.s.b.Fail(fmt.Errorf("split %s: branch added after the default branch", bs.node))
		return
	}
	if name == "" {
		name = fmt.Sprint(len(bs.preds) + 1)
	}
	child := bs.prefix + name
	s := bs.s
	s.b.Fail(s.b.topo.AddProcessor(child, topology.Funcs(func(ctx topology.Context, r topology.Record) error {
		ctx.Forward(r)
		return nil
	}), bs.node))
	bs.preds = append(bs.preds, pred)
	bs.children = append(bs.children, child)
	bs.out[child] = s.derive(child)
}

type splitProcessor[K, V any] struct {
	bs  *BranchedStream[K, V]
	ctx topology.Context
}

func (p *splitProcessor[K, V]) Init(ctx topology.Context) error { p.ctx = ctx; return nil }
func (p *splitProcessor[K, V]) Close() error                    { return nil }

func (p *splitProcessor[K, V]) Process(r topology.Record) error {
	k, v := As[K](r.Key), As[V](r.Value)
	for i, pred := range p.bs.preds {
		if pred == nil || pred(k, v) {
			p.ctx.ForwardTo(p.bs.children[i], r)
			return nil
		}
	}
	return nil
}
