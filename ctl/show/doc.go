// Package show renders the answers of the show commands: the executor
// fills plain rows (also its JSON data, Result.Data) and the functions
// here write the human text, in the manner of FreeBSD's netstat -rn,
// arp -an, ndp -an, ifconfig, ipfw show and sysctl.
//
// It owns only formatting: no state, no stack types beyond the rows
// below (and pmd.QueueStats for counters). Every function writes complete
// lines ending in '\n' and is deterministic for a given input (rows are
// printed in the order given; Sort* helpers put them in the usual order).
package show
