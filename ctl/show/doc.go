// Package show renders the answers of the show commands: the executor
// fills plain rows (also its JSON data, Result.Data) and the functions
// here write the human text, in the manner of FreeBSD's netstat -rn,
// arp -an, ndp -an, ifconfig, ipfw show and sysctl.
//
// It is the only renderer of these tables: the daemon (package ctl) and
// ctl/ctltest's fake executor both fill these rows, so fwdctl's text and
// its -j output are the same for both. Fields a fake cannot know (driver
// mode, per-queue counters, probes, FIB memory...) are optional, and a
// column nothing fills (Use, rule bytes, FIB lookups or memory) is left
// out rather than printed as zeros.
//
// It owns only formatting: no state, no stack types beyond the rows
// below (and pmd.QueueStats for counters). Every function writes complete
// lines ending in '\n' and is deterministic for a given input (rows are
// printed in the order given; Sort* helpers put them in the usual order).
package show
