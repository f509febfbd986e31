package main

import (
	"math"
	"slices"
	"strings"
	"time"
)

// Activity is one thing a user did, the value of a "user-activity"
// record:
//
//	{"user_id":"u-0019","action":"purchase","amount":1299,"ip":"198.51.100.77","country":"XX","timestamp":"2026-11-28T10:21:07Z"}
type Activity struct {
	UserID string  `json:"user_id"`
	Action string  `json:"action"`           // "login", "failed_login", "view" or "purchase"
	Amount float64 `json:"amount,omitempty"` // what a purchase cost
	IP     string  `json:"ip"`
	// Country is the ISO 3166-1 code of the IP address, as a geolocation
	// database gives it, which also marks Tor exit nodes "T1" and
	// addresses it cannot place "XX".
	Country string    `json:"country"`
	Time    time.Time `json:"timestamp"`
}

// Enriched is an activity with its risk, the value scoring works on.
type Enriched struct {
	Activity
	// Risk weighs how much the activity says about an account in the
	// wrong hands: riskOf.
	Risk float64 `json:"risk"`
}

// serviceCountries are where the service is sold, and its users live.
var serviceCountries = []string{"US", "CA", "GB", "IE", "DE", "FR", "NL", "ES", "IT", "SE", "AU", "JP"}

// countryWeight multiplies the risk of an activity by where it came
// from: 1 from the service's countries, 1.5 from elsewhere, 2 from where
// no one can tell, 3 through Tor.
func countryWeight(country string) float64 {
	switch c := strings.ToUpper(country); {
	case slices.Contains(serviceCountries, c):
		return 1
	case c == "T1":
		return 3
	case c == "XX" || c == "":
		return 2
	}
	return 1.5
}

// actionWeight is the risk of an activity from home: browsing is next to
// nothing, a login something, a failed login (a typo, or a guess) much
// more, and a purchase a little plus one for every 100 spent, as taking
// money out is what a stolen account is for.
func actionWeight(a Activity) float64 {
	switch strings.ToLower(a.Action) {
	case "view":
		return 0.1
	case "login":
		return 1
	case "failed_login":
		return 4
	case "purchase":
		return 1 + max(a.Amount, 0)/100
	}
	return 1
}

// riskOf is the risk of a, its action's weight times its country's,
// rounded to hundredths.
func riskOf(a Activity) float64 {
	return math.Round(actionWeight(a)*countryWeight(a.Country)*100) / 100
}

// enrich adds a's risk: a stateless step, which needs nothing but a.
func enrich(a Activity) Enriched { return Enriched{Activity: a, Risk: riskOf(a)} }

// UserScore is what the store "user-scores" keeps per user, and the
// value of the "scores" and "alerts" records.
//
//	{"user_id":"u-0007","score":6.1521,"events":10,"last":{"user_id":"u-0007","action":"failed_login","ip":"198.51.100.66","country":"T1","timestamp":"2026-11-28T10:28:01.44Z","risk":12}}
type UserScore struct {
	UserID string `json:"user_id"`
	// Score is the user's baseline of risk: an exponential moving average
	// of the risk of their activities, each weighing scoreAlpha.
	Score  float64  `json:"score"`
	Events int64    `json:"events"` // activities scored
	Last   Enriched `json:"last"`   // the latest activity, which moved the score
}

const (
	// scoreAlpha is how much the latest activity weighs in the score: a
	// single risky act moves it by less than a third of its risk, a run
	// of them drives it up to theirs.
	scoreAlpha = 0.3
	// alertThreshold is the score from which a user is alerted on. No
	// run of activities from the service's countries reaches it but
	// purchases of 500 or more (a failed login there weighs 4, so no run
	// of typos does), while two failed logins through Tor (12 each) in a
	// row take a new user to 6.12. A score decays 30% of the way to each
	// new activity's risk, so a user stays alerted on for a few
	// activities after a risky run.
	alertThreshold = 6.0
)

// score folds e into s, the score of user so far; a new user starts from
// 0, as no history is no reason for suspicion. The score is rounded to
// ten-thousandths, which keeps the JSON readable.
func score(user string, e Enriched, s UserScore) UserScore {
	s.UserID = user
	s.Score = math.Round((scoreAlpha*e.Risk+(1-scoreAlpha)*s.Score)*1e4) / 1e4
	s.Events++
	s.Last = e
	return s
}

// eventTime is when the activity happened, or recordTime for one that
// does not say.
func eventTime(_ string, a Activity, recordTime time.Time) time.Time {
	if a.Time.IsZero() {
		return recordTime
	}
	return a.Time
}
