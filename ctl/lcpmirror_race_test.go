//go:build race

package ctl

// mirrorRace: the race detector slows the mirror down several times.
const mirrorRace = true
