package ctl

import (
	"errors"

	"github.com/fwdd/fwdd/ctl/cmdlang"
)

var errNoTrace = errors.New("packet trace is not available yet")

func (s *stack) traceAdd(c *cmdlang.TraceAdd) (cmdlang.Result, error) {
	return cmdlang.Result{}, errNoTrace
}

func (s *stack) traceClear() (cmdlang.Result, error) { return cmdlang.Result{}, errNoTrace }

func (s *stack) showTrace() (cmdlang.Result, error) { return cmdlang.Result{}, errNoTrace }
