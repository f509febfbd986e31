package main

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Packet is one PACKET line of a Windows DNS server debug log, such as
//
//	8/12/2017 9:35:32 AM 0490 PACKET 000000216EFFC910 UDP Snd 212.77.192.37 80a8 R Q [1080 NOERROR] A (3)ns1(3)ctc(3)gov(2)qa(0)
//
// which is the answer (R) to a standard query (Q) for the A record of
// ns1.ctc.gov.qa, sent (Snd) over UDP to 212.77.192.37 with the response
// code NOERROR. The fields between the bracket's flags and the response
// code (A, T, D, R: authoritative, truncated, recursion desired and
// available) are not kept.
type Packet struct {
	Time      time.Time `json:"time"`
	Protocol  string    `json:"protocol"`  // "UDP" or "TCP"
	Direction string    `json:"direction"` // "Snd" (sent by the server) or "Rcv" (received)
	// Remote is the other end of the packet: the client for a query
	// received or an answer sent, the forwarder or authoritative server
	// the server asks on a client's behalf for the others.
	Remote   string `json:"remote"`
	Response bool   `json:"response"` // the packet is a response; else a query
	Opcode   string `json:"opcode"`   // "Q" standard query, "N" notify, "U" update, "?" other
	Status   string `json:"status"`   // response code: NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...
	Type     string `json:"type"`     // question type: A, AAAA, MX, PTR, ...
	FQDN     string `json:"fqdn"`     // question name, lower-cased, without the final dot; "." for the root
}

// AnswerToClient reports whether p is the server's answer to a client:
// every question a client asks ends in exactly one such line (Snd, R),
// while the query that asked it (Rcv) and the server's own recursion
// (Snd queries to forwarders, Rcv answers from them) are logged on other
// lines, so counting only answers counts each question once. Answers
// also carry the outcome, NXDOMAIN or SERVFAIL, which queries do not.
func (p Packet) AnswerToClient() bool { return p.Direction == "Snd" && p.Response }

// Log lines carry the server's local time without a zone; they are read
// as UTC. Windows writes the date and time in the server's locale; these
// are the US layouts, with a 12-hour clock (the default) or a 24-hour one.
var timeLayouts = []string{"1/2/2006 3:04:05 PM", "1/2/2006 15:04:05"}

// parseTimestamp parses the date and time at the start of fields, the
// whitespace-separated fields of a log line, and returns the time and how
// many fields it took (3 with AM/PM, else 2).
func parseTimestamp(fields []string) (time.Time, int, error) {
	if len(fields) < 2 {
		return time.Time{}, 0, errors.New("no date and time")
	}
	s, n, layout := fields[0]+" "+fields[1], 2, timeLayouts[1]
	if len(fields) > 2 && (fields[2] == "AM" || fields[2] == "PM") {
		s, n, layout = s+" "+fields[2], 3, timeLayouts[0]
	}
	t, err := time.ParseInLocation(layout, s, time.UTC)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("date and time %q: want %q", s, layout)
	}
	return t, n, nil
}

// lineTime returns the time at the start of a log line.
func lineTime(line string) (time.Time, error) {
	// Only the first three fields matter, so stop splitting there.
	fields := strings.Fields(prefix(line, 3))
	t, _, err := parseTimestamp(fields)
	return t, err
}

// prefix returns line up to the end of its nth whitespace-separated field.
func prefix(line string, n int) string {
	inField := false
	for i := 0; i < len(line); i++ {
		space := line[i] == ' ' || line[i] == '\t'
		if inField && space {
			if n--; n == 0 {
				return line[:i]
			}
		}
		inField = !space
	}
	return line
}

