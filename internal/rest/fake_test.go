package rest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stringCodec is the codec of a store with string keys and int64 values.
func stringCodec() Codec {
	return Codec{
		ParseKey:  func(text string) ([]byte, error) { return []byte(text), nil },
		FormatKey: func(b []byte) (string, error) { return string(b), nil },
		KeyJSON:   func(b []byte) (json.RawMessage, error) { return json.Marshal(string(b)) },
		ValueJSON: int64JSON,
	}
}

// intCodec is the codec of a store with int64 keys, serialized so that
// byte order is numeric order.
func intCodec() Codec {
	return Codec{
		ParseKey: func(text string) ([]byte, error) {
			n, err := strconv.ParseInt(text, 10, 64)
			if err != nil {
				return nil, err
			}
			return intKey(n), nil
		},
		FormatKey: func(b []byte) (string, error) {
			if len(b) != 8 {
				return "", fmt.Errorf("int key of %d bytes", len(b))
			}
			return strconv.FormatInt(int64(binary.BigEndian.Uint64(b)^1<<63), 10), nil
		},
		KeyJSON: func(b []byte) (json.RawMessage, error) {
			return json.Marshal(int64(binary.BigEndian.Uint64(b) ^ 1<<63))
		},
		ValueJSON: int64JSON,
	}
}

func intKey(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)^1<<63) }

