//go:build !linux

package fib

// adviseHuge does nothing where transparent huge pages are not available.
func adviseHuge[T any](s []T) {}
