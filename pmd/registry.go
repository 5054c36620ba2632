package pmd

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
)

// Driver is a registered poll-mode driver.
type Driver struct {
	// Name is what "port add ... driver NAME" selects.
	Name string
	// Help is one line describing the driver and its arguments.
	Help string
	// Open creates a port. It succeeds completely or returns an error having
	// released everything it took.
	Open func(cfg Config) (Port, error)
	// Check, if set, validates cfg.Args as Open would, opening nothing,
	// and returns the kernel interface the port would use ("" if none).
	// fwdd -check and every batch call it (through pmd.Check) before
	// anything is opened.
	Check func(cfg Config) (dev string, err error)
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
	if d.Name == "" || d.Open == nil {
		panic("pmd: Register: driver needs a name and an Open function")
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

func lookup(cfg Config) (Driver, error) {
	driversMu.RLock()
	d, ok := drivers[cfg.Driver]
	driversMu.RUnlock()
	if !ok {
		names := []string{}
		for _, d := range Drivers() {
			names = append(names, d.Name)
		}
		return d, fmt.Errorf("port %s: %w %q (available: %s)", cfg.Name, ErrUnknownDriver, cfg.Driver, strings.Join(names, ", "))
	}
	return d, nil
}

// ErrNoDevice is wrapped by Check's refusal of a device that does not
// exist.
var ErrNoDevice = errors.New("no such interface")

// Check validates a port's configuration without opening anything
// exclusively: the driver is registered and accepts cfg.Args (its Check),
// and, with devices, the kernel interface it names exists (in cfg.NetNS).
// Errors read like Open's.
func Check(cfg Config, devices bool) error {
	d, err := lookup(cfg)
	if err != nil {
		return err
	}
	if d.Check == nil {
		return nil
	}
	if cfg.Args == nil {
		cfg.Args = Args{}
	}
	dev, err := d.Check(cfg)
	if err != nil {
		return fmt.Errorf("port %s: %w", cfg.Name, err)
	}
	if !devices || dev == "" {
		return nil
	}
	var lookErr error
	if err := InNetNS(cfg.NetNS, func() error {
		_, lookErr = net.InterfaceByName(dev)
		return nil
	}); err != nil {
		return fmt.Errorf("port %s: %w", cfg.Name, err)
	}
	if lookErr != nil {
		return fmt.Errorf("port %s: driver %s: dev %s: %w (%s)", cfg.Name, cfg.Driver, dev, ErrNoDevice, SeeIPLink(cfg.NetNS))
	}
	return nil
}

// Open creates a port with the driver cfg.Driver.
func Open(cfg Config) (Port, error) {
	d, err := lookup(cfg)
	if err != nil {
		return nil, err
	}
	if len(cfg.Pools) == 0 {
		return nil, fmt.Errorf("port %s: driver %s: no mbuf pool given", cfg.Name, cfg.Driver)
	}
	if cfg.Args == nil {
		cfg.Args = Args{}
	}
	p, err := d.Open(cfg)
	if err != nil {
		return nil, fmt.Errorf("port %s: %w", cfg.Name, err)
	}
	return p, nil
}
