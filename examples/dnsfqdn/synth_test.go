package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var testStart = time.Date(2026, 11, 28, 9, 20, 0, 0, time.UTC)

func TestSynthLinesDeterministic(t *testing.T) {
	a, b := synthLines(500, testStart), synthLines(500, testStart)
	if !slices.Equal(a, b) {
		t.Fatal("two runs made different lines; the generator must be seeded")
	}
	for _, n := range []int{0, 1, 2, 3, 7} {
		if got := len(synthLines(n, testStart)); got != n {
			t.Errorf("synthLines(%d) made %d lines", n, got)
		}
	}
}

// TestSynthLinesMix checks that the synthetic log looks like a server's:
// every line but the header parses, times only go forward and stay in
// the span, each question is answered once, and the names asked mix
// popular ones (skewed), unknown ones, keyword names and DGA names, all
// of the last two, and nothing else, flagged.
func TestSynthLinesMix(t *testing.T) {
	const n = 3000
	lines := synthLines(n, testStart)
	var (
		prev                           time.Time
		answers, queries, nx, servfail int
		perName                        = map[string]int{}
		types                          = map[string]int{}
		flagged                        = map[string]Suspicion{}
	)
	for i, l := range lines {
		p, err := ParseLine(l)
		if i < 2 {
			if err == nil {
				t.Errorf("header line %d %q parses", i, l)
			}
			continue
		}
		if err != nil {
			t.Fatalf("line %d %q: %v", i, l, err)
		}
		if p.Time.Before(prev) || p.Time.Before(testStart) || !p.Time.Before(testStart.Add(synthSpan)) {
			t.Fatalf("line %d at %v: want times going forward within [%v, %v)", i, p.Time, testStart, testStart.Add(synthSpan))
		}
		prev = p.Time
		if p.Direction == "Rcv" && !p.Response {
			queries++
		}
		if !p.AnswerToClient() {
			continue
		}
		answers++
		perName[p.FQDN]++
		types[p.Type]++
		switch p.Status {
		case "NXDOMAIN":
			nx++
		case "SERVFAIL":
			servfail++
		}
		if s, ok := Suspicious(p.FQDN); ok {
			flagged[p.FQDN] = s
		}
	}
	if queries-answers > 1 { // the last question may be cut off
		t.Errorf("%d queries from clients but %d answers", queries, answers)
	}
	if got := answers * 100 / (n - 2); got < 35 || got > 50 {
		t.Errorf("answers are %d%% of the lines, want 35%% to 50%% (a question takes 2 or 4 lines)", got)
	}
	if nx*100/answers < 4 || servfail == 0 {
		t.Errorf("%d NXDOMAIN and %d SERVFAIL answers of %d: want some of each, NXDOMAIN at least 4%%", nx, servfail, answers)
	}
	if perName["www.google.com"] < 5*perName["zoom.us"] {
		t.Errorf("want a skewed popularity: www.google.com %d times, zoom.us %d", perName["www.google.com"], perName["zoom.us"])
	}
	for _, typ := range []string{"A", "AAAA", "MX", "PTR"} {
		if types[typ] == 0 {
			t.Errorf("no %s questions", typ)
		}
	}

	var keywords, dga int
	for name, s := range flagged {
		switch {
		case s.Keyword != "" && slices.Contains(keywordNames, name):
			keywords++
		case s.Keyword == "" && isDGAName(name):
			dga++
		default:
			t.Errorf("%s flagged (%s) but it is neither a keyword name nor a DGA name", name, s)
		}
	}
	if keywords != len(keywordNames) {
		t.Errorf("%d keyword names asked for, want all %d", keywords, len(keywordNames))
	}
	for name := range perName {
		if isDGAName(name) && flagged[name] == (Suspicion{}) {
			t.Errorf("DGA name %s not flagged: entropy %.2f", name, entropy(randomPart(name)))
		}
	}
	if dga < 10 {
		t.Errorf("%d DGA names, want at least 10", dga)
	}
}

// isDGAName reports whether name has dgaName's shape.
func isDGAName(name string) bool {
	label, tld, ok := strings.Cut(name, ".")
	return ok && slices.Contains(dgaTLDs, tld) && len(label) >= 24 && len(label) <= 27
}

func TestSynthStart(t *testing.T) {
	now := time.Date(2026, 11, 28, 9, 31, 42, 500, time.FixedZone("CET", 3600))
	got := synthStart(now)
	if want := time.Date(2026, 11, 28, 8, 21, 0, 0, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("synthStart(%v) = %v, want %v", now, got, want)
	}
	// The whole log lies within the last hour, so no retention deletes it.
	if end := got.Add(synthSpan); !end.Before(now) || now.Sub(got) > time.Hour {
		t.Errorf("log spans [%v, %v), want it within the hour before %v", got, end, now)
	}
}
