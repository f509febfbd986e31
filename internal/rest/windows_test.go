package rest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"
)

type testWindows struct {
	Key     string `json:"key"`
	Windows []struct {
		Start   string `json:"start"`
		StartMs int64  `json:"startMs"`
		End     string `json:"end"`
		EndMs   int64  `json:"endMs"`
		Value   int64  `json:"value"`
	} `json:"windows"`
}

func TestWindowsShape(t *testing.T) {
	c := newCluster(t, 1, nil, Options{})
	a := get(t, c.nodes[0], "/v1/stores/windowed/keys/k/windows?from=2000&to=2000")
	got := decode[map[string]any](t, a, http.StatusOK)
	want := map[string]any{"key": "k", "windows": []any{map[string]any{
		"start": "1970-01-01T00:00:02Z", "startMs": float64(2000),
		"end": "1970-01-01T00:00:03Z", "endMs": float64(3000),
		"value": float64(2),
	}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %s, want %v", a.body, want)
	}
}

func TestWindowsBounds(t *testing.T) {
	c := newCluster(t, 1, nil, Options{})
	n := c.nodes[0]
	ms := time.UnixMilli
	for _, tc := range []struct {
		name, query      string
		wantFrom, wantTo time.Time // zero wantTo: about now
		wantStarts       []int64
	}{
		{"defaults", "", ms(0), time.Time{}, []int64{1000, 2000, 3000}},
		{"epoch ms", "from=2000&to=3000", ms(2000), ms(3000), []int64{2000, 3000}},
		{"RFC 3339", "from=1970-01-01T00:00:02Z&to=1970-01-01T00:00:02.5Z", ms(2000), ms(2500), []int64{2000}},
		{"RFC 3339 with offset", "from=" + url.QueryEscape("1970-01-01T01:00:03+01:00"), ms(3000), time.Time{}, []int64{3000}},
		{"unescaped plus of offset", "from=1970-01-01T01:00:03+01:00", ms(3000), time.Time{}, []int64{3000}},
		{"mixed", "from=0&to=1970-01-01T00:00:01Z", ms(0), ms(1000), []int64{1000}},
		{"negative ms", "from=-1000&to=500", ms(-1000), ms(500), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now()
			p := decode[testWindows](t, get(t, n, "/v1/stores/windowed/keys/k/windows?"+tc.query), http.StatusOK)
			var starts []int64
			for _, w := range p.Windows {
				starts = append(starts, w.StartMs)
			}
			if !reflect.DeepEqual(starts, tc.wantStarts) || p.Key != "k" {
				t.Errorf("key %q window starts %v, want k %v", p.Key, starts, tc.wantStarts)
			}
			from, to := n.windowBounds()
			if !from.Equal(tc.wantFrom) {
				t.Errorf("Windows from %v, want %v", from, tc.wantFrom)
			}
			if tc.wantTo.IsZero() {
				if to.Before(before) || to.After(time.Now()) {
					t.Errorf("Windows to %v, want now", to)
				}
			} else if !to.Equal(tc.wantTo) {
				t.Errorf("Windows to %v, want %v", to, tc.wantTo)
			}
		})
	}
}

func TestWindowsErrors(t *testing.T) {
	c := newCluster(t, 1, nil, Options{})
	for _, tc := range []struct {
		name, path string
		parts      []string
	}{
		{"not a window store", "/v1/stores/counts/keys/a/windows", []string{`store "counts" is not a window store`}},
		{"bad from", "/v1/stores/windowed/keys/k/windows?from=yesterday", []string{`from="yesterday"`, "RFC 3339"}},
		{"bad to", "/v1/stores/windowed/keys/k/windows?to=2024-13-01T00:00:00Z", []string{`to="2024-13-01T00:00:00Z"`}},
		{"date only", "/v1/stores/windowed/keys/k/windows?from=2024-01-01", []string{`from="2024-01-01"`}},
		{"from after to", "/v1/stores/windowed/keys/k/windows?from=3000&to=2000", []string{"after"}},
		{"bad key", "/v1/stores/ids/keys/x/windows", []string{`store "ids"`, `"x"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, get(t, c.nodes[0], tc.path), http.StatusBadRequest, tc.parts...)
		})
	}
}

func TestWindowsEmpty(t *testing.T) {
	c := newCluster(t, 1, nil, Options{})
	a := get(t, c.nodes[0], "/v1/stores/windowed/keys/none/windows")
	got := decode[map[string]json.RawMessage](t, a, http.StatusOK)
	if string(got["windows"]) != "[]" {
		t.Fatalf("got %s, want an empty windows list", a.body)
	}
}

func TestWindowsForwarded(t *testing.T) {
	c := newCluster(t, 2, func(k []byte) int {
		if string(k) == "k" {
			return 1
		}
		return 0
	}, Options{})
	a := get(t, c.nodes[0], "/v1/stores/windowed/keys/k/windows?from=1000&to=2000")
	p := decode[testWindows](t, a, http.StatusOK)
	if len(p.Windows) != 2 || p.Windows[1].Value != 2 {
		t.Errorf("got %s", a.body)
	}
	if sb := a.header.Get(HeaderServedBy); sb != c.nodes[1].endpoint {
		t.Errorf("served by %q, want owner %q", sb, c.nodes[1].endpoint)
	}
	if from, to := c.nodes[1].windowBounds(); from.UnixMilli() != 1000 || to.UnixMilli() != 2000 {
		t.Errorf("owner asked for [%v, %v], want the forwarded bounds", from, to)
	}

	a = get(t, c.nodes[0], "/v1/stores/counts/keys/k/windows")
	wantError(t, a, http.StatusBadRequest, "not a window store")
	if sb := a.header.Get(HeaderServedBy); sb != c.nodes[1].endpoint {
		t.Errorf("served by %q, want owner %q", sb, c.nodes[1].endpoint)
	}
}
