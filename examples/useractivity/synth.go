package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// synthSpan is how much time the synthetic stream covers.
const synthSpan = 8 * time.Minute

// synthStart is where the synthetic stream made at now starts: on a
// minute, ten minutes back, well within the last hour.
func synthStart(now time.Time) time.Time {
	return now.UTC().Truncate(time.Minute).Add(-10 * time.Minute)
}

// synthUsers is how many users the synthetic stream has.
const synthUsers = 40

// anomaly is a user's run of abnormal activities: what someone else did
// with their account, or they did out of character. A step's empty IP
// and country are the user's own.
type anomaly struct {
	user int // its number: userID(user)
	what string
	// at is where the run starts, as a fraction of the stream; its steps
	// then take every third activity.
	at    float64
	steps []Activity
}

// anomalies are the synthetic stream's abnormal runs.
var anomalies = []anomaly{
	{user: 7, what: "credential stuffing: failed logins through Tor", at: 0.25,
		steps: repeat(8, Activity{Action: "failed_login", IP: "198.51.100.66", Country: "T1"})},
	{user: 19, what: "account takeover: guessed the password from an unknown place, then bought", at: 0.5,
		steps: append(repeat(3, Activity{Action: "failed_login", IP: "198.51.100.77", Country: "XX"}),
			Activity{Action: "login", IP: "198.51.100.77", Country: "XX"},
			Activity{Action: "purchase", Amount: 1299, IP: "198.51.100.77", Country: "XX"},
			Activity{Action: "purchase", Amount: 849.5, IP: "198.51.100.77", Country: "XX"},
			Activity{Action: "purchase", Amount: 1999, IP: "198.51.100.77", Country: "XX"})},
	{user: 31, what: "spree: large purchases from home, one after another", at: 0.75,
		steps: []Activity{
			{Action: "purchase", Amount: 1450}, {Action: "purchase", Amount: 1200},
			{Action: "purchase", Amount: 1899}, {Action: "purchase", Amount: 990},
		}},
}

// userID is the id of user number n.
func userID(n int) string { return fmt.Sprintf("u-%04d", n) }

func repeat(n int, a Activity) []Activity {
	out := make([]Activity, n)
	for i := range out {
		out[i] = a
	}
	return out
}

// synthActivity returns n activities from a seeded generator, so the same
// n and start give the same activities, their times spread evenly over
// synthSpan from start. Each of synthUsers users ("u-0001" ...) lives in
// one of the service's countries and uses one address; they mostly
// browse, log in now and then, buy for 5 to 150, and mistype their
// password once in a while, none of which scores anywhere near
// alertThreshold. Into that the runs of anomalies are woven, each on
// every third activity from its place on; a stream too short for a run
// cuts it.
func synthActivity(n int, start time.Time) []Activity {
	start = start.UTC()
	rng := rand.New(rand.NewPCG(7, 2026))
	type home struct{ country, ip string }
	homes := make([]home, synthUsers+1) // by user number, from 1
	for u := 1; u <= synthUsers; u++ {
		homes[u] = home{pick(rng, serviceCountries), fmt.Sprintf("192.0.2.%d", u)}
	}

	// scripted[i] is the anomalous activity at position i, if any.
	scripted := map[int]Activity{}
	for _, an := range anomalies {
		first := int(an.at * float64(n))
		for j, s := range an.steps {
			s.UserID = userID(an.user)
			if s.IP == "" {
				s.IP, s.Country = homes[an.user].ip, homes[an.user].country
			}
			scripted[first+3*j] = s
		}
	}

	out := make([]Activity, n)
	for i := range out {
		t := start.Add(synthSpan * time.Duration(i) / time.Duration(n))
		if a, ok := scripted[i]; ok {
			a.Time = t
			out[i] = a
			continue
		}
		u := 1 + rng.IntN(synthUsers)
		a := Activity{UserID: userID(u), IP: homes[u].ip, Country: homes[u].country, Time: t}
		switch r := rng.IntN(100); {
		case r < 65:
			a.Action = "view"
		case r < 80:
			a.Action = "login"
		case r < 92:
			a.Action = "purchase"
			a.Amount = math.Round((5+rng.Float64()*145)*100) / 100
		default:
			a.Action = "failed_login"
		}
		out[i] = a
	}
	return out
}

func pick[T any](rng *rand.Rand, s []T) T { return s[rng.IntN(len(s))] }
