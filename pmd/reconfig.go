package pmd

import "errors"

// ErrReopen is returned (possibly wrapped) by Reconfigure when a change of
// arguments cannot be made live: the stack then closes the port and opens
// it again with the new arguments.
var ErrReopen = errors.New("the change needs the port reopened")

// Reconfigurer is implemented by ports that can take some changes of their
// arguments live, without being closed and reopened (a lagg adding or
// removing members: the other members keep their LACP state and their
// traffic). Without it, any change of arguments reopens the port.
//
// Reconfigure is two-phase so that a batch of changes stays all or
// nothing: it checks cfg (the port's whole new configuration, as Open
// would get it, Lookup included: ports the batch opens are there) and
// returns either an error — ErrReopen (wrapped) when the change needs a
// reopen, any other when the new arguments are wrong, as Open would fail
// — or apply, which makes the change and cannot fail. Nothing changes
// before apply; the stack calls apply at most once, on its control
// goroutine, only once the rest of the batch has succeeded, and then
// re-reads a Stacked port's Lowers and waits for its workers to leave the
// bursts they were in (so a lower port the change released is no longer
// used by this port's TxBurst when the stack hands it to anything else).
// Info may change in apply only in its MTU (as for any port).
type Reconfigurer interface {
	Reconfigure(cfg Config) (apply func(), err error)
}
