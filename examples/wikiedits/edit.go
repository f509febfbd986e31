package main

import (
	"strings"
	"time"
)

// Edit is one change to a wiki, the value of a "wiki-edits" record: an
// event of Wikimedia's recent-changes stream, flattened (its type is
// action here, bot is is_bot), with is_anon and, for an anonymous editor,
// the country of the editor's IP address.
//
//	{"timestamp":"2026-11-28T09:31:07Z","wiki":"enwiki","title":"Apache Kafka","action":"edit","user":"203.0.113.7","is_anon":true,"is_bot":false,"is_minor":false,"country":"GB","delta":-14}
type Edit struct {
	Time   time.Time `json:"timestamp"`
	Wiki   string    `json:"wiki"`   // the wiki's database name: "enwiki", "dewiki", "wikidatawiki", ...
	Title  string    `json:"title"`  // the page's title, namespace included: "Talk:Apache Kafka"
	Action string    `json:"action"` // "edit", "new" (a page created), "log" or "categorize"
	// User is the editor's user name, or the IP address of an anonymous
	// editor.
	User    string `json:"user"`
	IsAnon  bool   `json:"is_anon"`
	IsBot   bool   `json:"is_bot"`
	IsMinor bool   `json:"is_minor"`
	// Country is the ISO 3166-1 code of an anonymous editor's IP address;
	// the feed does not say where registered editors are.
	Country string `json:"country,omitempty"`
	Delta   int    `json:"delta"` // bytes added to the page; negative when removed
}

// Editor kinds, the first category of every edit.
const (
	editorBot        = "bot"
	editorAnonymous  = "anonymous"
	editorRegistered = "registered"
)

// editorKinds and knownActions are the categories print lists for every
// window, counted or not, in this order.
var (
	editorKinds  = []string{editorBot, editorAnonymous, editorRegistered}
	knownActions = []string{"edit", "new", "log", "categorize"}
)

// Category keys are "editor:<kind>" and "action:<action>", so that an
// action never shares a key with an editor kind.
const (
	editorPrefix = "editor:"
	actionPrefix = "action:"
)

// editor returns who made e: a bot (bots are registered accounts, but
// flagged as bots), else an anonymous editor or a registered one.
func (e Edit) editor() string {
	switch {
	case e.IsBot:
		return editorBot
	case e.IsAnon:
		return editorAnonymous
	}
	return editorRegistered
}

// action returns e's action, lower-cased; "unknown" when it has none.
func (e Edit) action() string {
	if a := strings.ToLower(strings.TrimSpace(e.Action)); a != "" {
		return a
	}
	return "unknown"
}

// categories returns the two category keys e counts under: its editor
// kind and its action.
func categories(e Edit) []string {
	return []string{editorPrefix + e.editor(), actionPrefix + e.action()}
}

// page returns the key e counts under per page: "<wiki>:<title>", as two
// wikis have pages of the same title ("Berlin" on enwiki and dewiki), or
// the bare title when the wiki is not given. It is "" for an edit without
// a title, which counts under no page.
func page(e Edit) string {
	switch {
	case e.Title == "":
		return ""
	case e.Wiki == "":
		return e.Title
	}
	return e.Wiki + ":" + e.Title
}

// eventTime is when the edit was made, or recordTime for an edit that does
// not say, so that windows follow the wikis' clock, not the feeder's.
func eventTime(_ string, e Edit, recordTime time.Time) time.Time {
	if e.Time.IsZero() {
		return recordTime
	}
	return e.Time
}
