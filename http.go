package kstreams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/kstreams-go/kstreams/internal/rest"
	"github.com/kstreams-go/kstreams/internal/topology"
	"github.com/kstreams-go/kstreams/serde"
)

// Handler serves the app over HTTP: the interactive-query REST API under
// /v1/ (see the README's query section), Prometheus metrics at /metrics,
// and for operators /healthz, /readyz, /v1/status, /v1/topology and a
// status page at /. Mount it in your own server, or set Config.ServeQueries to
// have Run serve it on ApplicationServer. Keys owned by another instance
// are forwarded to that instance's ApplicationServer, so every instance
// should serve it there.
func (a *App) Handler() http.Handler {
	a.handlerOnce.Do(func() {
		mux := http.NewServeMux()
		mux.Handle("/metrics", a.metrics.handler())
		// Forwarding goes to a handful of other instances, many requests
		// at once: keep enough idle connections per instance that a busy
		// API does not dial for every other request (net/http's default
		// keeps 2).
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.MaxIdleConnsPerHost = 64
		client := &http.Client{Transport: transport, Timeout: 5 * time.Second}
		mux.Handle("/", rest.NewHandler(queryBackend{a}, rest.Options{Logger: a.log, Client: client}))
		a.routeOps(mux)
		a.handler = mux
	})
	return a.handler
}

