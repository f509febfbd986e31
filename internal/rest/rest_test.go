package rest

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestStores(t *testing.T) {
	c := newCluster(t, 1, nil, Options{})
	got := decode[map[string][]StoreInfo](t, get(t, c.nodes[0], "/v1/stores"), http.StatusOK)
	want := map[string][]StoreInfo{"stores": {
		{Name: "counts", Kind: "keyvalue", KeyType: "string", ValueType: "int64"},
		{Name: "ids", Kind: "keyvalue", KeyType: "int64", ValueType: "int64"},
		{Name: "windowed", Kind: "window", KeyType: "string", ValueType: "int64"},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestMetadata(t *testing.T) {
	c := newCluster(t, 2, nil, Options{})
	got := decode[map[string]any](t, get(t, c.nodes[1], "/v1/metadata"), http.StatusOK)
	want := map[string]any{"self": c.nodes[1].endpoint, "instances": []any{c.nodes[0].endpoint, c.nodes[1].endpoint}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestGetLocal(t *testing.T) {
	c := newCluster(t, 1, nil, Options{})
	n := c.nodes[0]
	for _, tc := range []struct {
		name, path string
		want       string
	}{
		{"string key", "/v1/stores/counts/keys/a", `{"key":"a","value":4}`},
		{"int key", "/v1/stores/ids/keys/42", `{"key":42,"value":420}`},
		{"negative int key", "/v1/stores/ids/keys/-5", `{"key":-5,"value":-50}`},
		{"escaped slash", "/v1/stores/counts/keys/a%2Fb", `{"key":"a/b","value":5}`},
		{"escaped slash before windows", "/v1/stores/counts/keys/k%2Fwindows", `{"key":"k/windows","value":12}`},
		{"escaped dots", "/v1/stores/counts/keys/%2E%2E", `{"key":"..","value":15}`},
		{"escaped percent", "/v1/stores/counts/keys/%25", `{"key":"%","value":16}`},
		{"non-ASCII", "/v1/stores/counts/keys/" + url.PathEscape("é"), `{"key":"é","value":14}`},
		{"empty key", "/v1/stores/counts/keys/", `{"key":"","value":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := get(t, n, tc.path)
			if a.status != http.StatusOK || strings.TrimSpace(string(a.body)) != tc.want {
				t.Fatalf("got %d %s, want 200 %s", a.status, a.body, tc.want)
			}
			if ct := a.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if sb := a.header.Get(HeaderServedBy); sb != n.endpoint {
				t.Errorf("%s %q, want %q", HeaderServedBy, sb, n.endpoint)
			}
		})
	}
}

func TestGetErrors(t *testing.T) {
	c := newCluster(t, 1, nil, Options{})
	n := c.nodes[0]
	for _, tc := range []struct {
		name, path string
		status     int
		parts      []string
	}{
		{"missing key", "/v1/stores/counts/keys/nope", http.StatusNotFound, []string{`key "nope" not found in store "counts"`}},
		{"unknown store", "/v1/stores/nostore/keys/a", http.StatusNotFound, []string{`unknown store "nostore"`}},
		{"unknown store windows", "/v1/stores/nostore/keys/a/windows", http.StatusNotFound, []string{`"nostore"`}},
		{"unknown store range", "/v1/stores/nostore/keys", http.StatusNotFound, []string{`"nostore"`}},
		{"bad int key", "/v1/stores/ids/keys/abc", http.StatusBadRequest, []string{`store "ids"`, `"abc"`}},
		{"bad local", "/v1/stores/counts/keys/a?local=maybe", http.StatusBadRequest, []string{`"maybe"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, get(t, n, tc.path), tc.status, tc.parts...)
		})
	}
}

func TestInternalError(t *testing.T) {
	c := newCluster(t, 1, nil, Options{})
	c.nodes[0].getErr = errBoom
	wantError(t, get(t, c.nodes[0], "/v1/stores/counts/keys/a"), http.StatusInternalServerError, `store "counts"`, "boom")
}

func TestUnknownPaths(t *testing.T) {
	c := newCluster(t, 1, nil, Options{})
	n := c.nodes[0]
	for _, path := range []string{
		"/", "/v1", "/v1/", "/v2/stores", "/v1/stores/", "/v1/stores/counts",
		"/v1/stores/counts/values", "/v1/stores/counts/keys/a/b", "/v1/stores/counts/keys/a/windows/x",
		"/v1/metadata/x",
	} {
		t.Run(path, func(t *testing.T) {
			a := get(t, n, path)
			wantError(t, a, http.StatusNotFound, "no such endpoint")
			if sb := a.header.Get(HeaderServedBy); sb != n.endpoint {
				t.Errorf("%s %q, want %q", HeaderServedBy, sb, n.endpoint)
			}
		})
	}
}

func TestOnlyGet(t *testing.T) {
	c := newCluster(t, 1, nil, Options{})
	n := c.nodes[0]
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		for _, path := range []string{"/v1/stores", "/v1/metadata", "/v1/stores/counts/keys/a", "/v1/stores/counts/keys", "/v1/stores/windowed/keys/k/windows"} {
			a := do(t, method, n.srv.URL+path, nil)
			wantError(t, a, http.StatusMethodNotAllowed, method)
			if allow := a.header.Get("Allow"); allow != "GET" {
				t.Errorf("%s %s: Allow %q, want GET", method, path, allow)
			}
			if sb := a.header.Get(HeaderServedBy); sb != n.endpoint {
				t.Errorf("%s %s: %s %q", method, path, HeaderServedBy, sb)
			}
		}
	}
}

func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name       string
		path       string
		set        func(n *fakeNode, err error)
		retryAfter time.Duration
		wantRetry  string
	}{
		{"locate", "/v1/stores/counts/keys/a", func(n *fakeNode, err error) {
			n.locate = func(string, []byte) (Location, error) { return Location{}, err }
		}, 2500 * time.Millisecond, "3"},
		{"get", "/v1/stores/counts/keys/a", func(n *fakeNode, err error) { n.getErr = err }, 0, "1"},
		{"get wrapped", "/v1/stores/counts/keys/a", func(n *fakeNode, err error) { n.getErr = wrap(err) }, 10 * time.Second, "10"},
		{"windows locate", "/v1/stores/windowed/keys/k/windows", func(n *fakeNode, err error) {
			n.locate = func(string, []byte) (Location, error) { return Location{}, err }
		}, time.Millisecond, "1"},
		{"range", "/v1/stores/counts/keys", func(n *fakeNode, err error) { n.rangeErr = err }, 4 * time.Second, "4"},
		{"range hosts", "/v1/stores/counts/keys", func(n *fakeNode, err error) { n.rangeHostsErr = err }, 2 * time.Second, "2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 1, nil, Options{})
			tc.set(c.nodes[0], &Unavailable{Reason: "restoring task 0_1", RetryAfter: tc.retryAfter})
			a := get(t, c.nodes[0], tc.path)
			wantError(t, a, http.StatusServiceUnavailable, "restoring task 0_1")
			if got := a.header.Get("Retry-After"); got != tc.wantRetry {
				t.Errorf("Retry-After %q, want %q", got, tc.wantRetry)
			}
		})
	}
}

