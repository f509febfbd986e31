package main

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// synthSpan is how much time the synthetic feed covers.
const synthSpan = 5 * time.Minute

// synthStart is where the synthetic feed made at now starts: on a minute,
// six minutes back, so that its edits fall into five whole one-minute
// windows, all within the last hour (the stores keep windows for an hour)
// and far within any topic's retention.
func synthStart(now time.Time) time.Time {
	return now.UTC().Truncate(time.Minute).Add(-6 * time.Minute)
}

// synthPage is a page of the synthetic feed.
type synthPage struct{ wiki, title string }

// pages are the pages edited, most edited first; synthEdits picks them
// with a Zipf distribution. Sandboxes and lists of recent events are
// among the most edited pages of a real wiki, and Wikidata's items are
// edited mostly by bots.
var pages = []synthPage{
	{"enwiki", "Wikipedia:Sandbox"},
	{"enwiki", "Deaths in 2026"},
	{"wikidatawiki", "Q42"},
	{"enwiki", "2026 in film"},
	{"dewiki", "Wikipedia:Spielwiese"},
	{"enwiki", "Apache Kafka"},
	{"frwiki", "Wikipédia:Bac à sable"},
	{"wikidatawiki", "Q64"},
	{"enwiki", "Go (programming language)"},
	{"enwiki", "List of tallest buildings"},
	{"dewiki", "Berlin"},
	{"enwiki", "Berlin"},
	{"wikidatawiki", "Q90"},
	{"enwiki", "Stream processing"},
	{"frwiki", "Paris"},
	{"enwiki", "Talk:Apache Kafka"},
	{"enwiki", "Climate change"},
	{"dewiki", "Deutsche Bahn"},
	{"wikidatawiki", "Q2013"},
	{"enwiki", "Exactly-once semantics"},
}

// anonCountries are where a wiki's anonymous editors are, by wiki.
var anonCountries = map[string][]string{
	"enwiki":       {"US", "US", "GB", "CA", "AU", "IN", "IE", "NZ"},
	"dewiki":       {"DE", "DE", "AT", "CH"},
	"frwiki":       {"FR", "FR", "BE", "CA", "CH"},
	"wikidatawiki": {"US", "DE", "FR", "JP", "BR"},
}

var bots = []string{"ArchiveLinkBot", "CiteFixBot", "QuickStatementsBot", "InterwikiBot"}

// synthEdits returns n edits from a seeded generator, so the same n and
// start give the same edits. Their times spread evenly over synthSpan
// from start, each made up to 15s earlier than its turn (but not before
// start), as edits reach a real feed a little out of order. Pages follow
// a Zipf distribution; on Wikidata most editors are bots, elsewhere one
// in ten is, one in five is anonymous and the rest are registered; most
// edits are edits, the rest page creations, log entries and category
// changes.
func synthEdits(n int, start time.Time) []Edit {
	start = start.UTC()
	rng := rand.New(rand.NewPCG(20, 1))
	zipf := rand.NewZipf(rng, 1.1, 1, uint64(len(pages)-1))
	out := make([]Edit, n)
	for i := range out {
		p := pages[zipf.Uint64()]
		t := start.Add(synthSpan * time.Duration(i) / time.Duration(n))
		if t = t.Add(-time.Duration(rng.IntN(15_000)) * time.Millisecond); t.Before(start) {
			t = start
		}
		e := Edit{Time: t, Wiki: p.wiki, Title: p.title}

		botShare := 10
		if p.wiki == "wikidatawiki" {
			botShare = 70
		}
		switch r := rng.IntN(100); {
		case r < botShare:
			e.IsBot, e.User = true, pick(rng, bots)
		case r < botShare+20:
			e.IsAnon = true
			e.User = fmt.Sprintf("203.0.113.%d", 1+rng.IntN(254))
			e.Country = pick(rng, anonCountries[p.wiki])
		default:
			e.User = fmt.Sprintf("Editor%03d", rng.IntN(300))
		}

		switch r := rng.IntN(100); {
		case r < 80:
			e.Action = "edit"
			e.Delta = rng.IntN(2000) - 500
			e.IsMinor = rng.IntN(3) == 0
		case r < 86:
			e.Action, e.Delta = "new", 500+rng.IntN(4500)
		case r < 94:
			e.Action = "log"
		default:
			e.Action = "categorize"
		}
		out[i] = e
	}
	return out
}

func pick[T any](rng *rand.Rand, s []T) T { return s[rng.IntN(len(s))] }
