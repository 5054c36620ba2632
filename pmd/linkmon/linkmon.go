package linkmon

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// State is an interface's state as last reported by the kernel.
type State struct {
	// Present is false when no interface has the name.
	Present bool
	// Up is true when the interface is administratively up and has
	// carrier (IFF_UP and IFF_RUNNING).
	Up bool
	// Index, MAC and MTU are valid while Present.
	Index int
	MAC   net.HardwareAddr
	MTU   int
}

func (s State) String() string {
	switch {
	case !s.Present:
		return "absent"
	case s.Up:
		return fmt.Sprintf("up (ifindex %d)", s.Index)
	}
	return fmt.Sprintf("down (ifindex %d)", s.Index)
}

// Monitor watches one interface. Make it with Watch.
type Monitor struct {
	name  string
	ns    netns.NsHandle // -1 for the current namespace
	f     func(State)
	state atomic.Pointer[State]

	changes atomic.Uint64
	downs   atomic.Uint64
	resyncs atomic.Uint64

	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// ErrNoNamespace is wrapped when the namespace path cannot be opened.
var ErrNoNamespace = errors.New("linkmon: cannot open network namespace")

// Watch starts watching the interface called name in the network namespace
// at nsPath ("" for the caller's). It reads the current state before
// returning (State is valid at once; f is not called for it) and then calls
// f(new) from the monitor's goroutine on every change. f may be nil.
func Watch(name, nsPath string, f func(State)) (*Monitor, error) {
	m := &Monitor{name: name, ns: netns.None(), f: f, done: make(chan struct{})}
	if nsPath != "" {
		h, err := netns.GetFromPath(nsPath)
		if err != nil {
			return nil, fmt.Errorf("%w %s: %v (see ip netns list)", ErrNoNamespace, nsPath, err)
		}
		m.ns = h
	}
	ch, done, err := m.subscribe()
	if err != nil {
		m.closeNS()
		return nil, err
	}
	st, err := m.query()
	if err != nil {
		close(done)
		for range ch {
		}
		m.closeNS()
		return nil, err
	}
	m.state.Store(&st)
	m.wg.Add(1)
	go m.run(ch, done)
	return m, nil
}

// subscribe opens a netlink subscription; closing done ends it, after
// which ch is closed once drained.
func (m *Monitor) subscribe() (chan netlink.LinkUpdate, chan struct{}, error) {
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	opts := netlink.LinkSubscribeOptions{ErrorCallback: func(error) {}}
	if m.ns.IsOpen() {
		opts.Namespace = &m.ns
	}
	if err := netlink.LinkSubscribeWithOptions(ch, done, opts); err != nil {
		close(done)
		return nil, nil, fmt.Errorf("linkmon: %s: subscribe to link notifications: %w", m.name, err)
	}
	return ch, done, nil
}

// query reads the interface's current state.
func (m *Monitor) query() (State, error) {
	var h *netlink.Handle
	var err error
	if m.ns.IsOpen() {
		h, err = netlink.NewHandleAt(m.ns)
	} else {
		h, err = netlink.NewHandle()
	}
	if err != nil {
		return State{}, fmt.Errorf("linkmon: %s: netlink: %w", m.name, err)
	}
	defer h.Close()
	l, err := h.LinkByName(m.name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return State{}, nil
		}
		return State{}, fmt.Errorf("linkmon: %s: %w", m.name, err)
	}
	return stateOf(l.Attrs()), nil
}

func stateOf(a *netlink.LinkAttrs) State {
	return State{
		Present: true,
		Up:      a.RawFlags&unix.IFF_UP != 0 && a.RawFlags&unix.IFF_RUNNING != 0,
		Index:   a.Index,
		MAC:     append(net.HardwareAddr(nil), a.HardwareAddr...),
		MTU:     a.MTU,
	}
}

func (m *Monitor) run(ch chan netlink.LinkUpdate, done chan struct{}) {
	defer m.wg.Done()
	for {
		// Close ends the subscription (done), after which the library
		// closes ch once we have drained it.
		end := sync.OnceFunc(func() { close(done) })
		drained := make(chan struct{})
		go func() {
			select {
			case <-m.done:
				end()
			case <-drained:
			}
		}()
		for u := range ch {
			m.update(u)
		}
		close(drained)
		end()
		// The subscription ended: either Close, or the kernel overran the
		// socket. Resubscribe and resync until Close.
		for {
			select {
			case <-m.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			var err error
			if ch, done, err = m.subscribe(); err != nil {
				continue
			}
			st, err := m.query()
			if err == nil {
				m.resyncs.Add(1)
				m.set(st)
				break
			}
			close(done)
			for range ch {
			}
		}
	}
}

func (m *Monitor) update(u netlink.LinkUpdate) {
	a := u.Attrs()
	cur := m.state.Load()
	mine := a.Name == m.name
	wasMine := cur.Present && int(u.Index) == cur.Index
	if !mine && !wasMine {
		return
	}
	switch {
	case u.Header.Type == unix.RTM_DELLINK && (wasMine || mine):
		if cur.Present && int(u.Index) != cur.Index {
			return // an older interface of that name, long gone
		}
		m.set(State{})
	case mine:
		m.set(stateOf(a))
	default: // renamed away from our name
		m.set(State{})
	}
}

func (m *Monitor) set(st State) {
	cur := m.state.Load()
	if cur.Present == st.Present && cur.Up == st.Up && cur.Index == st.Index && cur.MTU == st.MTU && string(cur.MAC) == string(st.MAC) {
		return
	}
	if cur.Present && cur.Up && !(st.Present && st.Up) {
		m.downs.Add(1)
	}
	m.state.Store(&st)
	m.changes.Add(1)
	if m.f != nil {
		m.f(st)
	}
}

// State returns the last known state.
func (m *Monitor) State() State { return *m.state.Load() }

// Name returns the watched interface name.
func (m *Monitor) Name() string { return m.name }

// Changes returns how many changes of State were seen.
func (m *Monitor) Changes() uint64 { return m.changes.Load() }

// Downs returns how many times the interface went from up to down or
// absent, counted for every notification in order: a flap shorter than
// any polling interval still counts (before the callback is called).
func (m *Monitor) Downs() uint64 { return m.downs.Load() }

// Resyncs returns how many times the subscription was lost and renewed.
func (m *Monitor) Resyncs() uint64 { return m.resyncs.Load() }

// Close stops watching and waits for the goroutine (and so for any
// callback in progress). It must not be called from the callback.
// Idempotent.
func (m *Monitor) Close() error {
	m.closeOnce.Do(func() {
		close(m.done)
		m.wg.Wait()
		m.closeNS()
	})
	return nil
}

func (m *Monitor) closeNS() {
	if m.ns.IsOpen() {
		m.ns.Close()
	}
	m.ns = netns.None()
}
