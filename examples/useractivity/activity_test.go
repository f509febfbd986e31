package main

import (
	"math"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/serde"
)

func TestRisk(t *testing.T) {
	tests := []struct {
		name string
		a    Activity
		want float64
	}{
		{"view at home", Activity{Action: "view", Country: "US"}, 0.1},
		{"login at home", Activity{Action: "login", Country: "DE"}, 1},
		{"failed login at home", Activity{Action: "failed_login", Country: "JP"}, 4},
		{"purchase at home", Activity{Action: "purchase", Amount: 49.99, Country: "GB"}, 1.5},
		{"large purchase at home", Activity{Action: "purchase", Amount: 1450, Country: "IE"}, 15.5},
		{"negative amount counts as none", Activity{Action: "purchase", Amount: -500, Country: "FR"}, 1},
		{"login from elsewhere", Activity{Action: "login", Country: "BR"}, 1.5},
		{"login from an unknown place", Activity{Action: "login", Country: "XX"}, 2},
		{"no country is unknown", Activity{Action: "login"}, 2},
		{"failed login through Tor", Activity{Action: "failed_login", Country: "T1"}, 12},
		{"purchase through Tor", Activity{Action: "purchase", Amount: 1000, Country: "T1"}, 33},
		{"case folds", Activity{Action: "FAILED_LOGIN", Country: "t1"}, 12},
		{"unknown action", Activity{Action: "logout", Country: "US"}, 1},
		{"rounded to hundredths", Activity{Action: "purchase", Amount: 12.34, Country: "BR"}, 1.69}, // 1.1234 * 1.5 = 1.6851
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := riskOf(tt.a); got != tt.want {
				t.Errorf("riskOf(%+v) = %v, want %v", tt.a, got, tt.want)
			}
			if e := enrich(tt.a); e.Risk != tt.want || e.Activity != tt.a {
				t.Errorf("enrich(%+v) = %+v", tt.a, e)
			}
		})
	}
}

// TestScore folds three failed logins through Tor into a new user's
// score: each moves it 30% of the way to 12.
func TestScore(t *testing.T) {
	e := enrich(Activity{UserID: "u-1", Action: "failed_login", Country: "T1"})
	var s UserScore
	for i, want := range []float64{3.6, 6.12, 7.884} {
		s = score("u-1", e, s)
		if math.Abs(s.Score-want) > 1e-9 || s.Events != int64(i+1) || s.UserID != "u-1" || s.Last != e {
			t.Fatalf("after %d: %+v, want score %v", i+1, s, want)
		}
	}
	// Views at home bring it down: 0.3·0.1 + 0.7·7.884 = 5.5488.
	s = score("u-1", enrich(Activity{UserID: "u-1", Action: "view", Country: "US"}), s)
	if math.Abs(s.Score-5.5488) > 1e-9 {
		t.Errorf("after a view: %v, want 5.5488", s.Score)
	}
}

// TestScoreRounds checks that a score keeps four decimals.
func TestScoreRounds(t *testing.T) {
	s := score("u", enrich(Activity{Action: "purchase", Amount: 12.34, Country: "BR"}), UserScore{}) // 0.3 · 1.69
	if s.Score != 0.507 {
		t.Errorf("score %v, want 0.507", s.Score)
	}
	s = score("u", enrich(Activity{Action: "view", Country: "US"}), UserScore{Score: 1.23456})
	if s.Score != 0.8942 { // 0.03 + 0.864192
		t.Errorf("score %v, want 0.8942", s.Score)
	}
}

// TestWireForms pins the JSON of an activity and of a score, which the
// README and the package doc show.
func TestWireForms(t *testing.T) {
	const activityWire = `{"user_id":"u-0019","action":"purchase","amount":1299,"ip":"198.51.100.77","country":"XX","timestamp":"2026-11-28T10:21:07Z"}`
	a := Activity{UserID: "u-0019", Action: "purchase", Amount: 1299, IP: "198.51.100.77", Country: "XX",
		Time: time.Date(2026, 11, 28, 10, 21, 7, 0, time.UTC)}
	if b, err := serde.JSON[Activity]().Serialize(inputTopic, a); err != nil || string(b) != activityWire {
		t.Errorf("activity JSON\n got %s (%v)\nwant %s", b, err, activityWire)
	}
	if back, err := serde.JSON[Activity]().Deserialize(inputTopic, []byte(activityWire)); err != nil || back != a {
		t.Errorf("read back %+v (%v), want %+v", back, err, a)
	}
	if b, _ := serde.JSON[Activity]().Serialize(inputTopic, Activity{UserID: "u", Action: "view"}); string(b) !=
		`{"user_id":"u","action":"view","ip":"","country":"","timestamp":"0001-01-01T00:00:00Z"}` {
		t.Errorf("a view's JSON %s: want no amount", b)
	}

	const scoreWire = `{"user_id":"u-0007","score":6.12,"events":2,"last":{"user_id":"u-0007","action":"failed_login","ip":"198.51.100.66","country":"T1","timestamp":"2026-11-28T10:19:31Z","risk":12}}`
	e := enrich(Activity{UserID: "u-0007", Action: "failed_login", IP: "198.51.100.66", Country: "T1",
		Time: time.Date(2026, 11, 28, 10, 19, 31, 0, time.UTC)})
	s := score("u-0007", e, score("u-0007", e, UserScore{}))
	if b, err := serde.JSON[UserScore]().Serialize(alertsTopic, s); err != nil || string(b) != scoreWire {
		t.Errorf("score JSON\n got %s (%v)\nwant %s", b, err, scoreWire)
	}
}
