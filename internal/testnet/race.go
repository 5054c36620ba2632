//go:build race

package testnet

// raceSlowdown scales Eventually's deadlines under the race detector.
const raceSlowdown = 3
