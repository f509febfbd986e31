package rest

import (
	"net/http"
	"time"
)

// NewServer returns an *http.Server for addr serving h with sane timeouts:
// ReadHeaderTimeout 5s, ReadTimeout 10s, WriteTimeout 30s, IdleTimeout 2m,
// MaxHeaderBytes 64 KiB. The header limit also bounds the length of a key
// in a URL.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}
