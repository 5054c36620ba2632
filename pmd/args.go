package pmd

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Args are a driver's key=value arguments, e.g. from
// "port add p0 driver afxdp dev r0 queues 2" or "dev=r0,queues=2".
type Args map[string]string

// ParseArgs parses "k=v,k=v" (commas or spaces between pairs).
func ParseArgs(s string) (Args, error) {
	a := Args{}
	for _, kv := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("driver argument %q: want key=value", kv)
		}
		if _, dup := a[k]; dup {
			return nil, fmt.Errorf("driver argument %q given twice", k)
		}
		a[k] = v
	}
	return a, nil
}

// String renders the arguments sorted by key, "k=v,k=v".
func (a Args) String() string {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + a[k]
	}
	return strings.Join(keys, ",")
}

// Check returns an error naming the first argument not in known, listing
// the ones the driver accepts.
func (a Args) Check(driver string, known ...string) error {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		found := false
		for _, n := range known {
			if k == n {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("driver %s: unknown argument %q (accepted: %s)", driver, k, strings.Join(known, ", "))
		}
	}
	return nil
}

// Str returns the value of key, or def if absent.
func (a Args) Str(key, def string) string {
	if v, ok := a[key]; ok {
		return v
	}
	return def
}

// Int returns the integer value of key in [lo, hi], or def if absent.
func (a Args) Int(key string, def, lo, hi int) (int, error) {
	v, ok := a[key]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("argument %s=%q: want an integer in [%d, %d]", key, v, lo, hi)
	}
	return n, nil
}

// Bool returns the boolean value of key (1/0, true/false, on/off, yes/no),
// or def if absent.
func (a Args) Bool(key string, def bool) (bool, error) {
	v, ok := a[key]
	if !ok {
		return def, nil
	}
	switch strings.ToLower(v) {
	case "1", "true", "on", "yes":
		return true, nil
	case "0", "false", "off", "no":
		return false, nil
	}
	return false, fmt.Errorf("argument %s=%q: want on or off", key, v)
}

// Enum returns the value of key, which must be one of choices, or def if
// absent.
func (a Args) Enum(key, def string, choices ...string) (string, error) {
	v, ok := a[key]
	if !ok {
		return def, nil
	}
	for _, c := range choices {
		if v == c {
			return v, nil
		}
	}
	return "", fmt.Errorf("argument %s=%q: want one of %s", key, v, strings.Join(choices, ", "))
}
