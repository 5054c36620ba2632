//go:build mbufcheck

package mbuf

import "fmt"

// checkInUse panics when the data of a free mbuf is touched. Built with the
// mbufcheck tag only (make test sets it); mbufs of unchecked pools are
// never marked and pass.
func checkInUse(m *Mbuf) {
	if m.state == stateFree {
		panic(fmt.Sprintf("mbuf: use after free of mbuf %d", m.idx))
	}
}
