package rest

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Headers of the protocol between clients and instances.
const (
	// HeaderForwarded marks a request one instance forwarded to another;
	// such a request is never forwarded again.
	HeaderForwarded = "X-Kstreams-Forwarded"
	// HeaderServedBy names the endpoint of the instance that answered.
	HeaderServedBy = "X-Kstreams-Served-By"
	// HeaderOwner names the owner of a key on a 503 to a local=true request.
	HeaderOwner = "X-Kstreams-Owner"
)

const (
	// maxRequestBody bounds a request body. GET requests have none, but a
	// client sending one anyway must not make the server buffer it.
	maxRequestBody = 1 << 20
	// maxForwardBody bounds an answer read from another instance, so a
	// confused peer cannot make this one buffer without limit.
	maxForwardBody = 8 << 20
)

// Options configures NewHandler. The zero value works.
type Options struct {
	// ForwardTimeout bounds one forwarded request, including the requests
	// of a range scan to other instances (default 5s).
	ForwardTimeout time.Duration
	// Client makes forwarded requests (default: an http.Client with
	// ForwardTimeout). ForwardTimeout applies to its requests either way.
	Client *http.Client
	// Logger receives failures the handler answers with 5xx (default
	// slog.New(slog.DiscardHandler)).
	Logger *slog.Logger
	// MaxLimit caps ?limit= of range scans (default 1000); DefaultLimit is
	// used when limit is absent (default 100, at most MaxLimit).
	MaxLimit, DefaultLimit int
}

func (o Options) withDefaults() Options {
	if o.ForwardTimeout <= 0 {
		o.ForwardTimeout = 5 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.ForwardTimeout}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxLimit <= 0 {
		o.MaxLimit = 1000
	}
	if o.DefaultLimit <= 0 {
		o.DefaultLimit = 100
	}
	o.DefaultLimit = min(o.DefaultLimit, o.MaxLimit)
	return o
}

// NewHandler returns the handler of the interactive-query API over b. See
// the package documentation for its endpoints.
func NewHandler(b Backend, o Options) http.Handler {
	return &handler{b: b, o: o.withDefaults(), maxForwardBody: maxForwardBody}
}

type handler struct {
	b Backend
	o Options
	// maxForwardBody is maxForwardBody, a field so tests can lower it.
	maxForwardBody int64
}

type routeKind int

const (
	routeStores routeKind = iota
	routeMetadata
	routeRange
	routeKey
	routeWindows
)

type route struct {
	kind       routeKind
	store, key string
}

// parseRoute matches the escaped path segment by segment, so that an
// escaped "/" inside a store name or key does not split it.
func parseRoute(escaped string) (route, bool, error) {
	seg := strings.Split(strings.TrimPrefix(escaped, "/"), "/")
	if len(seg) < 2 || seg[0] != "v1" {
		return route{}, false, nil
	}
	if len(seg) == 2 {
		switch seg[1] {
		case "stores":
			return route{kind: routeStores}, true, nil
		case "metadata":
			return route{kind: routeMetadata}, true, nil
		}
		return route{}, false, nil
	}
	if seg[1] != "stores" || len(seg) < 4 || seg[3] != "keys" {
		return route{}, false, nil
	}
	var rt route
	switch {
	case len(seg) == 4:
		rt.kind = routeRange
	case len(seg) == 5:
		rt.kind = routeKey
	case len(seg) == 6 && seg[5] == "windows":
		rt.kind = routeWindows
	default:
		return route{}, false, nil
	}
	var err error
	if rt.store, err = url.PathUnescape(seg[2]); err != nil {
		return route{}, true, fmt.Errorf("store name %q: %w", seg[2], err)
	}
	if rt.kind != routeRange {
		if rt.key, err = url.PathUnescape(seg[4]); err != nil {
			return route{}, true, fmt.Errorf("key %q: %w", seg[4], err)
		}
	}
	return rt, true, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
	if ep := h.b.Endpoint(); ep != "" {
		w.Header().Set(HeaderServedBy, ep)
	}
	if err := h.serve(w, r); err != nil {
		h.writeError(w, r, err)
	}
}

