package main

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestSuspicious(t *testing.T) {
	tests := []struct {
		name   string
		fqdn   string
		want   bool
		reason string
	}{
		{"keyword update-java", "update-java.com", true, "keyword update-java"},
		{"keyword adobe-update", "adobe-update.net", true, "keyword adobe-update"},
		{"keyword in a subdomain", "cdn.adobe-update.net", true, "keyword adobe-update"},
		{"keyword systemsvc", "systemsvc.org", true, "keyword systemsvc"},
		{"random 20-character label", "x7k2qz9vbw4mjt1lp8rc.com", true, `entropy 4.32 bits/char in "x7k2qz9vbw4mjt1lp8rc"`},
		{"random label under a subdomain", "www.kq3v9x2m7t1z8w4p0b6n.net", true, `entropy 4.32 bits/char in "kq3v9x2m7t1z8w4p0b6n"`},
		{"random label between hyphens", "cdn-x7k2qz9vbw4mjt1lp8rc-eu.example", true, `entropy 4.32 bits/char in "x7k2qz9vbw4mjt1lp8rc"`},
		// A known false positive: CDNs name hosts by a hash.
		{"CloudFront host", "d3c2x8h7q0k1lm.cloudfront.net", true, `entropy 3.81 bits/char in "d3c2x8h7q0k1lm"`},

		{"www.google.com", "www.google.com", false, ""},
		{"ns1.ctc.gov.qa", "ns1.ctc.gov.qa", false, ""},
		{"mail.example.org", "mail.example.org", false, ""},
		{"long word, letters repeat", "googleusercontent.com", false, ""},
		{"long word near the threshold", "stackoverflow.com", false, ""},
		{"hyphenated compound", "firefox-settings-attachments.cdn.mozilla.net", false, ""},
		{"12 distinct letters cannot reach the threshold", "abcdefghijkl.com", false, ""},
		{"IDN label", "xn--80ak6aa92e4qz7vbw.com", false, ""},
		{"TLD is not looked at", "a.x7k2qz9vbw4mjt1lp8rc", false, ""},
		{"reverse lookup", "37.192.77.212.in-addr.arpa", false, ""},
		{"root", ".", false, ""},
		{"single label", "localhost", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, got := Suspicious(tt.fqdn)
			if got != tt.want {
				t.Fatalf("Suspicious(%q) = %v (%+v), want %v", tt.fqdn, got, s, tt.want)
			}
			if got && s.String() != tt.reason {
				t.Errorf("Suspicious(%q) reason %q, want %q", tt.fqdn, s, tt.reason)
			}
		})
	}
}

func TestEntropy(t *testing.T) {
	tests := []struct {
		s    string
		want float64
	}{
		{"", 0},
		{"aaaa", 0},
		{"ab", 1},
		{"abcd", 2},
		{"aabb", 1},
		{"google", 1.918},
		{"example", 2.522},
		{"attachments", 2.845},
		{"stackoverflow", 3.547},
		{"googlesyndication", 3.455},
		{"x7k2qz9vbw4mjt1lp8rc", math.Log2(20)},
	}
	for _, tt := range tests {
		if got := entropy(tt.s); math.Abs(got-tt.want) > 0.001 {
			t.Errorf("entropy(%q) = %.4f, want %.3f", tt.s, got, tt.want)
		}
	}
}

// TestEntropyThresholdOnRandomLabels checks the figures the threshold's
// comment gives for random letters and digits: at 24 characters, at
// least 98 labels in 100 reach it; at 12, none can.
func TestEntropyThresholdOnRandomLabels(t *testing.T) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	rng := rand.New(rand.NewPCG(7, 7))
	reached := func(n int) int {
		hits := 0
		b := make([]byte, n)
		for range 1000 {
			for i := range b {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			}
			if entropy(string(b)) >= entropyThreshold {
				hits++
			}
		}
		return hits
	}
	if got := reached(24); got < 980 {
		t.Errorf("%d of 1000 random 24-character labels reach %v bits, want at least 980", got, entropyThreshold)
	}
	if got := reached(20); got < 850 || got > 950 {
		t.Errorf("%d of 1000 random 20-character labels reach %v bits, want about 9 in 10", got, entropyThreshold)
	}
	if got := reached(12); got != 0 {
		t.Errorf("%d of 1000 random 12-character labels reach %v bits, want none", got, entropyThreshold)
	}
}
