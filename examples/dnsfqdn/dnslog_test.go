package main

import (
	"strings"
	"testing"
	"time"
)

const sampleLine = "8/12/2017 9:35:32 AM 0490 PACKET 000000216EFFC910 UDP Snd 212.77.192.37 80a8 R Q [1080 NOERROR] A (3)ns1(3)ctc(3)gov(2)qa(0)"

func TestParseLine(t *testing.T) {
	sampleTime := time.Date(2017, 8, 12, 9, 35, 32, 0, time.UTC)
	sample := Packet{
		Time: sampleTime, Protocol: "UDP", Direction: "Snd", Remote: "212.77.192.37",
		Response: true, Opcode: "Q", Status: "NOERROR", Type: "A", FQDN: "ns1.ctc.gov.qa",
	}
	with := func(f func(*Packet)) Packet {
		p := sample
		f(&p)
		return p
	}
	tests := []struct {
		name string
		line string
		want Packet
	}{
		{"the issue's sample", sampleLine, sample},
		{"query received: blank response column",
			"8/12/2017 9:35:32 AM 0490 PACKET 000000216EFFC910 UDP Rcv 212.77.192.37 80a8   Q [0001   D   NOERROR] A (3)ns1(3)ctc(3)gov(2)qa(0)",
			with(func(p *Packet) { p.Direction, p.Response = "Rcv", false })},
		{"server padding and flag letters",
			"8/12/2017 9:35:32 AM 0490 PACKET  000000216EFFC910 UDP Snd 212.77.192.37   80a8 R Q [8381   DR NXDOMAIN] A      (3)ns1(3)ctc(3)gov(2)qa(0)",
			with(func(p *Packet) { p.Status = "NXDOMAIN" })},
		{"tabs", strings.ReplaceAll(sampleLine, " ", "\t"), sample},
		{"trailing carriage return", sampleLine + "\r", sample},
		{"SERVFAIL", strings.Replace(sampleLine, "NOERROR", "SERVFAIL", 1), with(func(p *Packet) { p.Status = "SERVFAIL" })},
		{"REFUSED", strings.Replace(sampleLine, "NOERROR", "REFUSED", 1), with(func(p *Packet) { p.Status = "REFUSED" })},
		{"AAAA", strings.Replace(sampleLine, "] A ", "] AAAA ", 1), with(func(p *Packet) { p.Type = "AAAA" })},
		{"MX for the mail domain",
			"8/12/2017 9:35:32 AM 0490 PACKET 000000216EFFC910 UDP Snd 212.77.192.37 80a8 R Q [8081   DR  NOERROR] MX (7)example(3)org(0)",
			with(func(p *Packet) { p.Type, p.FQDN = "MX", "example.org" })},
		{"PTR", "8/12/2017 9:35:32 AM 0490 PACKET 000000216EFFC910 UDP Snd 212.77.192.37 80a8 R Q [8081   DR  NOERROR] PTR (2)37(3)192(2)77(3)212(7)in-addr(4)arpa(0)",
			with(func(p *Packet) { p.Type, p.FQDN = "PTR", "37.192.77.212.in-addr.arpa" })},
		{"root", strings.Replace(sampleLine, "] A (3)ns1(3)ctc(3)gov(2)qa(0)", "] NS (0)", 1),
			with(func(p *Packet) { p.Type, p.FQDN = "NS", "." })},
		{"mixed case name is lower-cased", strings.Replace(sampleLine, "(3)ns1(3)ctc", "(3)nS1(3)CtC", 1), sample},
		{"TCP", strings.Replace(sampleLine, "UDP", "TCP", 1), with(func(p *Packet) { p.Protocol = "TCP" })},
		{"IPv6 client", strings.Replace(sampleLine, "212.77.192.37", "2001:db8::53", 1), with(func(p *Packet) { p.Remote = "2001:db8::53" })},
		{"PM", strings.Replace(sampleLine, "AM", "PM", 1), with(func(p *Packet) { p.Time = sampleTime.Add(12 * time.Hour) })},
		{"12 AM is midnight", strings.Replace(sampleLine, "9:35:32 AM", "12:05:00 AM", 1),
			with(func(p *Packet) { p.Time = time.Date(2017, 8, 12, 0, 5, 0, 0, time.UTC) })},
		{"24-hour clock", strings.Replace(sampleLine, "9:35:32 AM", "21:35:32", 1), with(func(p *Packet) { p.Time = sampleTime.Add(12 * time.Hour) })},
		{"notify opcode", strings.Replace(sampleLine, " R Q ", " R N ", 1), with(func(p *Packet) { p.Opcode = "N" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLine(tt.line)
			if err != nil {
				t.Fatalf("ParseLine(%q): %v", tt.line, err)
			}
			if got != tt.want {
				t.Errorf("ParseLine(%q)\n got %+v\nwant %+v", tt.line, got, tt.want)
			}
		})
	}
}

func TestParseLineRejects(t *testing.T) {
	tests := []struct {
		name, line, wantErr string
	}{
		{"empty", "", "not a packet line"},
		{"log header", "DNS Server log file creation at 8/12/2017 9:35:00 AM", "not a packet line"},
		{"event", "8/12/2017 9:35:32 AM 0490 EVENT   The DNS server has finished the background loading of zones. [x] y z", "context \"EVENT\""},
		{"note", "8/12/2017 9:35:32 AM 0490 Note: got GQCS failure on a dead socket context status=995, socket=500 [a b] c d", "context \"Note:\""},
		{"no packet id", strings.Replace(sampleLine, "000000216EFFC910 ", "", 1), "protocol \"Snd\""},
		{"no transaction id", strings.Replace(sampleLine, "80a8 R ", "", 1), "7 fields between the time and the flags"},
		{"detail line", "    Message:\t[id 80a8]", "date and time"},
		{"bad date", strings.Replace(sampleLine, "8/12/2017", "2017-08-12", 1), "date and time"},
		{"month 13", strings.Replace(sampleLine, "8/12/2017", "13/12/2017", 1), "date and time"},
		{"no time", strings.Replace(sampleLine, "9:35:32 AM ", "", 1), "date and time"},
		{"cut before the name", sampleLine[:strings.Index(sampleLine, "] A")+3], "fields after the flags"},
		{"cut in the name", sampleLine[:len(sampleLine)-4], "label of length"},
		{"no end of name", strings.TrimSuffix(sampleLine, "(0)"), "want (length)label...(0)"},
		{"extra field at the end", sampleLine + " extra", "fields after the flags"},
		{"unknown protocol", strings.Replace(sampleLine, "UDP", "SCTP", 1), "protocol \"SCTP\""},
		{"unknown direction", strings.Replace(sampleLine, "Snd", "Fwd", 1), "direction \"Fwd\""},
		{"bad address", strings.Replace(sampleLine, "212.77.192.37", "212.77.192.300", 1), "remote address"},
		{"bad response column", strings.Replace(sampleLine, " R Q ", " X Q ", 1), "response column"},
		{"bad flags", strings.Replace(sampleLine, "[1080", "[zz80", 1), "flags \"zz80\""},
		{"no status", strings.Replace(sampleLine, "[1080 NOERROR]", "[1080]", 1), "want [flags status]"},
		{"status not a code", strings.Replace(sampleLine, "NOERROR", "no-error", 1), "status"},
		{"label length over 63", strings.Replace(sampleLine, "(3)ns1", "(64)"+strings.Repeat("a", 64), 1), "label length \"64\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseLine(tt.line)
			if err == nil {
				t.Fatalf("ParseLine(%q) = %+v, want an error", tt.line, p)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseLine(%q): error %q, want it to mention %q", tt.line, err, tt.wantErr)
			}
		})
	}
}

