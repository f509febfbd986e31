package rest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// forward answers r with the answer of the instance at endpoint to the
// same path and query.
func (h *handler) forward(w http.ResponseWriter, r *http.Request, endpoint string) error {
	resp, body, err := h.fetch(r.Context(), endpoint, r.URL.RequestURI())
	if err != nil {
		return err
	}
	for _, name := range []string{"Content-Type", "Retry-After", HeaderOwner} {
		if v := resp.Header.Get(name); v != "" {
			w.Header().Set(name, v)
		}
	}
	servedBy := resp.Header.Get(HeaderServedBy)
	if servedBy == "" {
		servedBy = endpoint
	}
	w.Header().Set(HeaderServedBy, servedBy)
	w.WriteHeader(resp.StatusCode)
	// A failed write means the client has gone; there is no one to tell.
	_, _ = w.Write(body)
	return nil
}

// fetch makes one GET of requestURI at endpoint, marked as forwarded, and
// reads all of its answer, so that a failure midway is still answered with
// a clean 503 rather than a truncated body.
func (h *handler) fetch(ctx context.Context, endpoint, requestURI string) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, h.o.ForwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+endpoint+requestURI, nil)
	if err != nil {
		return nil, nil, unavailable(time.Second, "forward to %s: %v", endpoint, err)
	}
	req.Header.Set(HeaderForwarded, "1")
	req.Header.Set("Accept", "application/json")
	resp, err := h.o.Client.Do(req)
	if err != nil {
		// The owner may have died; the group will reassign its partitions.
		return nil, nil, unavailable(time.Second, "owner %s did not answer: %v", endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, h.maxForwardBody+1))
	if err != nil {
		return nil, nil, unavailable(time.Second, "read answer of %s: %v", endpoint, err)
	}
	if int64(len(body)) > h.maxForwardBody {
		return nil, nil, &httpError{status: http.StatusBadGateway,
			msg: fmt.Sprintf("answer of %s is larger than %d bytes", endpoint, h.maxForwardBody)}
	}
	return resp, body, nil
}
