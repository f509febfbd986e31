// Package rest serves the interactive-query REST API of a kstreams
// application: reads of its state stores by key, by key range and by
// window, answered by whichever instance owns the data. An instance that
// does not own a key forwards the request to the owner, one hop only.
//
// The handler asks the running application for data through [Backend];
// it knows nothing of consumer groups or storage engines. Every response is
// JSON (Content-Type: application/json) and every error is
// {"error": "message"}. Only GET is served; other methods get 405.
//
// # Endpoints
//
//	GET /v1/stores
//	    200 {"stores": [{"name", "kind", "keyType", "valueType"}...]}
//	GET /v1/metadata
//	    200 Backend.Metadata() as JSON
//	GET /v1/stores/{store}/keys/{key}
//	    200 {"key": <key>, "value": <value>}
//	    404 unknown store, or key not found
//	    400 key text the store's codec cannot parse
//	GET /v1/stores/{store}/keys/{key}/windows?from=&to=
//	    200 {"key": <key>, "windows": [{"start": RFC 3339 with nanoseconds,
//	        "startMs": epoch ms, "end": …, "endMs": …, "value": <value>}...]}
//	    from and to are RFC 3339 or epoch milliseconds; they default to the
//	    epoch and now. 400 for a store that is not a window store.
//	GET /v1/stores/{store}/keys?from=&to=&limit=&local=
//	    200 {"items": [{"key": <key>, "value": <value>}...], "next": "<key text>"}
//
// Path segments are unescaped one by one, so a key containing "/" is
// written %2F, and "." or ".." as %2E or %2E%2E. The handler expects the
// full path starting at /v1/: mount it at "/" of a server, not behind
// [http.StripPrefix] or a [http.ServeMux], which would clean such paths.
// An empty key segment (…/keys/) is the key whose text is "".
//
// # Range scans and paging
//
// A range scan covers the whole store in key byte order: this instance's
// part plus, unless local=true, the part of every instance listed by
// Backend.RangeHosts, each queried in parallel with local=true and merged
// here. from and to are inclusive key texts; absent or empty, they leave
// the range open at that end. limit (default Options.DefaultLimit, at most
// Options.MaxLimit) bounds the items returned. "next" is present when more
// entries follow: it is the key text of the first entry not returned, to
// be passed as from for the next page. A request carrying
// X-Kstreams-Forwarded is answered as if it had local=true.
//
// Responses to local=true carry each key's serialized bytes, which the
// merging instance needs to order keys from different instances:
//
//	{"items": [{"key": …, "value": …, "raw": "<base64 of key bytes>"}...],
//	 "next": "<key text>", "nextRaw": "<base64 of next's key bytes>"}
//
// Responses without local=true never carry raw or nextRaw.
//
// # Ownership, forwarding and headers
//
// A key owned by another instance is forwarded to http://<owner> with the
// same path and query and the header X-Kstreams-Forwarded: 1; the owner's
// status, Content-Type, Retry-After, X-Kstreams-Owner, X-Kstreams-Served-By
// and body are copied back. A request that already carries
// X-Kstreams-Forwarded is never forwarded again, because two instances with
// different views of the group during a rebalance would otherwise bounce it
// between them; it gets 503 instead. A request with local=true is never
// forwarded either: a key owned elsewhere gets 503 with X-Kstreams-Owner
// naming the owner.
//
// 503 means "ask again": the owner is rebalancing, restoring, unknown,
// unreachable, or ownership is moving. It always carries Retry-After in
// whole seconds, at least 1. A forward that fails to get an answer (the
// owner died, timed out) is a 503 too, since the group will reassign the
// owner's partitions. 502 means another instance gave an answer this one
// could not use.
//
// Every response carries X-Kstreams-Served-By: the endpoint of the instance
// that produced the answer (Backend.Endpoint, omitted when it is empty).
package rest
