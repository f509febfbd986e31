package main

import (
	"slices"
	"testing"
	"time"
)

var testStart = time.Date(2026, 11, 28, 9, 20, 0, 0, time.UTC)

func TestSynthEditsDeterministic(t *testing.T) {
	a, b := synthEdits(500, testStart), synthEdits(500, testStart)
	if !slices.Equal(a, b) {
		t.Fatal("two runs made different edits; the generator must be seeded")
	}
	for _, n := range []int{0, 1, 7} {
		if got := len(synthEdits(n, testStart)); got != n {
			t.Errorf("synthEdits(%d) made %d edits", n, got)
		}
	}
}

// TestSynthEditsMix checks that the synthetic feed looks like a wiki's:
// times within the span, a little out of order; every edit titled and
// categorized, with a user; pages skewed; all editor kinds and actions,
// Wikidata edited mostly by bots and elsewhere mostly by people; a country
// for exactly the anonymous edits.
func TestSynthEditsMix(t *testing.T) {
	const n = 3000
	edits := synthEdits(n, testStart)
	var (
		outOfOrder int
		prev       time.Time
		perPage    = map[string]int{}
		perCat     = map[string]int{}
		bots       = map[string]int{} // by wiki
		perWiki    = map[string]int{}
	)
	for i, e := range edits {
		if e.Time.Before(testStart) || !e.Time.Before(testStart.Add(synthSpan)) {
			t.Fatalf("edit %d at %v: want times within [%v, %v)", i, e.Time, testStart, testStart.Add(synthSpan))
		}
		if e.Time.Before(prev) {
			outOfOrder++
		}
		prev = e.Time
		if page(e) == "" || e.User == "" || e.Wiki == "" {
			t.Fatalf("edit %d %+v: want a page, a wiki and a user", i, e)
		}
		if e.IsAnon != (e.Country != "") {
			t.Errorf("edit %d %+v: want a country for exactly the anonymous edits", i, e)
		}
		perPage[page(e)]++
		for _, c := range categories(e) {
			perCat[c]++
		}
		perWiki[e.Wiki]++
		if e.IsBot {
			bots[e.Wiki]++
		}
	}
	if outOfOrder < n/10 || outOfOrder > n*9/10 {
		t.Errorf("%d of %d edits earlier than the one before; want some, as a real feed has", outOfOrder, n)
	}
	if perPage["enwiki:Wikipedia:Sandbox"] < 5*perPage["enwiki:Exactly-once semantics"] {
		t.Errorf("want skewed pages: the sandbox %d times, the last page %d", perPage["enwiki:Wikipedia:Sandbox"], perPage["enwiki:Exactly-once semantics"])
	}
	for _, kind := range editorKinds {
		if perCat[editorPrefix+kind] < n/20 {
			t.Errorf("%d %s edits of %d, want at least 5%%", perCat[editorPrefix+kind], kind, n)
		}
	}
	for _, a := range knownActions {
		if perCat[actionPrefix+a] < n/50 {
			t.Errorf("%d %s actions of %d, want at least 2%%", perCat[actionPrefix+a], a, n)
		}
	}
	if len(perCat) != len(editorKinds)+len(knownActions) {
		t.Errorf("categories %v: want only the known editor kinds and actions", perCat)
	}
	if bots["wikidatawiki"]*2 < perWiki["wikidatawiki"] || bots["enwiki"]*5 > perWiki["enwiki"] {
		t.Errorf("bots made %d of %d Wikidata edits and %d of %d enwiki edits; want most and few",
			bots["wikidatawiki"], perWiki["wikidatawiki"], bots["enwiki"], perWiki["enwiki"])
	}
}

func TestSynthStart(t *testing.T) {
	now := time.Date(2026, 11, 28, 9, 31, 42, 500, time.FixedZone("CET", 3600))
	got := synthStart(now)
	if want := time.Date(2026, 11, 28, 8, 25, 0, 0, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("synthStart(%v) = %v, want %v", now, got, want)
	}
	// The whole feed lies within the last hour: no store or topic
	// retention deletes it, and no edit is a day old.
	if end := got.Add(synthSpan); !end.Before(now) || now.Sub(got) > time.Hour {
		t.Errorf("feed spans [%v, %v), want it within the hour before %v", got, end, now)
	}
}