type wrapped struct{ err error }

func (w wrapped) Error() string { return "read: " + w.err.Error() }
func (w wrapped) Unwrap() error { return w.err }

func wrap(err error) error { return wrapped{err} }

// byFirstByte spreads keys over instances so that runs of neighbouring
// keys share an owner and others alternate.
func byFirstByte(n int) func(key []byte) int {
	return func(key []byte) int {
		if len(key) == 0 {
			return n - 1
		}
		return int(key[0]/2) % n
	}
}

func TestForward(t *testing.T) {
	c := newCluster(t, 3, byFirstByte(3), Options{})
	store := c.stores["counts"]
	for _, asked := range c.nodes {
		for k, v := range store.data {
			owner := c.nodes[c.owner([]byte(k))]
			a := get(t, asked, "/v1/stores/counts/keys/"+url.PathEscape(k))
			got := decode[map[string]any](t, a, http.StatusOK)
			if got["key"] != k || got["value"] != float64(v) {
				t.Errorf("asked %d for %q: got %v, want value %d", asked.idx, k, got, v)
			}
			if sb := a.header.Get(HeaderServedBy); sb != owner.endpoint {
				t.Errorf("asked %d for %q: served by %q, want owner %q", asked.idx, k, sb, owner.endpoint)
			}
		}
	}
}

func TestForwardCopiesOwnerErrors(t *testing.T) {
	c := newCluster(t, 2, func(key []byte) int { return 1 }, Options{})
	a := get(t, c.nodes[0], "/v1/stores/counts/keys/nope")
	wantError(t, a, http.StatusNotFound, `key "nope" not found`)
	if sb := a.header.Get(HeaderServedBy); sb != c.nodes[1].endpoint {
		t.Errorf("served by %q, want owner %q", sb, c.nodes[1].endpoint)
	}

	c.nodes[1].getErr = &Unavailable{Reason: "owner restoring", RetryAfter: 7 * time.Second}
	a = get(t, c.nodes[0], "/v1/stores/counts/keys/a")
	wantError(t, a, http.StatusServiceUnavailable, "owner restoring")
	if got := a.header.Get("Retry-After"); got != "7" {
		t.Errorf("Retry-After %q, want the owner's 7", got)
	}
}

