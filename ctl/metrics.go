package ctl

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// collector reads fwdd's counters at scrape time: the workers keep their
// own counters and pay nothing for metrics. The stack's model is read
// through the control goroutine (an Exec of show commands), so a scrape
// never races with a change.
type collector struct {
	d *Daemon

	pkts, bytes, drops, errs *prometheus.Desc
	pipeline, ruleHits       *prometheus.Desc
	pool                     *prometheus.Desc
	neigh, neighEvents       *prometheus.Desc
	fibRoutes                *prometheus.Desc
	fibLookups, fibMisses    *prometheus.Desc
	lcp                      *prometheus.Desc
}

func newMetrics(d *Daemon) *prometheus.Registry {
	c := &collector{
		d:        d,
		pkts:     prometheus.NewDesc("fwdd_port_packets_total", "Packets per port, queue and direction.", []string{"port", "queue", "dir"}, nil),
		bytes:    prometheus.NewDesc("fwdd_port_bytes_total", "Bytes per port, queue and direction.", []string{"port", "queue", "dir"}, nil),
		drops:    prometheus.NewDesc("fwdd_port_drops_total", "Packets dropped by the driver per port, queue and direction.", []string{"port", "queue", "dir"}, nil),
		errs:     prometheus.NewDesc("fwdd_port_errors_total", "Driver errors per port, queue and direction.", []string{"port", "queue", "dir"}, nil),
		pipeline: prometheus.NewDesc("fwdd_pipeline_packets_total", "Pipeline packets by outcome (forwarded, punted, drop reasons...) per worker.", []string{"worker", "reason"}, nil),
		ruleHits: prometheus.NewDesc("fwdd_rule_hits_total", "Packets matching each classifier rule.", []string{"rule"}, nil),
		pool:     prometheus.NewDesc("fwdd_mbuf_pool", "Mbufs per pool by state.", []string{"pool", "state"}, nil),
		neigh:    prometheus.NewDesc("fwdd_neighbours", "Neighbour entries by port and state.", []string{"port", "state"}, nil),
		neighEvents: prometheus.NewDesc("fwdd_neigh_events_total",
			"Neighbour table counters: frames and misses received from the pipeline, drops by reason (drop_*), requests and answers sent, entries learned, evicted, refused...",
			[]string{"event"}, nil),
		fibRoutes:  prometheus.NewDesc("fwdd_fib_routes", "Routes per FIB and family.", []string{"fib", "family"}, nil),
		fibLookups: prometheus.NewDesc("fwdd_fib_lookups_total", "FIB lookups of received packets per FIB.", []string{"fib"}, nil),
		fibMisses:  prometheus.NewDesc("fwdd_fib_misses_total", "FIB lookups that found no route, per FIB.", []string{"fib"}, nil),
		lcp:        prometheus.NewDesc("fwdd_lcp_packets_total", "Frames between a port and its kernel interface: punted, punt_drop, injected, inject_drop.", []string{"port", "lcp", "counter"}, nil),
	}
	// Every collector of the stack goes in d.coll: a vnet host registers
	// it with a vnet label (Daemon.Collector).
	d.coll = collectors{c, newLoadCollector(d), newMirrorCollector(d), newStatusCollector(d)}
	reg := prometheus.NewRegistry()
	reg.MustRegister(d.coll)
	return reg
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.pkts, c.bytes, c.drops, c.errs, c.pipeline, c.ruleHits, c.pool, c.neigh, c.neighEvents, c.fibRoutes, c.fibLookups, c.fibMisses, c.lcp} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	snap, err := c.d.snapshot()
	if err != nil {
		return
	}
	ctr := prometheus.CounterValue
	for _, p := range snap.ports {
		for q, st := range p.PerQueue {
			qs := strconv.Itoa(q)
			ch <- prometheus.MustNewConstMetric(c.pkts, ctr, float64(st.RxPackets), p.Name, qs, "rx")
			ch <- prometheus.MustNewConstMetric(c.pkts, ctr, float64(st.TxPackets), p.Name, qs, "tx")
			ch <- prometheus.MustNewConstMetric(c.bytes, ctr, float64(st.RxBytes), p.Name, qs, "rx")
			ch <- prometheus.MustNewConstMetric(c.bytes, ctr, float64(st.TxBytes), p.Name, qs, "tx")
			ch <- prometheus.MustNewConstMetric(c.drops, ctr, float64(st.RxDrops), p.Name, qs, "rx")
			ch <- prometheus.MustNewConstMetric(c.drops, ctr, float64(st.TxDrops), p.Name, qs, "tx")
			ch <- prometheus.MustNewConstMetric(c.errs, ctr, float64(st.RxErrors), p.Name, qs, "rx")
			ch <- prometheus.MustNewConstMetric(c.errs, ctr, float64(st.TxErrors), p.Name, qs, "tx")
		}
	}
	for w, counters := range c.d.st.eng.CountersByWorker() {
		ws := strconv.Itoa(w)
		for reason, v := range counters {
			ch <- prometheus.MustNewConstMetric(c.pipeline, ctr, float64(v), ws, reason)
		}
	}
	for _, r := range snap.rules {
		ch <- prometheus.MustNewConstMetric(c.ruleHits, ctr, float64(r.Packets), strconv.Itoa(r.Rule.ID))
	}
	for _, p := range c.d.st.eng.Pools() {
		st := p.Stats()
		g := prometheus.GaugeValue
		ch <- prometheus.MustNewConstMetric(c.pool, g, float64(st.Free), st.Name, "free")
		ch <- prometheus.MustNewConstMetric(c.pool, g, float64(st.Cached), st.Name, "cached")
		ch <- prometheus.MustNewConstMetric(c.pool, g, float64(st.InUse), st.Name, "in_use")
	}
	for _, r := range snap.lcp {
		for _, v := range r.counters() {
			ch <- prometheus.MustNewConstMetric(c.lcp, ctr, float64(v.v), r.port, r.lcp, v.name)
		}
	}
	for k, n := range snap.neigh {
		ch <- prometheus.MustNewConstMetric(c.neigh, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
	for _, x := range snap.neighCtr {
		ch <- prometheus.MustNewConstMetric(c.neighEvents, prometheus.CounterValue, float64(x.Value), x.Name)
	}
	for _, f := range snap.fibs {
		ch <- prometheus.MustNewConstMetric(c.fibRoutes, prometheus.GaugeValue, float64(f.Routes4), strconv.Itoa(f.FIB), "inet")
		ch <- prometheus.MustNewConstMetric(c.fibRoutes, prometheus.GaugeValue, float64(f.Routes6), strconv.Itoa(f.FIB), "inet6")
		ch <- prometheus.MustNewConstMetric(c.fibLookups, prometheus.CounterValue, float64(f.Lookups), strconv.Itoa(f.FIB))
		ch <- prometheus.MustNewConstMetric(c.fibMisses, prometheus.CounterValue, float64(f.Misses), strconv.Itoa(f.FIB))
	}
}

// statusCollector exports the gauges of ports with a status (pmd.Statuser,
// e.g. a lagg's members and their LACP state) as
// fwdd_port_status{port, member, name, info}.
type statusCollector struct {
	d    *Daemon
	desc *prometheus.Desc
}

func newStatusCollector(d *Daemon) statusCollector {
	return statusCollector{d: d, desc: prometheus.NewDesc("fwdd_port_status",
		"Driver state of ports that have one (show DRIVER, e.g. show lagg): name says what (lagg_member_active, lagg_lacp_actor_state, ...), "+
			"member the member port, info a textual value (a partner system).", []string{"port", "member", "name", "info"}, nil)}
}

func (c statusCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	snap, err := c.d.snapshot()
	if err != nil {
		return
	}
	for _, g := range snap.gauges {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, g.Value, g.Port, g.Member, g.Name, g.Info)
	}
}
