package nlmirror

import (
	"errors"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AddrWrite asks the mirror to add (Del false) or remove an address on a
// kernel interface.
type AddrWrite struct {
	Del     bool
	Ifindex int32
	Prefix  netip.Prefix
}

// WriteAddr queues an address change for the kernel; a writer goroutine
// applies it, so the caller never waits for the kernel. It reports false
// (and counts an error) when the queue (1024 changes) is full; the next
// full dump reconciles the addresses again.
func (m *Mirror) WriteAddr(w AddrWrite) bool {
	select {
	case m.writes <- w:
		return true
	default:
		m.addrWriteErr.Add(1)
		return false
	}
}

func (m *Mirror) writer(h *netlink.Handle) {
	defer close(m.wdone)
	defer h.Close()
	for {
		select {
		case <-m.stop:
			return
		case w := <-m.writes:
			link, err := h.LinkByIndex(int(w.Ifindex))
			if err == nil {
				bits := w.Prefix.Addr().BitLen()
				a := &netlink.Addr{IPNet: &net.IPNet{IP: w.Prefix.Addr().AsSlice(), Mask: net.CIDRMask(w.Prefix.Bits(), bits)}}
				if w.Del {
					err = h.AddrDel(link, a)
					if errors.Is(err, unix.EADDRNOTAVAIL) {
						err = nil
					}
				} else {
					if w.Prefix.Addr().Is6() {
						a.Flags = unix.IFA_F_NODAD
					}
					err = h.AddrReplace(link, a)
				}
			}
			if err != nil {
				m.addrWriteErr.Add(1)
				m.cfg.Log.Warn("netlink mirror: address on kernel interface", "ifindex", w.Ifindex, "addr", w.Prefix, "del", w.Del, "err", err)
				continue
			}
			m.addrWrites.Add(1)
		}
	}
}