func TestForwardLoopGuard(t *testing.T) {
	c := newCluster(t, 2, nil, Options{})
	// Each instance believes the other owns every key, as two instances
	// with different views of a rebalance might.
	for i, n := range c.nodes {
		other := c.nodes[1-i]
		n.locate = func(string, []byte) (Location, error) { return Location{Endpoint: other.endpoint}, nil }
	}
	a := get(t, c.nodes[0], "/v1/stores/counts/keys/a")
	wantError(t, a, http.StatusServiceUnavailable, "ownership is moving", c.nodes[0].endpoint)
	if got := a.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
	if sb := a.header.Get(HeaderServedBy); sb != c.nodes[1].endpoint {
		t.Errorf("served by %q, want the instance that refused to forward, %q", sb, c.nodes[1].endpoint)
	}
	if n0, n1 := c.nodes[0].locateCalls.Load(), c.nodes[1].locateCalls.Load(); n0 != 1 || n1 != 1 {
		t.Errorf("Locate calls %d and %d, want one hop: 1 and 1", n0, n1)
	}
}

func TestForwardToSelfIsUnavailable(t *testing.T) {
	c := newCluster(t, 1, nil, Options{})
	n := c.nodes[0]
	n.locate = func(string, []byte) (Location, error) { return Location{Endpoint: n.endpoint}, nil }
	wantError(t, get(t, n, "/v1/stores/counts/keys/a"), http.StatusServiceUnavailable, "not queryable here")
	if got := n.locateCalls.Load(); got != 1 {
		t.Errorf("Locate called %d times, want 1: no request to itself", got)
	}
}

func TestNoOwner(t *testing.T) {
	c := newCluster(t, 1, nil, Options{})
	c.nodes[0].locate = func(string, []byte) (Location, error) { return Location{Partition: 3}, nil }
	wantError(t, get(t, c.nodes[0], "/v1/stores/counts/keys/a"), http.StatusServiceUnavailable, "partition 3")
}

func TestForwardToDeadOwner(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadAddr := dead.Listener.Addr().String()
	dead.Close()

	c := newCluster(t, 1, nil, Options{})
	c.nodes[0].locate = func(string, []byte) (Location, error) { return Location{Endpoint: deadAddr}, nil }
	a := get(t, c.nodes[0], "/v1/stores/counts/keys/a")
	wantError(t, a, http.StatusServiceUnavailable, deadAddr)
	if got := a.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
	if sb := a.header.Get(HeaderServedBy); sb != c.nodes[0].endpoint {
		t.Errorf("served by %q, want %q", sb, c.nodes[0].endpoint)
	}
}

func TestForwardTimeout(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	// Close runs after release is closed: it waits for the handler.
	defer hung.Close()
	defer close(release)

	c := newCluster(t, 1, nil, Options{ForwardTimeout: 100 * time.Millisecond})
	c.nodes[0].locate = func(string, []byte) (Location, error) {
		return Location{Endpoint: hung.Listener.Addr().String()}, nil
	}
	start := time.Now()
	wantError(t, get(t, c.nodes[0], "/v1/stores/counts/keys/a"), http.StatusServiceUnavailable, hung.Listener.Addr().String())
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("answered after %v, want about ForwardTimeout", d)
	}
}

func TestForwardAnswerTooLarge(t *testing.T) {
	c := newCluster(t, 2, func([]byte) int { return 1 }, Options{})
	c.nodes[0].handler.maxForwardBody = 10
	wantError(t, get(t, c.nodes[0], "/v1/stores/counts/keys/a"), http.StatusBadGateway, c.nodes[1].endpoint, "10 bytes")
}

func TestLocalTrue(t *testing.T) {
	c := newCluster(t, 2, func(key []byte) int {
		if string(key) == "a" {
			return 0
		}
		return 1
	}, Options{})
	n0, n1 := c.nodes[0], c.nodes[1]

	got := decode[map[string]any](t, get(t, n0, "/v1/stores/counts/keys/a?local=true"), http.StatusOK)
	if got["value"] != float64(4) {
		t.Errorf("local key: got %v", got)
	}

	a := get(t, n0, "/v1/stores/counts/keys/b?local=true")
	wantError(t, a, http.StatusServiceUnavailable, "key is owned by "+n1.endpoint)
	if owner := a.header.Get(HeaderOwner); owner != n1.endpoint {
		t.Errorf("%s %q, want %q", HeaderOwner, owner, n1.endpoint)
	}
	if got := a.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
	if got := n1.locateCalls.Load(); got != 0 {
		t.Errorf("owner asked %d times, want never", got)
	}
}

func TestNewServer(t *testing.T) {
	h := http.NotFoundHandler()
	s := NewServer("127.0.0.1:0", h)
	if s.Addr != "127.0.0.1:0" || s.Handler == nil ||
		s.ReadHeaderTimeout != 5*time.Second || s.ReadTimeout != 10*time.Second ||
		s.WriteTimeout != 30*time.Second || s.IdleTimeout != 2*time.Minute || s.MaxHeaderBytes != 64<<10 {
		t.Fatalf("server %+v", s)
	}
}
