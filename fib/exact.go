package fib

import (
	"fmt"
	"net/netip"
)

// RouteExact returns the next hop of exactly prefix p (masked) in FIB fib,
// and whether the FIB has that prefix. Control goroutine only, like Routes.
func (f *FIBs) RouteExact(fib uint32, p netip.Prefix) (uint32, bool, error) {
	if int64(fib) >= int64(f.nfib) {
		return 0, false, fmt.Errorf("fib: route of fib %d: %w", fib, ErrFIB)
	}
	if !p.IsValid() || p.Masked() != p {
		return 0, false, fmt.Errorf("fib: route %v: %w", p, ErrBadPrefix)
	}
	nh, ok := f.exact(fib, p)
	return nh, ok, nil
}
