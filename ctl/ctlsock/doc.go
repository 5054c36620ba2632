// Package ctlsock is fwdd's control socket: the server the daemon runs and
// the client fwdctl uses.
//
// The socket is a Unix stream socket (default /run/fwdd.sock), mode 0600,
// owned by root. Every connection's peer is checked with SO_PEERCRED and
// refused unless it is root (or the daemon's own uid); the refusal is sent
// as an ordinary error response so the client can print it.
//
// Protocol: newline-delimited JSON, any number of request/response pairs
// per connection, in order:
//
//	-> {"lines": ["route add 198.51.100.0/24 via 198.19.0.2"], "json": false,
//	    "source": "batch.conf", "dir": "/home/op"}
//	<- {"ok": true, "text": "...", "data": [...]}
//	<- {"ok": false, "error": "line 3: route add: \"via\" needs an address, got \"foo\""}
//
// The lines of one request are one batch: the server parses all of them
// (cmdlang.ParseLines, all or nothing) and hands the commands to the
// Executor in one call, which applies them all or none. Data, when asked
// for, holds one JSON value per command (null for commands that only change
// state).
//
// Bounds: a request line is at most Config.MaxRequest bytes (larger ones
// get an error response and the connection is closed) and must arrive
// within Config.RequestTimeout of its first byte; an answer must be written
// within Config.WriteTimeout. At most Config.MaxClients connections are
// served at once: a new client beyond that evicts the longest-idle
// connection (which reads Response.Evicted as the answer to its next
// request, not executed), and is refused only when none became idle
// within 2 s. A request
// cut short by a disconnect is discarded unexecuted. See docs/ctl.md.
//
// Lifecycle: Listen replaces a stale socket file (nobody answers on it) and
// refuses to start when another daemon answers. Close stops accepting,
// lets requests being executed finish and answer, closes every connection,
// and removes the socket file if it is still the one Listen created.
//
// The server has no package-level state; x/sys/unix is used only in
// peercred.go.
package ctlsock
