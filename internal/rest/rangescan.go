package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// rangePage is the answer to a range scan. Raw and NextRaw are set only
// in answers to local=true, for the instance merging the parts.
type rangePage struct {
	Items   []rangeItem `json:"items"`
	Next    *string     `json:"next,omitempty"`
	NextRaw []byte      `json:"nextRaw,omitzero"`
}

type rangeItem struct {
	Key   json.RawMessage `json:"key"`
	Value json.RawMessage `json:"value"`
	Raw   []byte          `json:"raw,omitzero"`
}

// candidate is an entry of the merged range: a local entry, not yet
// rendered as JSON, or an item from another instance.
type candidate struct {
	raw   []byte
	local *Entry
	item  rangeItem
}

// serveRange answers GET /v1/stores/{store}/keys: the local part of the
// range and, unless local=true, the parts of the other instances, merged.
func (h *handler) serveRange(w http.ResponseWriter, r *http.Request, store string) error {
	codec, ok := h.b.Codec(store)
	if !ok {
		return unknownStore(store)
	}
	q := r.URL.Query()
	from, err := parseBound(codec, q, "from", store)
	if err != nil {
		return err
	}
	to, err := parseBound(codec, q, "to", store)
	if err != nil {
		return err
	}
	limit, err := h.parseLimit(q)
	if err != nil {
		return err
	}
	local, err := parseLocal(q)
	if err != nil {
		return err
	}
	// A forwarded request is answered from here only: one hop.
	local = local || r.Header.Get(HeaderForwarded) != ""
	what := fmt.Sprintf("store %q: range", store)

	// One more than limit tells whether a next page exists.
	entries, err := h.b.Range(r.Context(), store, from, to, limit+1)
	if err != nil {
		return backendError(err, what)
	}
	cands := make([]candidate, 0, len(entries))
	for i := range entries {
		cands = append(cands, candidate{raw: entries[i].Key, local: &entries[i]})
	}
	// cursors are where the parts of other instances cut off by limit
	// resume: the next page of the whole store may start at any of them.
	var cursors [][]byte
	if !local {
		hosts, err := h.b.RangeHosts(store)
		if err != nil {
			return backendError(err, what)
		}
		pages, err := h.rangeRemote(r, hosts, limit)
		if err != nil {
			return err
		}
		for _, p := range pages {
			for _, it := range p.Items {
				cands = append(cands, candidate{raw: it.Raw, item: it})
			}
			if p.NextRaw != nil {
				cursors = append(cursors, p.NextRaw)
			}
		}
	}
	// Stable so that, for a key two instances both claim while a task
	// moves, the local entry is the one kept.
	slices.SortStableFunc(cands, func(a, b candidate) int { return bytes.Compare(a.raw, b.raw) })
	cands = slices.CompactFunc(cands, func(a, b candidate) bool { return bytes.Equal(a.raw, b.raw) })

	var next []byte
	hasNext := len(cands) > limit
	if hasNext {
		next = cands[limit].raw
		cands = cands[:limit]
	}
	// Every entry an instance did not send sorts after the limit entries
	// it did send (rangeFrom checks), so none of them belongs in this page;
	// but the first of them may come before next.
	for _, c := range cursors {
		if !hasNext || bytes.Compare(c, next) < 0 {
			next, hasNext = c, true
		}
	}

	page := rangePage{Items: make([]rangeItem, 0, len(cands))}
	for _, c := range cands {
		it := c.item
		if c.local != nil {
			if it.Key, err = codec.KeyJSON(c.local.Key); err != nil {
				return backendError(fmt.Errorf("render key as JSON: %w", err), what)
			}
			if it.Value, err = codec.ValueJSON(c.local.Value); err != nil {
				return backendError(fmt.Errorf("render value as JSON: %w", err), what)
			}
		}
		it.Raw = nil
		if local {
			it.Raw = nonNil(c.raw)
		}
		page.Items = append(page.Items, it)
	}
	if hasNext {
		text, err := codec.FormatKey(next)
		if err != nil {
			return backendError(fmt.Errorf("format next key: %w", err), what)
		}
		page.Next = &text
		if local {
			page.NextRaw = nonNil(next)
		}
	}
	return h.writeJSON(w, http.StatusOK, page)
}