// serve answers r, or returns the error to answer with when it has written
// nothing.
func (h *handler) serve(w http.ResponseWriter, r *http.Request) error {
	path := r.URL.EscapedPath()
	rt, ok, err := parseRoute(path)
	if !ok {
		return &httpError{status: http.StatusNotFound, msg: fmt.Sprintf("no such endpoint: %s", path)}
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		return &httpError{status: http.StatusMethodNotAllowed,
			msg: fmt.Sprintf("method %s not allowed on %s: only GET is", r.Method, path)}
	}
	if err != nil {
		return badRequest("path %s: %v", path, err)
	}
	switch rt.kind {
	case routeStores:
		stores := h.b.Stores()
		if stores == nil {
			stores = []StoreInfo{}
		}
		return h.writeJSON(w, http.StatusOK, struct {
			Stores []StoreInfo `json:"stores"`
		}{stores})
	case routeMetadata:
		return h.writeJSON(w, http.StatusOK, h.b.Metadata())
	case routeRange:
		return h.serveRange(w, r, rt.store)
	default:
		return h.serveKey(w, r, rt)
	}
}

// httpError is an error answer: status and the message of {"error": msg}.
type httpError struct {
	status int
	msg    string
	// retryAfter is sent as Retry-After on a 503, rounded up to whole
	// seconds and at least one.
	retryAfter time.Duration
	// owner, when set, is sent as X-Kstreams-Owner.
	owner string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) *httpError {
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *httpError {
	return &httpError{status: http.StatusNotFound, msg: fmt.Sprintf(format, args...)}
}

func unavailable(retryAfter time.Duration, format string, args ...any) *httpError {
	return &httpError{status: http.StatusServiceUnavailable, msg: fmt.Sprintf(format, args...), retryAfter: retryAfter}
}

func unknownStore(store string) *httpError {
	return notFound("unknown store %q", store)
}

// backendError turns an error of the Backend into its answer; what says
// what was being done, for the message.
func backendError(err error, what string) *httpError {
	msg := what + ": " + err.Error()
	var u *Unavailable
	switch {
	case errors.As(err, &u):
		return unavailable(u.RetryAfter, "%s", msg)
	case errors.Is(err, ErrUnknownStore):
		return notFound("%s", msg)
	case errors.Is(err, ErrNotWindowStore):
		return badRequest("%s", msg)
	default:
		return &httpError{status: http.StatusInternalServerError, msg: msg}
	}
}

func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		he = &httpError{status: http.StatusInternalServerError, msg: err.Error()}
	}
	switch {
	case he.status == http.StatusInternalServerError:
		h.o.Logger.Error("interactive query failed", "path", r.URL.EscapedPath(), "err", he.msg)
	case he.status == http.StatusBadGateway:
		h.o.Logger.Warn("interactive query: bad answer from another instance", "path", r.URL.EscapedPath(), "err", he.msg)
	case he.status == http.StatusServiceUnavailable:
		// Routine during rebalances and restores; not worth more than debug.
		h.o.Logger.Debug("interactive query unavailable", "path", r.URL.EscapedPath(), "err", he.msg)
	}
	if he.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(he.retryAfter)))
	}
	if he.owner != "" {
		w.Header().Set(HeaderOwner, he.owner)
	}
	body, _ := json.Marshal(errorBody{Error: he.msg}) // a struct of one string always marshals
	writeBody(w, he.status, body)
}

type errorBody struct {
	Error string `json:"error"`
}

func retrySeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// writeJSON marshals v before writing anything, so that a value that does
// not marshal still gets a proper error answer.
func (h *handler) writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return &httpError{status: http.StatusInternalServerError, msg: fmt.Sprintf("encode answer: %v", err)}
	}
	writeBody(w, status, body)
	return nil
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// A failed write means the client has gone; there is no one to tell.
	_, _ = w.Write(append(body, '\n'))
}
