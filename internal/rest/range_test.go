package rest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"
)

type testPage struct {
	Items []struct {
		Key   string `json:"key"`
		Value int64  `json:"value"`
		Raw   []byte `json:"raw"`
	} `json:"items"`
	Next    *string `json:"next"`
	NextRaw []byte  `json:"nextRaw"`
}

func sortedKeys(data map[string]int64) []string {
	var keys []string
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys) // string order is byte order
	return keys
}

// scanAll pages through the range of store counts at n with limit, from
// the first page until no next, checking each page, and returns the keys
// seen in order.
func scanAll(t *testing.T, n *fakeNode, limit int, query url.Values) []string {
	t.Helper()
	var seen []string
	from := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatalf("limit %d: no end after %d pages; seen %q", limit, pages, seen)
		}
		q := url.Values{"limit": {strconv.Itoa(limit)}}
		for k, v := range query {
			q[k] = v
		}
		if pages > 0 {
			q.Set("from", from)
		}
		a := get(t, n, "/v1/stores/counts/keys?"+q.Encode())
		if sb := a.header.Get(HeaderServedBy); sb != n.endpoint {
			t.Errorf("served by %q, want the instance asked, %q", sb, n.endpoint)
		}
		if bytes.Contains(a.body, []byte(`"raw"`)) || bytes.Contains(a.body, []byte(`"nextRaw"`)) {
			t.Errorf("answer without local=true carries raw keys: %s", a.body)
		}
		p := decode[testPage](t, a, http.StatusOK)
		if len(p.Items) > limit {
			t.Fatalf("limit %d: page of %d items", limit, len(p.Items))
		}
		for _, it := range p.Items {
			if want := c0Value(n, it.Key); it.Value != want {
				t.Errorf("key %q: value %d, want %d", it.Key, it.Value, want)
			}
			seen = append(seen, it.Key)
		}
		if p.Next == nil {
			return seen
		}
		if len(p.Items) != limit {
			t.Errorf("limit %d: short page of %d items before next %q", limit, len(p.Items), *p.Next)
		}
		from = *p.Next
	}
}

func c0Value(n *fakeNode, key string) int64 { return n.c.stores["counts"].data[key] }

func TestRangeMergesInstancesInByteOrder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes int
		owner func([]byte) int
	}{
		{"one instance", 1, nil},
		{"runs and alternation", 3, byFirstByte(3)},
		{"all elsewhere", 3, func([]byte) int { return 2 }},
		{"by length", 2, func(k []byte) int { return len(k) % 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, tc.nodes, tc.owner, Options{})
			want := sortedKeys(c.stores["counts"].data)
			for _, n := range c.nodes {
				for limit := 1; limit <= len(want)+1; limit++ {
					if got := scanAll(t, n, limit, nil); !slices.Equal(got, want) {
						t.Fatalf("from instance %d with limit %d: got %q, want %q", n.idx, limit, got, want)
					}
				}
			}
		})
	}
}

// TestRangeNextFromCutOffPart covers the page whose next entry is one an
// instance did not send: its part was cut at limit before it.
func TestRangeNextFromCutOffPart(t *testing.T) {
	c := newCluster(t, 2, func(k []byte) int {
		if string(k) == "z" {
			return 0
		}
		return 1
	}, Options{})
	p := decode[testPage](t, get(t, c.nodes[0], "/v1/stores/counts/keys?limit=2&from=a&to=z"), http.StatusOK)
	if len(p.Items) != 2 || p.Items[0].Key != "a" || p.Items[1].Key != "a/b" || p.Next == nil || *p.Next != "aa" {
		t.Fatalf("got %+v, want a, a/b, next aa", p)
	}
}