func TestDecodeName(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"the issue's name", "(3)ns1(3)ctc(3)gov(2)qa(0)", "ns1.ctc.gov.qa"},
		{"one label", "(9)localhost(0)", "localhost"},
		{"root", "(0)", "."},
		{"lower-cased", "(3)WwW(6)GooGLe(3)cOm(0)", "www.google.com"},
		{"hyphens, digits and underscores", "(5)_ldap(4)_tcp(2)dc(6)_msdcs(6)corp-1(7)example(0)", "_ldap._tcp.dc._msdcs.corp-1.example"},
		{"parentheses inside a label are label bytes", "(3)a(b(3)com(0)", "a(b.com"},
		{"63-character label", "(63)" + strings.Repeat("x", 63) + "(3)com(0)", strings.Repeat("x", 63) + ".com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeName(tt.in)
			if err != nil {
				t.Fatalf("DecodeName(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("DecodeName(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}

	for _, bad := range []string{
		"", "ns1.ctc.gov.qa", "(3)ns1", "(3)ns1(3)ctc", "(5)ns1(0)", "(3)ns1(0)x", "(x)abc(0)",
		"(-1)(0)", "(3ns1(0)", "(64)" + strings.Repeat("x", 64) + "(0)",
		strings.Repeat("(63)"+strings.Repeat("x", 63), 4) + "(0)", // 255 characters
	} {
		if got, err := DecodeName(bad); err == nil {
			t.Errorf("DecodeName(%q) = %q, want an error", bad, got)
		}
	}
}

// TestEncodeName checks the generator's encoder against the decoder.
func TestEncodeName(t *testing.T) {
	for _, name := range []string{"ns1.ctc.gov.qa", "www.google.com", "localhost", "37.192.77.212.in-addr.arpa"} {
		enc := encodeName(name)
		got, err := DecodeName(enc)
		if err != nil || got != name {
			t.Errorf("DecodeName(encodeName(%q) = %q) = %q, %v", name, enc, got, err)
		}
	}
	if got, want := encodeName("ns1.ctc.gov.qa"), "(3)ns1(3)ctc(3)gov(2)qa(0)"; got != want {
		t.Errorf("encodeName = %q, want %q", got, want)
	}
}

// TestEventTime checks the timestamp extractor: a line's own time, else
// the record's.
func TestEventTime(t *testing.T) {
	recordTime := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		line string
		want time.Time
	}{
		{"packet line", sampleLine, time.Date(2017, 8, 12, 9, 35, 32, 0, time.UTC)},
		{"any line that starts with a time", "8/12/2017 9:35:32 PM 0490 EVENT anything", time.Date(2017, 8, 12, 21, 35, 32, 0, time.UTC)},
		{"24-hour clock", "8/12/2017 21:35:32 0490 PACKET", time.Date(2017, 8, 12, 21, 35, 32, 0, time.UTC)},
		{"time alone", "8/12/2017 9:35:32", time.Date(2017, 8, 12, 9, 35, 32, 0, time.UTC)},
		{"leading spaces", "  8/12/2017 9:35:32 AM x", time.Date(2017, 8, 12, 9, 35, 32, 0, time.UTC)},
		{"header falls back", "DNS Server log file creation at 8/12/2017 9:35:00 AM", recordTime},
		{"empty falls back", "", recordTime},
		{"bad time falls back", "8/12/2017 25:35:32 AM 0490 PACKET", recordTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := eventTime("", tt.line, recordTime); !got.Equal(tt.want) {
				t.Errorf("eventTime(%q) = %v, want %v", tt.line, got, tt.want)
			}
		})
	}
}
