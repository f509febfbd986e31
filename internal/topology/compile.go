package topology

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Subtopology is one connected part of the graph: the unit that, times a
// partition number, makes a task.
type Subtopology struct {
	ID           int
	Nodes        []*Node          // in insertion order; parents before children
	Sources      map[string]*Node // resolved topic name -> source node
	SourceTopics []string         // resolved names, sorted
	SinkTopics   []string         // resolved fixed sink topics, sorted
	Stores       []string
	StoreSpecs   []StoreSpec // the specs of Stores, in the same order
	// Changelogs maps a logged store to its resolved changelog topic.
	Changelogs map[string]string
}

// Compiled is a topology ready to run under one application id: internal
// topic names carry the "<application.id>-" prefix.
type Compiled struct {
	ApplicationID  string
	Subtopologies  []*Subtopology
	InternalTopics []InternalTopic // resolved names
	// GlobalStores are read whole by every instance; their nodes are in no
	// sub-topology and their topics in no task.
	GlobalStores []*GlobalStore
	topicSub     map[string]*Subtopology
}

// InternalTopicName is the real name of an internal topic.
func InternalTopicName(appID, name string) string {
	if appID == "" {
		return name
	}
	return appID + "-" + name
}

// Compile resolves internal topic names under appID and cuts the graph
// into sub-topologies. The Topology is not modified and can be compiled again.
func Compile(t *Topology, appID string) (*Compiled, error) {
	resolve := func(topic string) string {
		if t.IsInternal(topic) {
			return InternalTopicName(appID, topic)
		}
		return topic
	}
	c := &Compiled{ApplicationID: appID, topicSub: map[string]*Subtopology{}}
	for _, it := range t.InternalTopics() {
		it.Name = resolve(it.Name)
		c.InternalTopics = append(c.InternalTopics, it)
	}
	for _, spec := range t.Stores() {
		if !spec.Logging {
			continue
		}
		cfg := map[string]string{"cleanup.policy": "compact"}
		if spec.Kind != KeyValueStore {
			// Windows expire: compaction keeps the latest of each window,
			// deletion drops windows past retention, as Kafka Streams does.
			cfg["cleanup.policy"] = "compact,delete"
			cfg["retention.ms"] = strconv.FormatInt(spec.Retention+WindowChangelogExtraRetention, 10)
		}
		for k, v := range spec.LogConfig {
			cfg[k] = v
		}
		c.InternalTopics = append(c.InternalTopics, InternalTopic{
			Name:   InternalTopicName(appID, ChangelogTopic(spec.Name)),
			Config: cfg,
			Store:  spec.Name,
		})
	}
	for i, group := range t.groups() {
		st := &Subtopology{ID: i, Sources: map[string]*Node{}}
		stores := map[string]bool{}
		sinks := map[string]bool{}
		for _, n := range group {
			cp := *n
			cp.Parents = append([]string(nil), n.Parents...)
			cp.Children = append([]string(nil), n.Children...)
			cp.Stores = append([]string(nil), n.Stores...)
			switch n.Kind {
			case KindSource:
				src := *n.Source
				src.Topics = make([]string, len(n.Source.Topics))
				for j, topic := range n.Source.Topics {
					src.Topics[j] = resolve(topic)
					st.Sources[src.Topics[j]] = &cp
					st.SourceTopics = append(st.SourceTopics, src.Topics[j])
				}
				cp.Source = &src
			case KindSink:
				sink := *n.Sink
				if sink.Topic != "" {
					sink.Topic = resolve(sink.Topic)
					sinks[sink.Topic] = true
				}
				cp.Sink = &sink
			}
			for _, s := range n.Stores {
				if !t.IsGlobalStore(s) { // not the task's: the global thread's
					stores[s] = true
				}
			}
			st.Nodes = append(st.Nodes, &cp)
		}
		if len(st.Sources) == 0 {
			return nil, fmt.Errorf("topology: sub-topology %d (nodes %s) has no source node", i, nodeNames(group))
		}
		sort.Strings(st.SourceTopics)
		for s := range sinks {
			st.SinkTopics = append(st.SinkTopics, s)
		}
		sort.Strings(st.SinkTopics)
		for s := range stores {
			st.Stores = append(st.Stores, s)
		}
		sort.Strings(st.Stores)
		st.Changelogs = map[string]string{}
		for _, name := range st.Stores {
			spec, ok := t.Store(name)
			if !ok {
				return nil, fmt.Errorf("topology: store %q is connected to a processor but never added (AddStore)", name)
			}
			st.StoreSpecs = append(st.StoreSpecs, spec)
			if spec.Logging {
				st.Changelogs[name] = InternalTopicName(appID, ChangelogTopic(name))
			}
		}
		for _, topic := range st.SourceTopics {
			c.topicSub[topic] = st
		}
		c.Subtopologies = append(c.Subtopologies, st)
	}
	t.compileGlobals(c, resolve)
	return c, nil
}

func nodeNames(ns []*Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Name
	}
	return out
}

// SubtopologyFor returns the sub-topology that reads topic (resolved name).
func (c *Compiled) SubtopologyFor(topic string) (*Subtopology, bool) {
	st, ok := c.topicSub[topic]
	return st, ok
}

// SourceTopics returns every topic any sub-topology reads, sorted.
func (c *Compiled) SourceTopics() []string {
	out := make([]string, 0, len(c.topicSub))
	for topic := range c.topicSub {
		out = append(out, topic)
	}
	sort.Strings(out)
	return out
}