// serveQueries listens on ApplicationServer before the app joins the
// group, so a port in use fails the start instead of advertising an
// endpoint nobody answers on. The returned function shuts the server down.
func (a *App) serveQueries() (stop func(), err error) {
	ln, err := net.Listen("tcp", a.cfg.ApplicationServer)
	if err != nil {
		return nil, &ConfigError{"ApplicationServer", fmt.Sprintf("listen: %v", err)}
	}
	srv := rest.NewServer(a.cfg.ApplicationServer, a.Handler())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.fail(fmt.Errorf("kstreams: serve queries on %s: %w", a.cfg.ApplicationServer, err))
		}
	}()
	a.log.Info("serving queries and metrics", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// queryBackend is the app as the REST handler sees it.
type queryBackend struct{ a *App }

var _ rest.Backend = queryBackend{}

func (q queryBackend) Endpoint() string { return q.a.cfg.ApplicationServer }

func (q queryBackend) Metadata() any { return q.a.Metadata() }

func (q queryBackend) Stores() []rest.StoreInfo {
	var out []rest.StoreInfo
	for _, st := range q.a.compiled.Subtopologies {
		for _, spec := range st.StoreSpecs {
			if spec.Internal {
				continue
			}
			info := rest.StoreInfo{Name: spec.Name, Kind: spec.Kind.String(), KeyType: "bytes", ValueType: "bytes"}
			if spec.Codec != nil {
				info.KeyType, info.ValueType = spec.Codec.KeyType, spec.Codec.ValueType
			}
			out = append(out, info)
		}
	}
	out = append(out, q.a.globalStoreInfos()...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (q queryBackend) Codec(store string) (rest.Codec, bool) {
	_, spec, err := q.a.storeSpec(store)
	if err != nil {
		return rest.Codec{}, false
	}
	return codecFor(spec.Codec, q.a.changelogTopic(store)), true
}

// codecFor adapts a store's typed codec to URL text and JSON. A store
// without one holds raw bytes: URL keys are taken as their bytes, values
// are rendered as JSON strings of base64, as encoding/json does []byte.
func codecFor(c *topology.StoreCodec, topic string) rest.Codec {
	if c == nil {
		raw := serde.Bytes()
		return rest.Codec{
			ParseKey:  func(text string) ([]byte, error) { return []byte(text), nil },
			FormatKey: func(b []byte) (string, error) { return string(b), nil },
			KeyJSON:   func(b []byte) (json.RawMessage, error) { return json.Marshal(string(b)) },
			ValueJSON: func(b []byte) (json.RawMessage, error) {
				v, _ := raw.Deserialize(topic, b)
				return json.Marshal(v)
			},
		}
	}
	return rest.Codec{
		ParseKey: func(text string) ([]byte, error) {
			k, err := c.ParseKey(text)
			if err != nil {
				return nil, err
			}
			return c.SerializeKey(topic, k)
		},
		FormatKey: func(b []byte) (string, error) {
			k, err := c.DeserializeKey(topic, b)
			if err != nil {
				return "", err
			}
			switch k := k.(type) {
			case string:
				return k, nil
			case []byte:
				return string(k), nil
			case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
				return fmt.Sprint(k), nil
			}
			j, err := json.Marshal(k)
			return string(j), err
		},
		KeyJSON: func(b []byte) (json.RawMessage, error) {
			k, err := c.DeserializeKey(topic, b)
			if err != nil {
				return nil, fmt.Errorf("deserialize key: %w", err)
			}
			return json.Marshal(k)
		},
		ValueJSON: func(b []byte) (json.RawMessage, error) {
			v, err := c.DeserializeValue(topic, b)
			if err != nil {
				return nil, fmt.Errorf("deserialize value: %w", err)
			}
			return json.Marshal(v)
		},
	}
}

// unavailable turns a NotQueryableError into the handler's 503 error.
func unavailable(err error) error {
	var nq *NotQueryableError
	if errors.As(err, &nq) {
		retry := time.Second
		if nq.Reason == ReasonRestoring {
			retry = 2 * time.Second
		}
		return &rest.Unavailable{Reason: nq.Error(), RetryAfter: retry}
	}
	if errors.Is(err, ErrUnknownStore) {
		return fmt.Errorf("%w: %w", rest.ErrUnknownStore, err)
	}
	return err
}

func (q queryBackend) Locate(store string, key []byte) (rest.Location, error) {
	md, err := q.a.QueryMetadataForKeyBytes(store, key)
	if err != nil {
		return rest.Location{}, unavailable(err)
	}
	if !md.Local && md.Active == "" {
		return rest.Location{}, fmt.Errorf("key's owner %s has no ApplicationServer to forward to", md.ActiveProcessID)
	}
	return rest.Location{Local: md.Local, Endpoint: md.Active, Partition: md.Partition}, nil
}

func (q queryBackend) Get(store string, key []byte) ([]byte, bool, error) {
	v, found, err := q.a.getLocal(store, key)
	return v, found, unavailable(err)
}

func (q queryBackend) Range(_ context.Context, store string, from, to []byte, limit int) ([]rest.Entry, error) {
	kvs, err := q.a.rangeLocal(store, from, to, limit)
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]rest.Entry, len(kvs))
	for i, kv := range kvs {
		out[i] = rest.Entry{Key: kv.Key, Value: kv.Value}
	}
	return out, nil
}

func (q queryBackend) RangeHosts(store string) ([]string, error) {
	st, _, err := q.a.storeSpec(store)
	if err != nil {
		return nil, unavailable(err)
	}
	if st == nil {
		return nil, nil // a global store: this instance holds all of it
	}
	asg, ok := q.a.assignment()
	if !ok {
		return nil, unavailable(&NotQueryableError{Store: store, Reason: ReasonRebalancing})
	}
	owned := 0
	var hosts []string
	for _, h := range asg.Hosts {
		n := 0
		for _, t := range h.Active {
			if t.Subtopology == st.ID {
				n++
			}
		}
		owned += n
		if n == 0 || h.ProcessID == q.a.processID {
			continue
		}
		if h.Endpoint == "" {
			return nil, fmt.Errorf("instance %s holds part of store %q but has no ApplicationServer", h.ProcessID, store)
		}
		hosts = append(hosts, h.Endpoint)
	}
	if owned < int(asg.Partitions[st.ID]) {
		return nil, unavailable(&NotQueryableError{Store: store, Reason: ReasonRebalancing})
	}
	return hosts, nil
}

func (q queryBackend) Windows(store string, key []byte, from, to time.Time) ([]rest.WindowEntry, error) {
	ws, err := q.a.fetchWindowsLocal(store, key, from.UnixMilli(), to.UnixMilli())
	if errors.Is(err, errNotWindowed) {
		return nil, rest.ErrNotWindowStore
	}
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]rest.WindowEntry, len(ws))
	for i, w := range ws {
		out[i] = rest.WindowEntry{Start: time.UnixMilli(w.start), End: time.UnixMilli(w.end), Value: w.value}
	}
	return out, nil
}
