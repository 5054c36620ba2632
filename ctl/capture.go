package ctl

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/fwdd/fwdd/capture"
	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/ctl/ctlsock"
	"github.com/fwdd/fwdd/fwd"
)

// Capture tuning.
const (
	// CaptureSlots is each worker's capture ring, in frames.
	CaptureSlots = 1024
	// capturePoll is how often the reader drains the rings.
	capturePoll = 2 * time.Millisecond
	// captureChunk is how many pcap bytes go in one stream frame at most.
	captureChunk = 64 << 10
	// MaxCaptures bounds captures armed at once.
	MaxCaptures = 8
)

// CaptureSummary is a capture's final answer.
type CaptureSummary struct {
	Port     string `json:"port"`
	Captured uint64 `json:"captured"`
	Dropped  uint64 `json:"dropped"`
	Reason   string `json:"stopped_by"`
}

// capture arms a capture session on the control goroutine, streams what
// it captures as pcap (pcapng) until count, duration, the client or the
// server stops it, and disarms it whatever happens.
func (d *Daemon) capture(ctx context.Context, c *cmdlang.Capture, out *ctlsock.Stream) (cmdlang.Result, error) {
	var sess *capture.Session
	var armErr error
	if err := d.do(func(s *stack) { sess, armErr = s.armCapture(c) }); err != nil {
		return cmdlang.Result{}, err
	}
	if armErr != nil {
		return cmdlang.Result{}, armErr
	}
	defer func() {
		if d.do(func(s *stack) { s.disarmCapture(sess) }) != nil {
			sess.Stop() // shutting down: the engine stops anyway
		}
	}()
	var buf bytes.Buffer
	w, err := capture.NewWriter(&buf, sess.Snaplen(), c.PcapNG, c.Port)
	if err != nil {
		return cmdlang.Result{}, err
	}
	if err := w.Flush(); err != nil {
		return cmdlang.Result{}, err
	}
	// The header goes at once, so that a reader (tcpdump -r -) starts.
	if err := out.Send("", nil, bytes.Clone(buf.Bytes())); err != nil {
		return cmdlang.Result{}, err
	}
	buf.Reset()
	var deadline <-chan time.Time
	if c.Duration > 0 {
		t := time.NewTimer(c.Duration)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(capturePoll)
	defer tick.Stop()
	sum := CaptureSummary{Port: c.Port}
	send := func() error {
		if err := w.Flush(); err != nil {
			return err
		}
		for buf.Len() > 0 {
			chunk := buf.Next(captureChunk)
			if err := out.Send("", nil, chunk); err != nil {
				return err
			}
		}
		buf.Reset()
		return nil
	}
	drain := func() error {
		max := 0
		if c.Count > 0 {
			max = c.Count - int(sum.Captured)
		}
		_, err := sess.Read(max, func(f *capture.Frame) error {
			sum.Captured++
			return w.Write(f)
		})
		if err != nil {
			return err
		}
		return send()
	}
	for sum.Reason == "" {
		select {
		case <-tick.C:
		case <-deadline:
			sum.Reason = "duration"
		case <-ctx.Done():
			sum.Reason = "client"
		}
		if err := drain(); err != nil {
			sum.Dropped = sess.Dropped()
			return cmdlang.Result{}, fmt.Errorf("capture on %s stopped after %d frames: %w", c.Port, sum.Captured, err)
		}
		if c.Count > 0 && sum.Captured >= uint64(c.Count) {
			sum.Reason = "count"
		}
	}
	sess.Stop()
	sum.Dropped = sess.Dropped()
	text := fmt.Sprintf("%d packets captured on %s (stopped by %s)", sum.Captured, c.Port, sum.Reason)
	if sum.Dropped > 0 {
		text += fmt.Sprintf(", %d dropped: the reader did not keep up (the capture rings hold %d frames per worker)", sum.Dropped, CaptureSlots)
	} else {
		text += ", none dropped"
	}
	return cmdlang.Result{Text: text + "\n", Data: sum}, nil
}

// armCapture makes a session for c and publishes it to the workers.
func (s *stack) armCapture(c *cmdlang.Capture) (*capture.Session, error) {
	lp, ok := s.live[c.Port]
	if !ok {
		return nil, fmt.Errorf("capture: port %s: %w", c.Port, errNoPort)
	}
	if len(s.obs.captures) >= MaxCaptures {
		return nil, fmt.Errorf("capture: %d captures are running already (at most %d); stop one first", len(s.obs.captures), MaxCaptures)
	}
	snap := c.Snaplen
	if snap == 0 {
		snap = cmdlang.DefaultSnaplen
	}
	snap = min(snap, s.eng.Config().BufSize, capture.MaxSnaplen)
	dir := capture.Both
	switch c.Dir {
	case cmdlang.DirRx:
		dir = capture.Rx
	case cmdlang.DirTx:
		dir = capture.Tx
	}
	sess, err := capture.New(capture.Config{Port: lp.id, Name: c.Port, Dir: dir, Snaplen: snap,
		Rings: len(s.eng.Workers()) + 1, Slots: CaptureSlots})
	if err != nil {
		return nil, err
	}
	s.obs.captures = append(s.obs.captures, sess)
	s.publishObservers()
	s.log.Info("capture armed", "port", c.Port, "dir", dir, "snaplen", snap)
	return sess, nil
}

// disarmCapture unpublishes sess and waits until no worker is inside it.
func (s *stack) disarmCapture(sess *capture.Session) {
	sess.Stop()
	i := slices.Index(s.obs.captures, sess)
	if i < 0 {
		return
	}
	s.obs.captures = slices.Delete(s.obs.captures, i, i+1)
	s.publishObservers()
	s.eng.Synchronize()
	s.log.Info("capture disarmed", "port", sess.Name(), "dropped", sess.Dropped())
}

// publishObservers gives the workers the captures and the trace armed now.
func (s *stack) publishObservers() {
	o := &fwd.Observers{Captures: slices.Clone(s.obs.captures), Trace: s.obs.trace}
	if s.obs.trace != nil && s.obs.trace.Full() {
		o.Trace = nil
	}
	s.eng.SetObservers(o)
}
