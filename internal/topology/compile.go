package topology

import (
	"fmt"
	"sort"
	"strconv"
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
	topicSub       map[string]*Subtopology
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
				stores[s] = true
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
// with 0: the largest partition count among the source topics of the
// sub-topologies that write to it, repeated until nothing changes so chains
// of repartitions resolve. partitionsOf reports existing topics' counts.
func (c *Compiled) ResolvePartitions(partitionsOf func(topic string) (int32, bool)) error {
	known := map[string]int32{}
	for _, it := range c.InternalTopics {
		if it.Partitions > 0 {
			known[it.Name] = it.Partitions
		}
	}
	lookup := func(topic string) (int32, bool) {
		if n, ok := known[topic]; ok {
			return n, true
		}
		if c.IsInternal(topic) {
			return 0, false
		}
		return partitionsOf(topic)
	}
	for changed := true; changed; {
		changed = false
		for i := range c.InternalTopics {
			it := &c.InternalTopics[i]
			if it.Partitions > 0 {
				continue
			}
			var max int32
			for _, st := range c.Subtopologies {
				if it.Store != "" {
					if _, owns := st.Changelogs[it.Store]; owns {
						for _, src := range st.SourceTopics {
							if n, ok := lookup(src); ok && n > max {
								max = n
							}
						}
					}
					continue
				}
				writes := false
				for _, s := range st.SinkTopics {
					if s == it.Name {
						writes = true
					}
				}
				if !writes {
					continue
				}
				for _, src := range st.SourceTopics {
					if n, ok := lookup(src); ok && n > max {
						max = n
					}
				}
			}
			if max > 0 {
				it.Partitions = max
				known[it.Name] = max
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

// CheckCopartitioning verifies that every sub-topology's source topics have
// equal partition counts, and returns the count per sub-topology.
func (c *Compiled) CheckCopartitioning(partitionsOf func(topic string) (int32, bool)) (map[int]int32, error) {
	out := map[int]int32{}
	internal := map[string]int32{}
	for _, it := range c.InternalTopics {
		internal[it.Name] = it.Partitions
	}
	for _, st := range c.Subtopologies {
		counts := map[string]int32{}
		var first int32 = -1
		mismatch := false
		for _, topic := range st.SourceTopics {
			n, ok := internal[topic]
			if !ok {
				n, ok = partitionsOf(topic)
			}
			if !ok {
				return nil, fmt.Errorf("source topic %q of sub-topology %d does not exist", topic, st.ID)
			}
			counts[topic] = n
			if first == -1 {
				first = n
			} else if n != first {
				mismatch = true
			}
		}
		if mismatch {
			return nil, fmt.Errorf("sub-topology %d: source topics are not co-partitioned (partition counts %v); they must have equal partition counts, or repartition one of them", st.ID, counts)
		}
		out[st.ID] = first
	}
	return out, nil
}
