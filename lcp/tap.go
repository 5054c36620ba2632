package lcp

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/fwdd/fwdd/pmd"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TunDevice is the clone device TAPs are made from.
const TunDevice = "/dev/net/tun"

// Errors of Add, wrapped with the details.
var (
	ErrExists = errors.New("a kernel interface of that name exists already")
	ErrNoTun  = errors.New(TunDevice + " is missing")
)

// tap is one kernel interface: its descriptor and what the control side
// set on it. Immutable once published, but for fd's lifetime (closed after
// a grace period once unpublished).
type tap struct {
	port    uint16
	name    string
	ifindex int
	fd      int
	nsPath  string
}

// openTap creates TAP name in the namespace at nsPath ("" = ours) with mac
// and mtu, up, carrier as given. It fails, having created nothing, when
// the name is taken or the TUN device is missing.
func openTap(tunPath, nsPath, name string, mac net.HardwareAddr, mtu int, carrier bool) (*tap, error) {
	t := &tap{name: name, fd: -1, nsPath: nsPath}
	err := pmd.InNetNS(nsPath, func() error {
		if _, err := net.InterfaceByName(name); err == nil {
			return fmt.Errorf("lcp %s: %w (%s; choose another name)", name, ErrExists, pmd.SeeIPLink(nsPath))
		}
		// Non-blocking: the punt goroutine polls it. Safe: the descriptor
		// is owned by this tap until close.
		fd, err := unix.Open(tunPath, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("lcp %s: %w (load the tun module: modprobe tun)", name, ErrNoTun)
			}
			return fmt.Errorf("lcp %s: open %s: %w", name, tunPath, err)
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("lcp %s: %w", name, err)
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("lcp %s: %w (%s; choose another name)", name, ErrExists, pmd.SeeIPLink(nsPath))
			}
			return fmt.Errorf("lcp %s: TUNSETIFF: %w", name, err)
		}
		t.fd = fd
		link, err := netlink.LinkByName(name)
		if err == nil {
			t.ifindex = link.Attrs().Index
			err = netlink.LinkSetHardwareAddr(link, mac)
		}
		if err == nil && mtu > 0 {
			err = netlink.LinkSetMTU(link, mtu)
		}
		if err == nil {
			err = setCarrier(fd, carrier)
		}
		if err == nil {
			err = netlink.LinkSetUp(link)
		}
		if err != nil {
			unix.Close(fd)
			t.fd = -1
			return fmt.Errorf("lcp %s: configuring the interface: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// setCarrier turns the TAP's carrier on or off (TUNSETCARRIER, Linux 4.20).
func setCarrier(fd int, on bool) error {
	v := 0
	if on {
		v = 1
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETCARRIER, v); err != nil {
		return fmt.Errorf("TUNSETCARRIER: %w", err)
	}
	return nil
}

// setMTU changes the TAP's MTU.
func (t *tap) setMTU(mtu int) error {
	return pmd.InNetNS(t.nsPath, func() error {
		link, err := netlink.LinkByIndex(t.ifindex)
		if err != nil {
			return fmt.Errorf("lcp %s: %w", t.name, err)
		}
		if err := netlink.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("lcp %s: mtu %d: %w", t.name, mtu, err)
		}
		return nil
	})
}

// setMAC changes the TAP's MAC (TAP devices allow it while up).
func (t *tap) setMAC(mac net.HardwareAddr) error {
	return pmd.InNetNS(t.nsPath, func() error {
		link, err := netlink.LinkByIndex(t.ifindex)
		if err != nil {
			return fmt.Errorf("lcp %s: %w", t.name, err)
		}
		if err := netlink.LinkSetHardwareAddr(link, mac); err != nil {
			return fmt.Errorf("lcp %s: mac %s: %w", t.name, mac, err)
		}
		return nil
	})
}

// closeWait bounds how long close waits for the kernel to remove the
// interface.
const closeWait = 500 * time.Millisecond

// close closes the descriptor: the kernel removes the (non-persistent)
// interface with it, once no other reference to the file is left. A
// process forked elsewhere in fwdd at that moment holds one until it
// execs, so close waits (at most closeWait, normally not at all) until the
// interface is gone: the name is free for the next command when it
// returns, e.g. "port set p0 lcp off" then "port set p1 lcp e0".
func (t *tap) close() error {
	if t.fd < 0 {
		return nil
	}
	err := unix.Close(t.fd)
	t.fd = -1
	deadline := time.Now().Add(closeWait)
	for t.exists() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return err
}

// exists says whether the interface is still in its namespace.
func (t *tap) exists() bool {
	return pmd.InNetNS(t.nsPath, func() error {
		_, err := netlink.LinkByIndex(t.ifindex)
		return err
	}) == nil
}
