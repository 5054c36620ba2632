package ctlsock

import "encoding/json"

// DefaultPath is where fwdd listens unless told otherwise (-s).
const DefaultPath = "/run/fwdd.sock"

// Request is one batch of command lines.
type Request struct {
	// Lines are parsed as lines 1..n (blank lines and comments allowed,
	// so a file's line numbers are kept).
	Lines []string `json:"lines"`
	// JSON asks for Response.Data.
	JSON bool `json:"json,omitempty"`
	// Source names the lines in errors ("fwdd.conf:3: ..."); "" for live
	// commands ("line 3: ..."; a single live line gets no number).
	Source string `json:"source,omitempty"`
	// Dir is the client's working directory, against which relative file
	// names (route load FILE) are resolved; "" leaves them as written.
	Dir string `json:"dir,omitempty"`
	// Stream asks for a streaming command's frames (stream.go): the one
	// line is monitor or capture. Without it such a command is refused.
	Stream bool `json:"stream,omitempty"`
}

// Response answers one Request.
type Response struct {
	OK bool `json:"ok"`
	// Error is the reason the batch was refused or failed; it may span
	// several lines (one per rejected line). Nothing was changed.
	Error string `json:"error,omitempty"`
	// Text is the human-readable output of the commands, concatenated.
	Text string `json:"text,omitempty"`
	// Data holds one JSON value per command when Request.JSON was set.
	Data []json.RawMessage `json:"data,omitempty"`
	// More marks a frame of a streaming command (monitor, capture): more
	// frames follow; the last one has More false (stream.go).
	More bool `json:"more,omitempty"`
	// Bin is a stream frame's binary payload (capture: pcap bytes).
	Bin []byte `json:"bin,omitempty"`
	// Evicted: the server closed this idle connection to serve another
	// client (at most Config.MaxClients are open). It is written when the
	// connection is closed, so a client reads it as the answer to the
	// next request it sends: that request was not executed, and may be
	// sent again on a new connection.
	Evicted bool `json:"evicted,omitempty"`

	// paged is set instead of Text and Data when a result of the batch is
	// given in pages (cmdlang.Result.Pages): the server writes it as it is
	// made (writePaged), as one response line all the same.
	paged *pagedAnswer
}
