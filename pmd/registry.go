package pmd

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Driver is a registered poll-mode driver.
type Driver struct {
	// Name is what "port add ... driver NAME" selects.
	Name string
	// Help is one line describing the driver.
	Help string
	// Status: the driver's ports have a status table (pmd.Statuser),
	// shown by "show NAME" and exported as metrics.
	Status bool
	// Args describes every argument the driver accepts (none: an empty
	// slice). Open is called only with arguments that passed CheckArgs.
	Args []Arg
	// Open creates a port. It succeeds completely or returns an error having
	// released everything it took.
	Open func(cfg Config) (Port, error)
	// Buffers, if set, says how many mbufs a port opened with arguments a
	// (valid for CheckArgs) keeps out of its queues' pools for as long as
	// it runs (an AF_XDP fill ring's worth per queue), looking the device
	// up in network namespace nsPath ("" for the current one) when that
	// depends on it. The stack checks that its pools cover every port's
	// need with a margin before opening a port (ctl: port add; fwdd
	// -check). Nil: the driver keeps no mbufs.
	Buffers func(a Args, nsPath string) (BufferNeed, error)
}

// BufferNeed is the mbufs a port keeps out of its pools while it runs
// (Driver.Buffers): PerQueue mbufs from the pool of each of its Queues
// (queue q's pool is Config.QueuePool(q)).
type BufferNeed struct {
	PerQueue int
	Queues   int
	// Arg is the driver argument that sets PerQueue ("" if none), named
	// in errors that ask to lower it.
	Arg string
}

// Buffers returns what a port of driver with arguments a keeps from its
// pools (Driver.Buffers); zero for drivers that keep nothing or that are
// unknown (Check reports those).
func Buffers(driver string, a Args, nsPath string) (BufferNeed, error) {
	d, ok := Lookup(driver)
	if !ok || d.Buffers == nil {
		return BufferNeed{}, nil
	}
	return d.Buffers(a, nsPath)
}

// The driver table is the package's only shared state: drivers register
// from init functions (as database/sql drivers do), and it is read-only
// afterwards. Ports, pools and everything else live in instance objects.
var (
	driversMu sync.RWMutex
	drivers   = map[string]Driver{}
)

// ErrUnknownDriver is returned by Open for a driver name nobody registered.
var ErrUnknownDriver = errors.New("unknown driver")

// Register makes a driver available by name. It panics if the name is
// taken or the driver is incomplete: both are programming errors caught at
// start-up.
func Register(d Driver) {
	if d.Name == "" || d.Open == nil || d.Args == nil {
		panic("pmd: Register: driver needs a name, an Open function and its Args (an empty slice for none)")
	}
	for _, a := range d.Args {
		if a.Type == ArgEnum && len(a.Choices) == 0 || a.Type == ArgSet && len(a.Choices) == 0 ||
			a.Member && a.Type != ArgPort || a.Type == ArgInt && a.Min > a.Max {
			panic("pmd: Register: driver " + d.Name + ": argument " + a.Name + " is described inconsistently")
		}
		if a.Default != "" {
			if err := a.check(a.Default); err != nil {
				panic("pmd: Register: driver " + d.Name + ": argument " + a.Name + ": default: " + err.Error())
			}
		}
	}
	driversMu.Lock()
	defer driversMu.Unlock()
	if _, dup := drivers[d.Name]; dup {
		panic("pmd: Register: driver " + d.Name + " registered twice")
	}
	drivers[d.Name] = d
}

// Drivers returns the registered drivers sorted by name.
func Drivers() []Driver {
	driversMu.RLock()
	defer driversMu.RUnlock()
	out := make([]Driver, 0, len(drivers))
	for _, d := range drivers {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Open creates a port with the driver cfg.Driver.
func Open(cfg Config) (Port, error) {
	driversMu.RLock()
	d, ok := drivers[cfg.Driver]
	driversMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("port %s: %w %q (available: %s)", cfg.Name, ErrUnknownDriver, cfg.Driver, strings.Join(driverNames(), ", "))
	}
	if len(cfg.Pools) == 0 {
		return nil, fmt.Errorf("port %s: driver %s: no mbuf pool given", cfg.Name, cfg.Driver)
	}
	if cfg.Args == nil {
		cfg.Args = Args{}
	}
	if err := d.CheckArgs(cfg.Args); err != nil {
		return nil, fmt.Errorf("port %s: %w", cfg.Name, err)
	}
	p, err := d.Open(cfg)
	if err != nil {
		return nil, fmt.Errorf("port %s: %w", cfg.Name, err)
	}
	return p, nil
}