// nonNil keeps an empty key from vanishing from JSON under omitzero.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// parseBound reads an inclusive bound of a range; absent or empty, it is
// open, since "?from=&to=" is how a URL template says "no bounds".
func parseBound(codec Codec, q url.Values, name, store string) ([]byte, error) {
	text := q.Get(name)
	if text == "" {
		return nil, nil
	}
	b, err := codec.ParseKey(text)
	if err != nil {
		return nil, badRequest("store %q: bad %s key %q: %v", store, name, text, err)
	}
	return nonNil(b), nil
}

func (h *handler) parseLimit(q url.Values) (int, error) {
	text := q.Get("limit")
	if text == "" {
		return h.o.DefaultLimit, nil
	}
	n, err := strconv.Atoi(text)
	if err != nil || n < 1 || n > h.o.MaxLimit {
		return 0, badRequest("limit=%q: want an integer from 1 to %d", text, h.o.MaxLimit)
	}
	return n, nil
}

// rangeRemote asks every other instance in hosts, in parallel, for its
// part of the range of r with at most limit items.
func (h *handler) rangeRemote(r *http.Request, hosts []string, limit int) ([]rangePage, error) {
	q := r.URL.Query()
	q.Set("local", "true")
	// Explicit, so that instances with another DefaultLimit agree.
	q.Set("limit", strconv.Itoa(limit))
	uri := r.URL.EscapedPath() + "?" + q.Encode()

	self := h.b.Endpoint()
	var others []string
	for _, host := range hosts {
		if host != "" && host != self && !slices.Contains(others, host) {
			others = append(others, host)
		}
	}
	pages := make([]rangePage, len(others))
	errs := make([]error, len(others))
	var wg sync.WaitGroup
	for i, host := range others {
		wg.Go(func() { pages[i], errs[i] = h.rangeFrom(r.Context(), host, uri, limit) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return pages, nil
}

// rangeFrom gets one instance's part of a range scan, and checks that it
// is a part the merge can rely on: limit items at most, in strictly
// increasing key order, and limit items exactly before a next that sorts
// after them.
func (h *handler) rangeFrom(ctx context.Context, host, uri string, limit int) (rangePage, error) {
	resp, body, err := h.fetch(ctx, host, uri)
	if err != nil {
		return rangePage{}, err
	}
	if resp.StatusCode != http.StatusOK {
		msg := http.StatusText(resp.StatusCode)
		var eb errorBody
		if json.Unmarshal(body, &eb) == nil && eb.Error != "" {
			msg = eb.Error
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			return rangePage{}, unavailable(time.Duration(retry)*time.Second, "range part of %s: %s", host, msg)
		}
		return rangePage{}, badPart(host, "status %d: %s", resp.StatusCode, msg)
	}
	var p rangePage
	if err := json.Unmarshal(body, &p); err != nil {
		return rangePage{}, badPart(host, "%v", err)
	}
	if len(p.Items) > limit {
		return rangePage{}, badPart(host, "%d items, asked for %d", len(p.Items), limit)
	}
	var last []byte
	for i, it := range p.Items {
		if it.Raw == nil {
			return rangePage{}, badPart(host, "item %d has no raw key", i)
		}
		if i > 0 && bytes.Compare(it.Raw, last) <= 0 {
			return rangePage{}, badPart(host, "item %d is out of key order", i)
		}
		last = it.Raw
	}
	if p.Next != nil && p.NextRaw == nil {
		return rangePage{}, badPart(host, "next without nextRaw")
	}
	if p.NextRaw != nil {
		switch {
		case len(p.Items) != limit:
			return rangePage{}, badPart(host, "next after %d items, asked for %d", len(p.Items), limit)
		case bytes.Compare(p.NextRaw, last) <= 0:
			return rangePage{}, badPart(host, "next is not after the last item")
		}
	}
	return p, nil
}

func badPart(host, format string, args ...any) *httpError {
	return &httpError{status: http.StatusBadGateway, msg: fmt.Sprintf("range part of %s: ", host) + fmt.Sprintf(format, args...)}
}
