//go:build !race

package ctl

const mirrorRace = false
