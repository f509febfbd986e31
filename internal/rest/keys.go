package rest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// serveKey answers GET /v1/stores/{store}/keys/{key} and …/{key}/windows:
// here when this instance owns the key, else by forwarding to the owner.
func (h *handler) serveKey(w http.ResponseWriter, r *http.Request, rt route) error {
	codec, ok := h.b.Codec(rt.store)
	if !ok {
		return unknownStore(rt.store)
	}
	key, err := codec.ParseKey(rt.key)
	if err != nil {
		return badRequest("store %q: bad key %q: %v", rt.store, rt.key, err)
	}
	q := r.URL.Query()
	local, err := parseLocal(q)
	if err != nil {
		return err
	}
	// Bad bounds are answered here rather than by the owner: it would say
	// the same, one hop later.
	var from, to time.Time
	if rt.kind == routeWindows {
		if from, to, err = parseWindowBounds(q, time.Now()); err != nil {
			return err
		}
	}
	what := fmt.Sprintf("store %q: key %q", rt.store, rt.key)
	loc, err := h.b.Locate(rt.store, key)
	if err != nil {
		return backendError(err, what)
	}
	if !loc.Local {
		if err := h.mayForward(r, loc, local, what); err != nil {
			return err
		}
		return h.forward(w, r, loc.Endpoint)
	}
	if rt.kind == routeWindows {
		return h.serveWindows(w, rt, codec, key, from, to)
	}
	value, found, err := h.b.Get(rt.store, key)
	if err != nil {
		return backendError(err, what)
	}
	if !found {
		return notFound("key %q not found in store %q", rt.key, rt.store)
	}
	keyJSON, err := codec.KeyJSON(key)
	if err != nil {
		return backendError(fmt.Errorf("render key as JSON: %w", err), what)
	}
	valueJSON, err := codec.ValueJSON(value)
	if err != nil {
		return backendError(fmt.Errorf("render value as JSON: %w", err), what)
	}
	return h.writeJSON(w, http.StatusOK, keyValue{Key: keyJSON, Value: valueJSON})
}

type keyValue struct {
	Key   json.RawMessage `json:"key"`
	Value json.RawMessage `json:"value"`
}

// mayForward says why a request for a key owned elsewhere cannot be
// forwarded, or nil when it can.
func (h *handler) mayForward(r *http.Request, loc Location, local bool, what string) error {
	const retry = time.Second
	switch {
	case loc.Endpoint == "":
		return unavailable(retry, "%s: no instance can answer for partition %d right now", what, loc.Partition)
	case loc.Endpoint == h.b.Endpoint():
		// Forwarding to ourselves would only come back here.
		return unavailable(retry, "%s: partition %d belongs to this instance but is not queryable here yet", what, loc.Partition)
	case local:
		e := unavailable(retry, "%s: key is owned by %s", what, loc.Endpoint)
		e.owner = loc.Endpoint
		return e
	case r.Header.Get(HeaderForwarded) != "":
		e := unavailable(retry, "%s: ownership is moving: this instance was forwarded the request as owner, but sees %s as owner", what, loc.Endpoint)
		e.owner = loc.Endpoint
		return e
	}
	return nil
}

func (h *handler) serveWindows(w http.ResponseWriter, rt route, codec Codec, key []byte, from, to time.Time) error {
	what := fmt.Sprintf("store %q: windows of key %q", rt.store, rt.key)
	wins, err := h.b.Windows(rt.store, key, from, to)
	if errors.Is(err, ErrNotWindowStore) {
		return badRequest("store %q is not a window store", rt.store)
	}
	if err != nil {
		return backendError(err, what)
	}
	keyJSON, err := codec.KeyJSON(key)
	if err != nil {
		return backendError(fmt.Errorf("render key as JSON: %w", err), what)
	}
	out := windowsAnswer{Key: keyJSON, Windows: make([]windowJSON, 0, len(wins))}
	for _, win := range wins {
		v, err := codec.ValueJSON(win.Value)
		if err != nil {
			return backendError(fmt.Errorf("render value of window at %d as JSON: %w", win.Start.UnixMilli(), err), what)
		}
		out.Windows = append(out.Windows, windowJSON{
			Start:   win.Start.UTC().Format(time.RFC3339Nano),
			StartMs: win.Start.UnixMilli(),
			End:     win.End.UTC().Format(time.RFC3339Nano),
			EndMs:   win.End.UnixMilli(),
			Value:   v,
		})
	}
	return h.writeJSON(w, http.StatusOK, out)
}

type windowsAnswer struct {
	Key     json.RawMessage `json:"key"`
	Windows []windowJSON    `json:"windows"`
}

type windowJSON struct {
	Start   string          `json:"start"`
	StartMs int64           `json:"startMs"`
	End     string          `json:"end"`
	EndMs   int64           `json:"endMs"`
	Value   json.RawMessage `json:"value"`
}

// parseWindowBounds reads from and to, defaulting to the epoch and now.
func parseWindowBounds(q url.Values, now time.Time) (from, to time.Time, err error) {
	from, err = parseTime(q, "from", time.UnixMilli(0))
	if err != nil {
		return from, to, err
	}
	to, err = parseTime(q, "to", now)
	if err != nil {
		return from, to, err
	}
	if from.After(to) {
		return from, to, badRequest("from %s is after to %s", from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
	}
	return from, to, nil
}

// parseTime reads an RFC 3339 time or a count of epoch milliseconds.
func parseTime(q url.Values, name string, def time.Time) (time.Time, error) {
	text := q.Get(name)
	if text == "" {
		return def, nil
	}
	if ms, err := strconv.ParseInt(text, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339, text)
	if err != nil && strings.Contains(text, " ") {
		// An unescaped "+" of a zone offset arrives as a space.
		t, err = time.Parse(time.RFC3339, strings.ReplaceAll(text, " ", "+"))
	}
	if err != nil {
		return time.Time{}, badRequest("%s=%q: want RFC 3339 or epoch milliseconds", name, text)
	}
	return t, nil
}

func parseLocal(q url.Values) (bool, error) {
	text := q.Get("local")
	if text == "" {
		return false, nil
	}
	local, err := strconv.ParseBool(text)
	if err != nil {
		return false, badRequest("local=%q: want true or false", text)
	}
	return local, nil
}