func TestRangeBounds(t *testing.T) {
	c := newCluster(t, 3, byFirstByte(3), Options{})
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"from=b&to=c", []string{"b", "b\x00", "ba", "c"}},
		{"from=b", []string{"b", "b\x00", "ba", "c", "k/windows", "z", "é"}},
		{"to=B", []string{"", "%", "..", "A", "B"}},
		{"from=&to=", sortedKeys(c.stores["counts"].data)},
		{"from=c&to=b", nil},
		{"from=" + url.QueryEscape("a/b") + "&to=ab", []string{"a/b", "aa", "ab"}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			if got := scanAll(t, c.nodes[1], 2, q); !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRangeIntKeys(t *testing.T) {
	type intPage struct {
		Items []struct{ Key, Value int64 } `json:"items"`
		Next  string                       `json:"next"`
	}
	c := newCluster(t, 2, func(k []byte) int { return int(k[7]) % 2 }, Options{})
	p := decode[intPage](t, get(t, c.nodes[0], "/v1/stores/ids/keys?from=-10&to=100&limit=3"), http.StatusOK)
	var keys []int64
	for _, it := range p.Items {
		keys = append(keys, it.Key)
		if it.Value != it.Key*10 {
			t.Errorf("key %d: value %d", it.Key, it.Value)
		}
	}
	if !slices.Equal(keys, []int64{-5, 0, 7}) || p.Next != "42" {
		t.Fatalf("got keys %v next %q, want [-5 0 7] next 42", keys, p.Next)
	}
}

func TestRangeLocal(t *testing.T) {
	c := newCluster(t, 3, byFirstByte(3), Options{})
	n := c.nodes[1]
	var want []string
	for _, k := range sortedKeys(c.stores["counts"].data) {
		if n.owns([]byte(k)) {
			want = append(want, k)
		}
	}
	if len(want) < 3 {
		t.Fatalf("test needs at least 3 local keys, has %q", want)
	}

	p := decode[testPage](t, get(t, n, "/v1/stores/counts/keys?local=true&limit=2"), http.StatusOK)
	if len(p.Items) != 2 || p.Next == nil || *p.Next != want[2] || string(p.NextRaw) != want[2] {
		t.Fatalf("got %+v, want 2 items and next %q with nextRaw", p, want[2])
	}
	for i, it := range p.Items {
		if it.Key != want[i] || string(it.Raw) != want[i] {
			t.Errorf("item %d: key %q raw %q, want %q for both", i, it.Key, it.Raw, want[i])
		}
	}
	if got := n.rangeHostsCalls.Load(); got != 0 {
		t.Errorf("RangeHosts called %d times with local=true", got)
	}

	var seen []string
	for _, it := range decode[testPage](t, get(t, n, "/v1/stores/counts/keys?local=true&limit=100"), http.StatusOK).Items {
		seen = append(seen, it.Key)
	}
	if !slices.Equal(seen, want) {
		t.Errorf("local=true scan: got %q, want only this instance's keys %q", seen, want)
	}
}

func TestRangeRawOfEmptyKey(t *testing.T) {
	type rawPage struct {
		Items []map[string]json.RawMessage `json:"items"`
	}
	c := newCluster(t, 1, nil, Options{})
	a := get(t, c.nodes[0], "/v1/stores/counts/keys?local=true&limit=1")
	p := decode[rawPage](t, a, http.StatusOK)
	if len(p.Items) != 1 || string(p.Items[0]["key"]) != `""` || string(p.Items[0]["raw"]) != `""` {
		t.Fatalf("got %s, want the empty key with raw \"\"", a.body)
	}
}

func TestRangeLimits(t *testing.T) {
	c := newCluster(t, 2, byFirstByte(2), Options{DefaultLimit: 3, MaxLimit: 5})
	n := c.nodes[0]
	p := decode[testPage](t, get(t, n, "/v1/stores/counts/keys"), http.StatusOK)
	if len(p.Items) != 3 || p.Next == nil {
		t.Errorf("no limit: %d items, next %v; want DefaultLimit 3 and a next", len(p.Items), p.Next)
	}
	if got := n.rangeLimit(); got != 4 {
		t.Errorf("local Range asked for %d entries, want limit+1 = 4", got)
	}
	if got := c.nodes[1].rangeLimit(); got != 4 {
		t.Errorf("other instance's Range asked for %d entries, want limit+1 = 4", got)
	}
	if p := decode[testPage](t, get(t, n, "/v1/stores/counts/keys?limit=5"), http.StatusOK); len(p.Items) != 5 {
		t.Errorf("limit=MaxLimit: %d items", len(p.Items))
	}
	for _, bad := range []string{"0", "-1", "6", "abc", "1.5", "99999999999999999999"} {
		wantError(t, get(t, n, "/v1/stores/counts/keys?limit="+bad), http.StatusBadRequest, strconv.Quote(bad), "5")
	}
}

func TestRangeDefaultOptions(t *testing.T) {
	c := newCluster(t, 1, nil, Options{})
	get(t, c.nodes[0], "/v1/stores/counts/keys")
	if got := c.nodes[0].rangeLimit(); got != 101 {
		t.Errorf("Range asked for %d entries, want default limit 100 + 1", got)
	}
	wantError(t, get(t, c.nodes[0], "/v1/stores/counts/keys?limit=1001"), http.StatusBadRequest, "1000")
}

func TestRangeBadParams(t *testing.T) {
	c := newCluster(t, 1, nil, Options{})
	for _, tc := range []struct {
		path  string
		parts []string
	}{
		{"/v1/stores/ids/keys?from=x", []string{`store "ids"`, `from key "x"`}},
		{"/v1/stores/ids/keys?to=1e3", []string{`store "ids"`, `to key "1e3"`}},
		{"/v1/stores/counts/keys?local=perhaps", []string{`"perhaps"`}},
	} {
		wantError(t, get(t, c.nodes[0], tc.path), http.StatusBadRequest, tc.parts...)
	}
}

func TestRangeUnavailableElsewhere(t *testing.T) {
	c := newCluster(t, 3, byFirstByte(3), Options{})
	c.nodes[2].rangeErr = &Unavailable{Reason: "task 0_2 restoring", RetryAfter: 3 * time.Second}
	a := get(t, c.nodes[0], "/v1/stores/counts/keys")
	wantError(t, a, http.StatusServiceUnavailable, c.nodes[2].endpoint, "task 0_2 restoring")
	if got := a.header.Get("Retry-After"); got != "3" {
		t.Errorf("Retry-After %q, want the other instance's 3", got)
	}
}

func TestRangeDeadInstance(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadAddr := dead.Listener.Addr().String()
	dead.Close()

	c := newCluster(t, 2, byFirstByte(2), Options{})
	c.nodes[0].hosts = []string{c.nodes[1].endpoint, deadAddr}
	a := get(t, c.nodes[0], "/v1/stores/counts/keys")
	wantError(t, a, http.StatusServiceUnavailable, deadAddr)
	if got := a.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
}

// TestRangeKeyOnTwoInstances covers a task that has moved while its old
// instance still answers for it: each key must still appear once.
func TestRangeKeyOnTwoInstances(t *testing.T) {
	c := newCluster(t, 2, byFirstByte(2), Options{})
	c.nodes[1].rangeAll = true
	want := sortedKeys(c.stores["counts"].data)
	for _, n := range c.nodes {
		for limit := 1; limit <= len(want)+1; limit++ {
			if got := scanAll(t, n, limit, nil); !slices.Equal(got, want) {
				t.Fatalf("from instance %d with limit %d: got %q, want %q", n.idx, limit, got, want)
			}
		}
	}
}

func TestRangeSelfAndDuplicateHostsAskedOnce(t *testing.T) {
	c := newCluster(t, 2, byFirstByte(2), Options{})
	c.nodes[0].hosts = []string{c.nodes[0].endpoint, c.nodes[1].endpoint, "", c.nodes[1].endpoint}
	want := sortedKeys(c.stores["counts"].data)
	if got := scanAll(t, c.nodes[0], 100, nil); !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestRangeBadPart covers parts of other instances the merge cannot rely
// on; merging them anyway could skip keys.
func TestRangeBadPart(t *testing.T) {
	item := func(k string) string {
		raw, _ := json.Marshal([]byte(k))
		return `{"key":"` + k + `","value":1,"raw":` + string(raw) + `}`
	}
	for _, tc := range []struct {
		name, body, want string
	}{
		{"not JSON", `nope`, "invalid character"},
		{"too many items", `{"items":[` + item("a") + `,` + item("b") + `,` + item("c") + `]}`, "3 items"},
		{"out of order", `{"items":[` + item("b") + `,` + item("a") + `]}`, "out of key order"},
		{"no raw", `{"items":[{"key":"a","value":1}]}`, "no raw key"},
		{"next without nextRaw", `{"items":[` + item("a") + `,` + item("b") + `],"next":"c"}`, "without nextRaw"},
		{"short page with next", `{"items":[` + item("a") + `],"next":"c","nextRaw":"Yw=="}`, "next after 1 items"},
		{"next before last", `{"items":[` + item("a") + `,` + item("c") + `],"next":"b","nextRaw":"Yg=="}`, "not after the last"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("local") != "true" || r.URL.Query().Get("limit") != "2" || r.Header.Get(HeaderForwarded) != "1" {
					t.Errorf("part asked with %s and %s %q", r.URL, HeaderForwarded, r.Header.Get(HeaderForwarded))
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(tc.body))
			}))
			defer bad.Close()
			c := newCluster(t, 1, nil, Options{})
			c.nodes[0].hosts = []string{bad.Listener.Addr().String()}
			wantError(t, get(t, c.nodes[0], "/v1/stores/counts/keys?limit=2"), http.StatusBadGateway, bad.Listener.Addr().String(), tc.want)
		})
	}
}

func TestRangeOtherInstanceFails(t *testing.T) {
	c := newCluster(t, 2, byFirstByte(2), Options{})
	c.nodes[1].rangeErr = errBoom
	wantError(t, get(t, c.nodes[0], "/v1/stores/counts/keys"), http.StatusBadGateway, c.nodes[1].endpoint, "500", "boom")
}