func int64Value(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func int64JSON(b []byte) (json.RawMessage, error) {
	if len(b) != 8 {
		return nil, fmt.Errorf("int64 value of %d bytes", len(b))
	}
	return json.Marshal(int64(binary.BigEndian.Uint64(b)))
}

// fakeStore is one store's data across the whole fake cluster.
type fakeStore struct {
	info    StoreInfo
	codec   Codec
	data    map[string]int64         // key bytes as a string
	windows map[string][]WindowEntry // window stores only
}

// fakeCluster is several instances sharing stores, each owning the keys
// owner assigns to it.
type fakeCluster struct {
	stores map[string]*fakeStore
	owner  func(key []byte) int
	nodes  []*fakeNode
}

// fakeNode is one instance: a Backend serving its keys of the cluster's
// stores through the real handler on an httptest server.
type fakeNode struct {
	c        *fakeCluster
	idx      int
	endpoint string
	handler  *handler
	srv      *httptest.Server

	// Knobs, set before requests are made.
	locate        func(store string, key []byte) (Location, error)
	getErr        error
	rangeErr      error
	rangeHostsErr error
	// hosts, when set, is what RangeHosts returns.
	hosts []string
	// rangeAll makes Range return keys this instance does not own, as an
	// instance still holding a moved task might.
	rangeAll bool

	locateCalls, rangeHostsCalls atomic.Int32
	mu                           sync.Mutex
	lastRangeLimit               int
	lastWindowFrom, lastWindowTo time.Time
}

func standardStores() map[string]*fakeStore {
	counts := map[string]int64{}
	for i, k := range []string{"", "A", "B", "a", "a/b", "aa", "ab", "b", "b\x00", "ba", "c", "k/windows", "z", "é", "..", "%"} {
		counts[k] = int64(i + 1)
	}
	ids := map[string]int64{}
	for _, n := range []int64{-5, 0, 7, 42, 1000} {
		ids[string(intKey(n))] = n * 10
	}
	ms := time.UnixMilli
	return map[string]*fakeStore{
		"counts": {info: StoreInfo{Name: "counts", Kind: "keyvalue", KeyType: "string", ValueType: "int64"},
			codec: stringCodec(), data: counts},
		"ids": {info: StoreInfo{Name: "ids", Kind: "keyvalue", KeyType: "int64", ValueType: "int64"},
			codec: intCodec(), data: ids},
		"windowed": {info: StoreInfo{Name: "windowed", Kind: "window", KeyType: "string", ValueType: "int64"},
			codec: stringCodec(), data: map[string]int64{},
			windows: map[string][]WindowEntry{
				"k": {
					{Start: ms(1000), End: ms(2000), Value: int64Value(1)},
					{Start: ms(2000), End: ms(3000), Value: int64Value(2)},
					{Start: ms(3000), End: ms(4000), Value: int64Value(3)},
				},
				"far": {{Start: ms(1000), End: ms(2000), Value: int64Value(9)}},
			}},
	}
}

// newCluster starts n instances over the standard stores; owner picks the
// instance of each key (nil: instance 0 owns everything).
func newCluster(t *testing.T, n int, owner func(key []byte) int, o Options) *fakeCluster {
	t.Helper()
	if owner == nil {
		owner = func([]byte) int { return 0 }
	}
	c := &fakeCluster{stores: standardStores(), owner: owner}
	for i := range n {
		node := &fakeNode{c: c, idx: i}
		node.handler = NewHandler(node, o).(*handler)
		node.srv = httptest.NewServer(node.handler)
		t.Cleanup(node.srv.Close)
		node.endpoint = node.srv.Listener.Addr().String()
		c.nodes = append(c.nodes, node)
	}
	return c
}

func (n *fakeNode) owns(key []byte) bool { return n.c.owner(key) == n.idx }

func (n *fakeNode) Stores() []StoreInfo {
	var out []StoreInfo
	for _, s := range n.c.stores {
		out = append(out, s.info)
	}
	slices.SortFunc(out, func(a, b StoreInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (n *fakeNode) Codec(store string) (Codec, bool) {
	s, ok := n.c.stores[store]
	if !ok {
		return Codec{}, false
	}
	return s.codec, true
}

func (n *fakeNode) Locate(store string, key []byte) (Location, error) {
	n.locateCalls.Add(1)
	if n.locate != nil {
		return n.locate(store, key)
	}
	if _, ok := n.c.stores[store]; !ok {
		return Location{}, ErrUnknownStore
	}
	owner := n.c.owner(key)
	if owner == n.idx {
		return Location{Local: true, Partition: int32(owner)}, nil
	}
	return Location{Endpoint: n.c.nodes[owner].endpoint, Partition: int32(owner)}, nil
}

func (n *fakeNode) Get(store string, key []byte) ([]byte, bool, error) {
	if n.getErr != nil {
		return nil, false, n.getErr
	}
	s := n.c.stores[store]
	v, ok := s.data[string(key)]
	if !ok || !n.owns(key) {
		return nil, false, nil
	}
	return int64Value(v), true, nil
}

func (n *fakeNode) Range(_ context.Context, store string, from, to []byte, limit int) ([]Entry, error) {
	n.mu.Lock()
	n.lastRangeLimit = limit
	n.mu.Unlock()
	if n.rangeErr != nil {
		return nil, n.rangeErr
	}
	var out []Entry
	for k, v := range n.c.stores[store].data {
		key := []byte(k)
		if (!n.owns(key) && !n.rangeAll) || (from != nil && bytes.Compare(key, from) < 0) || (to != nil && bytes.Compare(key, to) > 0) {
			continue
		}
		out = append(out, Entry{Key: key, Value: int64Value(v)})
	}
	slices.SortFunc(out, func(a, b Entry) int { return bytes.Compare(a.Key, b.Key) })
	return out[:min(len(out), limit)], nil
}

func (n *fakeNode) RangeHosts(string) ([]string, error) {
	n.rangeHostsCalls.Add(1)
	if n.rangeHostsErr != nil {
		return nil, n.rangeHostsErr
	}
	if n.hosts != nil {
		return n.hosts, nil
	}
	var out []string
	for _, o := range n.c.nodes {
		if o != n {
			out = append(out, o.endpoint)
		}
	}
	return out, nil
}

func (n *fakeNode) Windows(store string, key []byte, from, to time.Time) ([]WindowEntry, error) {
	n.mu.Lock()
	n.lastWindowFrom, n.lastWindowTo = from, to
	n.mu.Unlock()
	s := n.c.stores[store]
	if s.info.Kind != "window" {
		return nil, ErrNotWindowStore
	}
	var out []WindowEntry
	for _, w := range s.windows[string(key)] {
		if !w.Start.Before(from) && !w.Start.After(to) {
			out = append(out, w)
		}
	}
	return out, nil
}

func (n *fakeNode) Metadata() any {
	var eps []string
	for _, o := range n.c.nodes {
		eps = append(eps, o.endpoint)
	}
	return map[string]any{"self": n.endpoint, "instances": eps}
}

func (n *fakeNode) Endpoint() string { return n.endpoint }

func (n *fakeNode) windowBounds() (from, to time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lastWindowFrom, n.lastWindowTo
}

func (n *fakeNode) rangeLimit() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lastRangeLimit
}

// answer is an HTTP answer of the handler.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// get makes a GET of pathAndQuery (already escaped) at node.
func get(t *testing.T, n *fakeNode, pathAndQuery string) answer {
	t.Helper()
	return do(t, http.MethodGet, n.srv.URL+pathAndQuery, nil)
}

func do(t *testing.T, method, url string, header http.Header) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: body}
}

// decode checks a's status and JSON content type and decodes its body.
func decode[T any](t *testing.T, a answer, status int) T {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d; body %s", a.status, status, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	var v T
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("decode %s: %v", a.body, err)
	}
	return v
}

// wantError checks that a is a JSON error with status whose message
// contains every one of parts.
func wantError(t *testing.T, a answer, status int, parts ...string) string {
	t.Helper()
	e := decode[map[string]string](t, a, status)
	msg, ok := e["error"]
	if !ok || len(e) != 1 {
		t.Fatalf("error body %s, want {\"error\": …}", a.body)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("error %q does not mention %q", msg, p)
		}
	}
	if status == http.StatusServiceUnavailable && a.header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	return msg
}

var errBoom = errors.New("boom")