// ParseLine parses one PACKET line. Other lines of a debug log (its
// header, blank lines, EVENT and Note lines, the detail lines that follow
// a packet when details are logged) return an error.
func ParseLine(line string) (Packet, error) {
	var p Packet
	lb, rb := strings.IndexByte(line, '['), strings.LastIndexByte(line, ']')
	if lb < 0 || rb < lb {
		return p, errors.New("no [flags status] field: not a packet line")
	}
	head := strings.Fields(line[:lb])
	t, n, err := parseTimestamp(head)
	if err != nil {
		return p, err
	}
	p.Time = t
	head = head[n:]
	// thread id, context, packet id, protocol, direction, remote address,
	// transaction id, then "R Q" for a response or just "Q" for a query
	// (the response column is blank).
	if len(head) > 1 && head[1] != "PACKET" {
		return p, fmt.Errorf("context %q: not a packet line", head[1])
	}
	if len(head) < 8 || len(head) > 9 {
		return p, fmt.Errorf("%d fields between the time and the flags, want 8 or 9", len(head))
	}
	p.Protocol, p.Direction, p.Remote = head[3], head[4], head[5]
	if p.Protocol != "UDP" && p.Protocol != "TCP" {
		return p, fmt.Errorf("protocol %q: want UDP or TCP", p.Protocol)
	}
	if p.Direction != "Snd" && p.Direction != "Rcv" {
		return p, fmt.Errorf("direction %q: want Snd or Rcv", p.Direction)
	}
	if _, err := netip.ParseAddr(p.Remote); err != nil {
		return p, fmt.Errorf("remote address: %w", err)
	}
	if len(head) == 9 {
		if head[7] != "R" {
			return p, fmt.Errorf("response column %q: want R or blank", head[7])
		}
		p.Response = true
	}
	p.Opcode = head[len(head)-1]
	if len(p.Opcode) != 1 {
		return p, fmt.Errorf("opcode %q: want one character", p.Opcode)
	}

	// [flags in hex, flag letters (maybe none), response code]
	bracket := strings.Fields(line[lb+1 : rb])
	if len(bracket) < 2 {
		return p, fmt.Errorf("[%s]: want [flags status]", line[lb+1:rb])
	}
	if _, err := strconv.ParseUint(bracket[0], 16, 16); err != nil {
		return p, fmt.Errorf("flags %q: want 4 hex digits", bracket[0])
	}
	p.Status = bracket[len(bracket)-1]
	if !isUpperWord(p.Status) {
		return p, fmt.Errorf("status %q: want a response code such as NOERROR", p.Status)
	}

	tail := strings.Fields(line[rb+1:])
	if len(tail) != 2 {
		return p, fmt.Errorf("%d fields after the flags, want the question type and name", len(tail))
	}
	p.Type = tail[0]
	if p.FQDN, err = DecodeName(tail[1]); err != nil {
		return p, err
	}
	return p, nil
}

func isUpperWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < 'A' || s[i] > 'Z') && (s[i] < '0' || s[i] > '9') {
			return false
		}
	}
	return true
}

// DecodeName turns the debug log's form of a domain name, the DNS wire
// format with each length byte written as a decimal number in
// parentheses, into dotted text: "(3)ns1(3)ctc(3)gov(2)qa(0)" is
// "ns1.ctc.gov.qa", and "(0)" alone is the root, ".". The name is
// lower-cased: names compare without case in DNS, and resolvers that
// randomize the case of their queries (0x20 encoding) would otherwise
// split one name's count over many spellings.
func DecodeName(s string) (string, error) {
	orig := s
	var sb strings.Builder
	for {
		if len(s) < 3 || s[0] != '(' {
			return "", fmt.Errorf("name %q: want (length)label...(0)", orig)
		}
		end := strings.IndexByte(s, ')')
		if end < 0 {
			return "", fmt.Errorf("name %q: unclosed label length", orig)
		}
		n, err := strconv.Atoi(s[1:end])
		if err != nil || n < 0 || n > 63 {
			return "", fmt.Errorf("name %q: label length %q, want 0 to 63", orig, s[1:end])
		}
		s = s[end+1:]
		if n == 0 {
			if s != "" {
				return "", fmt.Errorf("name %q: %q after the final (0)", orig, s)
			}
			break
		}
		if len(s) < n {
			return "", fmt.Errorf("name %q: label of length %d has only %d characters", orig, n, len(s))
		}
		if sb.Len() > 0 {
			sb.WriteByte('.')
		}
		sb.WriteString(s[:n])
		s = s[n:]
	}
	if sb.Len() == 0 {
		return ".", nil
	}
	if sb.Len() > 253 {
		return "", fmt.Errorf("name %q: %d characters, the limit is 253", orig, sb.Len())
	}
	return strings.ToLower(sb.String()), nil
}