// IsInternal reports whether topic (resolved) is one of the app's internal topics.
func (c *Compiled) IsInternal(topic string) bool {
	for _, it := range c.InternalTopics {
		if it.Name == topic {
			return true
		}
	}
	return false
}

// ResolvePartitions fills in the partition count of internal topics declared
// with 0, as Kafka Streams' partition assignor does before it creates them:
//
//   - A changelog gets the count of the sub-topology that owns its store:
//     the largest among that sub-topology's source topics.
//   - A repartition topic read by a sub-topology together with topics whose
//     count is fixed (external topics, internal topics declared with a
//     count) gets the largest of those fixed counts, so that the join or
//     merge it feeds is co-partitioned, as Kafka Streams'
//     CopartitionedTopicsEnforcer. The count of the repartition topic's
//     writers does not matter: a stream keyed anew and joined with a
//     4-partition table goes through a 4-partition topic.
//   - Repartition topics read by a sub-topology that has no fixed topic
//     share the largest of their own counts, and each such count is the
//     largest among the source topics of the sub-topologies that write the
//     topic.
//
// Counts are worked out again until none changes, so chains of
// repartitions resolve; a count only ever grows, so this ends.
// partitionsOf reports existing topics' counts.
func (c *Compiled) ResolvePartitions(partitionsOf func(topic string) (int32, bool)) error {
	auto := map[string]bool{} // repartition topics whose count is resolved here
	current := map[string]int32{}
	for _, it := range c.InternalTopics {
		if it.Partitions > 0 {
			current[it.Name] = it.Partitions
		} else if it.Store == "" {
			auto[it.Name] = true
		}
	}
	count := func(topic string) (int32, bool) {
		if n, ok := current[topic]; ok {
			return n, true
		}
		if c.IsInternal(topic) {
			return 0, false
		}
		return partitionsOf(topic)
	}
	maxOf := func(topics []string, keep func(string) bool) int32 {
		var max int32
		for _, topic := range topics {
			if !keep(topic) {
				continue
			}
			if n, ok := count(topic); ok && n > max {
				max = n
			}
		}
		return max
	}
	all := func(string) bool { return true }
	// written is the count a repartition topic's writers give it.
	written := func(topic string) int32 {
		var max int32
		for _, st := range c.Subtopologies {
			if slices.Contains(st.SinkTopics, topic) {
				max = maxInt32(max, maxOf(st.SourceTopics, all))
			}
		}
		return max
	}
	want := func(it InternalTopic) int32 {
		if it.Store != "" {
			for _, st := range c.Subtopologies {
				if _, owns := st.Changelogs[it.Store]; owns {
					return maxOf(st.SourceTopics, all)
				}
			}
			return 0
		}
		reader, ok := c.topicSub[it.Name]
		if !ok {
			return written(it.Name)
		}
		fixed := func(topic string) bool { return !auto[topic] }
		if slices.ContainsFunc(reader.SourceTopics, fixed) {
			return maxOf(reader.SourceTopics, fixed)
		}
		var max int32
		for _, topic := range reader.SourceTopics {
			max = maxInt32(max, written(topic))
		}
		return max
	}
	for changed := true; changed; {
		changed = false
		for i := range c.InternalTopics {
			it := &c.InternalTopics[i]
			if it.Store == "" && !auto[it.Name] {
				continue // declared with a count
			}
			if n := want(*it); n > it.Partitions {
				it.Partitions = n
				current[it.Name] = n
				changed = true
			}
		}
	}
	for _, it := range c.InternalTopics {
		if it.Partitions == 0 {
			return fmt.Errorf("topology: cannot work out the partition count of internal topic %q: give it one explicitly", it.Name)
		}
	}
	return nil
}

func maxInt32(a, b int32) int32 {
	if a > b {
		return a
	}
	return b
}

// CheckCopartitioning verifies that every sub-topology's source topics have
// equal partition counts, and returns the count per sub-topology. A task
// reads one partition number of every source topic of its sub-topology, so
// with unequal counts a join would look for a key's row in a task that
// does not hold it. The error names each topic with its count.
func (c *Compiled) CheckCopartitioning(partitionsOf func(topic string) (int32, bool)) (map[int]int32, error) {
	out := map[int]int32{}
	internal := map[string]int32{}
	for _, it := range c.InternalTopics {
		internal[it.Name] = it.Partitions
	}
	for _, st := range c.Subtopologies {
		counts := make([]int32, len(st.SourceTopics))
		mismatch := false
		for i, topic := range st.SourceTopics {
			n, ok := internal[topic]
			if !ok {
				n, ok = partitionsOf(topic)
			}
			if !ok {
				return nil, fmt.Errorf("source topic %q of sub-topology %d does not exist", topic, st.ID)
			}
			counts[i] = n
			mismatch = mismatch || n != counts[0]
		}
		if mismatch {
			var desc strings.Builder
			for i, topic := range st.SourceTopics { // sorted
				if i > 0 {
					desc.WriteString(", ")
				}
				fmt.Fprintf(&desc, "%s has %d", topic, counts[i])
				if i == 0 {
					desc.WriteString(" partitions")
				}
			}
			return nil, fmt.Errorf("sub-topology %d: source topics are not co-partitioned: %s; they must have equal partition counts, or repartition one of them", st.ID, desc.String())
		}
		if len(counts) > 0 {
			out[st.ID] = counts[0]
		}
	}
	return out, nil
}
