package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var testStart = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

func TestSynthActivityDeterministic(t *testing.T) {
	a, b := synthActivity(500, testStart), synthActivity(500, testStart)
	if !slices.Equal(a, b) {
		t.Fatal("two runs made different activities; the generator must be seeded")
	}
	for _, n := range []int{0, 1, 7} {
		if got := len(synthActivity(n, testStart)); got != n {
			t.Errorf("synthActivity(%d) made %d activities", n, got)
		}
	}
}

// TestSynthActivityMix checks the synthetic stream: times going forward
// within the span; every activity of a known user; users at home doing
// every kind of thing, none of it risky enough to reach alertThreshold
// alone; and each anomaly's run whole, in order, on every third activity,
// from its place on, at 500 activities (the embedded run's test) as at
// 3000.
func TestSynthActivityMix(t *testing.T) {
	for _, n := range []int{500, 3000} {
		activity := synthActivity(n, testStart)
		scripted := map[int]bool{}
		for _, an := range anomalies {
			first := int(an.at * float64(n))
			for j, step := range an.steps {
				i := first + 3*j
				scripted[i] = true
				a := activity[i]
				if a.UserID != userID(an.user) || a.Action != step.Action || a.Amount != step.Amount ||
					step.IP != "" && (a.IP != step.IP || a.Country != step.Country) {
					t.Errorf("n=%d: activity %d is %+v, want step %d of %s's %s: %+v", n, i, a, j, userID(an.user), an.what, step)
				}
			}
		}

		var prev time.Time
		actions := map[string]int{}
		users := map[string]bool{}
		for i, a := range activity {
			if a.Time.Before(prev) || a.Time.Before(testStart) || !a.Time.Before(testStart.Add(synthSpan)) {
				t.Fatalf("n=%d: activity %d at %v: want times going forward within [%v, %v)", n, i, a.Time, testStart, testStart.Add(synthSpan))
			}
			prev = a.Time
			if !strings.HasPrefix(a.UserID, "u-") || a.IP == "" {
				t.Fatalf("n=%d: activity %d %+v: want a user and an address", n, i, a)
			}
			users[a.UserID] = true
			if scripted[i] {
				continue
			}
			actions[a.Action]++
			if !slices.Contains(serviceCountries, a.Country) || !strings.HasPrefix(a.IP, "192.0.2.") {
				t.Errorf("n=%d: activity %d %+v: want its user at home", n, i, a)
			}
			if r := riskOf(a); r >= alertThreshold {
				t.Errorf("n=%d: activity %d %+v has risk %v: normal use must stay under %v", n, i, a, r, alertThreshold)
			}
		}
		if len(users) != synthUsers {
			t.Errorf("n=%d: %d users, want %d", n, len(users), synthUsers)
		}
		for _, act := range []string{"view", "login", "purchase", "failed_login"} {
			if actions[act] < n/50 {
				t.Errorf("n=%d: %d %s activities, want at least 2%%", n, actions[act], act)
			}
		}
		if actions["view"] < actions["login"]+actions["purchase"]+actions["failed_login"] {
			t.Errorf("n=%d: actions %v: want mostly views", n, actions)
		}
	}
}

func TestSynthStart(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 31, 42, 500, time.FixedZone("CET", 3600))
	got := synthStart(now)
	if want := time.Date(2026, 11, 28, 9, 21, 0, 0, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("synthStart(%v) = %v, want %v", now, got, want)
	}
	if end := got.Add(synthSpan); !end.Before(now) || now.Sub(got) > time.Hour {
		t.Errorf("stream spans [%v, %v), want it within the hour before %v", got, end, now)
	}
}
