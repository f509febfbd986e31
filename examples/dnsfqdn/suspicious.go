package main

import (
	"fmt"
	"math"
	"strings"
)

// suspiciousKeywords are parts of names that malware has used to pass its
// command-and-control traffic off as software updates or system services.
var suspiciousKeywords = []string{"update-java", "adobe-update", "systemsvc"}

// entropyThreshold is the Shannon entropy, in bits per character, from
// which a name's most random-looking part counts as machine-generated, as
// the names of a domain generation algorithm (DGA) are. That part is the
// longest run of letters and digits in the name, its labels split at
// hyphens too, leaving out the top-level domain and IDN labels ("xn--",
// whose punycode looks random). Hyphens are split at because compound
// names are long and mix many letters without being random:
// "firefox-settings-attachments" as a whole has 3.70 bits, its longest
// part, "attachments", 2.85.
//
// Entropy cannot exceed log2 of the length, so 3.6 bits needs at least 13
// characters (log2 12 = 3.58): no word of 12 letters or fewer is ever
// flagged, however varied its letters. Long names made of words repeat
// letters and stay below it: "googleusercontent" 3.18,
// "firebaseinstallations" 3.33, "googlesyndication" 3.45,
// "dropboxusercontent" 3.46, "stackoverflow" 3.55. Random letters and
// digits reach it at 20 characters in 9 cases out of 10 (median 3.85) and
// at 24 in 99 out of 100 (median 4.05): "x7k2qz9vbw4mjt1lp8rc" has 4.32.
//
// What slips through: short generated names (12 characters or fewer,
// like Conficker's), and random parts of 13 to 16 characters, 4 to 9 in
// 10 of which stay below 3.6; only a model of letter sequences would
// catch those. What is flagged wrongly: hosts named by a hash, as CloudFront's
// "d3c2x8h7q0k1lm" (3.81); an allowlist of such domains is the cure.
const entropyThreshold = 3.6

// Suspicion says why a name looks suspicious: Keyword is set for a name
// that contains one of suspiciousKeywords, else Label and Entropy for a
// name whose most random-looking part reaches entropyThreshold.
type Suspicion struct {
	Keyword string
	Label   string
	Entropy float64
}

// String is the reason as alerts give it.
func (s Suspicion) String() string {
	if s.Keyword != "" {
		return "keyword " + s.Keyword
	}
	return fmt.Sprintf("entropy %.2f bits/char in %q", s.Entropy, s.Label)
}

// Suspicious reports whether the lower-case name fqdn looks malicious,
// and why.
func Suspicious(fqdn string) (Suspicion, bool) {
	for _, kw := range suspiciousKeywords {
		if strings.Contains(fqdn, kw) {
			return Suspicion{Keyword: kw}, true
		}
	}
	part := randomPart(fqdn)
	if h := entropy(part); h >= entropyThreshold {
		return Suspicion{Label: part, Entropy: h}, true
	}
	return Suspicion{}, false
}

// randomPart returns the longest hyphen-free part of fqdn's labels, the
// top-level domain and IDN labels left out; of parts of equal length, the
// first.
func randomPart(fqdn string) string {
	labels := strings.Split(fqdn, ".")
	if len(labels) > 1 {
		labels = labels[:len(labels)-1]
	}
	longest := ""
	for _, l := range labels {
		if strings.HasPrefix(l, "xn--") {
			continue
		}
		for part := range strings.SplitSeq(l, "-") {
			if len(part) > len(longest) {
				longest = part
			}
		}
	}
	return longest
}

// entropy returns the Shannon entropy of s's bytes in bits per byte:
// 0 for "aaaa", 2 for "abcd", at most log2(len(s)).
func entropy(s string) float64 {
	if s == "" {
		return 0
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	h, n := 0.0, float64(len(s))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}
