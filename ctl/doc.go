// Package ctl is fwdd's control plane: the daemon (Daemon, Start), the one
// goroutine that owns every change, and the show/get answers.
//
// Model and reconcile. The configuration the operator stated is a model
// (model.go): sysctls, ports with their addresses, static routes, rules,
// static neighbours. A batch of commands (a startup file, a fwdctl line, a
// reload) is applied to a copy of the model - routes as an overlay, since a
// full table is a million of them - validating every command; if one fails,
// the batch is refused with an error naming the command and nothing
// changes. Otherwise the running stack is reconciled with the new model
// (reconcile.go): ports opened first (the step most likely to fail; undone
// on error; a changed port whose new arguments name the device the running
// one holds, like an afxdp port's mode or queues, is replaced in place:
// closed first, and reopened as it was if the batch fails; a port whose
// driver takes the change live, pmd.Reconfigurer, like a lagg's members, is
// only checked here and changed once nothing can fail, then the workers
// are synchronised), then FIB changes in one batch (connected and local routes in
// every FIB, static routes in theirs), rules compiled, neighbour table
// told, the workers' State published, removed ports closed last. A reload
// (SIGHUP) is the same with a model built from the file: only the
// difference is applied.
//
// Concurrency: Exec is called from any goroutine (the control socket's
// clients, the metrics collector); batches are serialised through the
// control goroutine's channel, which also polls the neighbour table when
// workers hand it packets and every 100 ms.
//
// Kernel interfaces (lcp.go): a port's "lcp NAME" is created in reconcile
// step 2b, after the ports were opened (a taken name or a missing TUN
// device fails the batch, changing nothing); interfaces nobody wants any
// more are removed once the batch succeeded; carrier and MTU follow the
// port in publish. Package lcp owns the devices and the punt path.
//
// The command language is ctl/cmdlang, the socket ctl/ctlsock.
package ctl
