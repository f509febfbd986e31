package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// synthSpan is how much time the synthetic log covers.
const synthSpan = 8 * time.Minute

// synthStart is where the synthetic log fed at now starts: on a minute,
// ten minutes back, so that its lines fall into eight or nine whole
// one-minute windows, all within the retention of every topic and store.
func synthStart(now time.Time) time.Time {
	return now.UTC().Truncate(time.Minute).Add(-10 * time.Minute)
}

// popular are the names clients ask for most, most popular first;
// synthLines picks them with a Zipf distribution.
var popular = []string{
	"www.google.com", "outlook.office365.com", "login.microsoftonline.com", "www.youtube.com",
	"graph.microsoft.com", "teams.microsoft.com", "clients4.google.com", "www.facebook.com",
	"i.ytimg.com", "fonts.googleapis.com", "api.github.com", "www.wikipedia.org",
	"slack.com", "ocsp.digicert.com", "time.windows.com", "stackoverflow.com",
	"settings-win.data.microsoft.com", "firefox-settings-attachments.cdn.mozilla.net",
	"update.googleapis.com", "www.amazon.com", "s3.amazonaws.com", "zoom.us",
	"mail.example.org", "intranet.corp.example", "ns1.ctc.gov.qa",
}

// nxNames do not exist: typing errors, and names Windows asks for on its
// own whether they exist or not.
var nxNames = []string{
	"gooogle.com", "wpad.corp.example", "isatap.corp.example", "printer-3f.corp.example",
	"www.exmaple.org", "outlook.office356.com",
}

// keywordNames are command-and-control names dressed up as updates.
var keywordNames = []string{"update-java.com", "cdn.adobe-update.net", "systemsvc.org"}

var (
	dgaTLDs   = []string{"com", "net", "org", "biz", "info"}
	dgaHosts  = []string{"10.1.0.66", "10.1.0.77"} // the infected machines
	forwarder = "8.8.8.8"
)

// synthLines returns n lines of a DNS server debug log from a seeded
// generator, so the same n and start give the same lines. The log opens
// with two header lines, which are not packets; then come client
// questions, their times spread evenly over synthSpan from start. Each
// question is logged as the query received from the client, on a cache
// miss (about a third) the query forwarded to 8.8.8.8 and its answer, and
// the answer sent back. The names asked are mostly popular ones with a
// Zipf distribution, some that do not exist (NXDOMAIN), now and then a
// keyword name or a fresh random-looking DGA name (most of them
// NXDOMAIN) from one of two infected machines, and the odd SERVFAIL. The
// log is cut at n lines, so its last question may lack its answer.
func synthLines(n int, start time.Time) []string {
	start = start.UTC()
	rng := rand.New(rand.NewPCG(53, 1035))
	zipf := rand.NewZipf(rng, 1.1, 1, uint64(len(popular)-1))
	out := make([]string, 0, n+3)
	for _, h := range []string{"DNS Server log file creation at %s", "Log file wrap at %s"} {
		out = append(out, fmt.Sprintf(h, start.Format(timeLayouts[0])))
	}
	threads := []uint16{0x0490, 0x0B08, 0x1A2C}
	for len(out) < n {
		t := start.Add(synthSpan * time.Duration(len(out)) / time.Duration(max(n, 1)))
		q := question{
			t:      t,
			thread: threads[rng.IntN(len(threads))],
			client: fmt.Sprintf("10.1.0.%d", 10+rng.IntN(40)),
			xid:    uint16(rng.Uint32()),
			proto:  "UDP",
			qtype:  pick(rng, []string{"A", "A", "A", "A", "A", "AAAA", "AAAA", "AAAA", "HTTPS", "MX", "TXT"}),
			status: "NOERROR",
		}
		if rng.IntN(50) == 0 {
			q.proto = "TCP"
		}
		switch r := rng.IntN(1000); {
		case r < 15: // a DGA name, the bot looking for its server
			q.name = dgaName(rng)
			q.client = pick(rng, dgaHosts)
			q.qtype = "A"
			if rng.IntN(10) > 0 {
				q.status = "NXDOMAIN"
			}
		case r < 25:
			q.name = pick(rng, keywordNames)
			q.client = pick(rng, dgaHosts)
		case r < 75:
			q.name, q.status = pick(rng, nxNames), "NXDOMAIN"
		case r < 85:
			q.name, q.status = popular[zipf.Uint64()], "SERVFAIL"
		case r < 95: // a reverse lookup of one of the clients
			q.name, q.qtype = fmt.Sprintf("%d.0.1.10.in-addr.arpa", 10+rng.IntN(40)), "PTR"
		default:
			q.name = popular[zipf.Uint64()]
		}
		// Unknown names and failures are never cached, so they are
		// always forwarded.
		forwarded := q.status != "NOERROR" || rng.IntN(3) == 0
		out = append(out, q.line(rng, "Rcv", q.client, false))
		if forwarded {
			fwd := q
			fwd.xid = uint16(rng.Uint32())
			out = append(out, fwd.line(rng, "Snd", forwarder, false), fwd.line(rng, "Rcv", forwarder, true))
		}
		out = append(out, q.line(rng, "Snd", q.client, true))
	}
	return out[:n]
}

// question is what the lines of one question have in common.
type question struct {
	t             time.Time
	thread, xid   uint16
	proto, client string
	qtype, name   string
	status        string
}

// line formats one packet of q as the server logs it, padding included:
//
//	11/28/2026 9:35:32 AM 0490 PACKET  000000216EFFC910 UDP Snd 10.1.0.23       80a8 R Q [8081   DR  NOERROR] A      (3)www(6)google(3)com(0)
func (q question) line(rng *rand.Rand, dir, remote string, response bool) string {
	rcol, flags, letters, status := " ", uint16(0x0001), "D", "NOERROR"
	if response {
		rcol, letters, status = "R", "DR", q.status
		flags = 0x8081 | uint16(rcodes[q.status])<<8
	}
	return fmt.Sprintf("%s %04X PACKET  %016X %s %s %-15s %04x %s Q [%04x %5s %8s] %-6s %s",
		q.t.Format(timeLayouts[0]), q.thread, rng.Uint64()>>16, q.proto, dir, remote, q.xid, rcol,
		flags, letters, status, q.qtype, encodeName(q.name))
}

var rcodes = map[string]int{"NOERROR": 0, "SERVFAIL": 2, "NXDOMAIN": 3}

// encodeName writes name as the debug log does: "ns1.ctc.gov.qa" is
// "(3)ns1(3)ctc(3)gov(2)qa(0)".
func encodeName(name string) string {
	var sb strings.Builder
	for l := range strings.SplitSeq(name, ".") {
		fmt.Fprintf(&sb, "(%d)%s", len(l), l)
	}
	sb.WriteString("(0)")
	return sb.String()
}

// dgaName returns a name of 24 to 27 random letters and digits under a
// common top-level domain, as the newer domain generation algorithms
// make them. At that length random parts reach entropyThreshold 99 times
// in 100; shorter ones would slip through more often (see there).
func dgaName(rng *rand.Rand) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 24+rng.IntN(4))
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b) + "." + pick(rng, dgaTLDs)
}

func pick[T any](rng *rand.Rand, s []T) T { return s[rng.IntN(len(s))] }
