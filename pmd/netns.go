package pmd

import (
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
)

// InNetNS runs f on a locked OS thread that has entered the network
// namespace at path (e.g. /run/netns/r0), then returns the thread to its
// original namespace. With an empty path f runs in the current namespace.
// Sockets f creates stay in the namespace they were made in.
func InNetNS(path string, f func() error) error {
	if path == "" {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		// A thread that cannot be restored is never unlocked, so the runtime
		// retires it rather than reusing it in the wrong namespace.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("netns: current namespace: %w", err)
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(path)
		if err != nil {
			errc <- fmt.Errorf("netns %s: %w (see ip netns list)", path, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("netns %s: enter: %w", path, err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("netns %s: leave: %w", path, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// SeeIPLink returns the hint drivers append to "no such interface" errors:
// "see ip link", or for a device in a namespace "see ip -n NAME link".
func SeeIPLink(nsPath string) string {
	if nsPath == "" {
		return "see ip link"
	}
	return "see ip -n " + filepath.Base(nsPath) + " link"
}
