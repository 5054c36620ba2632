package lltable

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// into brings the entry for a (MAC peerMAC) into state st.
func (e *env) into(a netip.Addr, st State) {
	e.t.Helper()
	e.reachable(a)
	if st == StateReachable {
		return
	}
	e.advance(46 * time.Second)
	if st == StateStale {
		e.wantState(a, st)
		return
	}
	e.rd.Lookup(e.tab.Snapshot(), a)
	e.advance(100 * time.Millisecond)
	if st == StateDelay {
		e.wantState(a, st)
		return
	}
	e.advance(5 * time.Second)
	e.wantState(a, StateProbe)
	e.stk.take()
}

// naReference is RFC 4861 Appendix C for an NA on an entry that is not
// INCOMPLETE, written from the table, independent of naInput.
func naReference(st State, s, o bool, lla string) (State, bool) {
	// lla: "none", "same", "diff". Returns the new state and whether the
	// link-layer address is replaced.
	switch {
	case s && !o && lla != "diff":
		return StateReachable, false
	case s && !o && lla == "diff":
		if st == StateReachable {
			return StateStale, false
		}
		return st, false
	case s && o:
		return StateReachable, lla == "diff"
	case !s && !o && lla == "diff":
		if st == StateReachable {
			return StateStale, false
		}
		return st, false
	case !s && !o:
		return st, false
	case !s && o && lla == "diff":
		return StateStale, true
	default: // !s && o, same or no LL
		return st, false
	}
}

func TestNAOverride(t *testing.T) {
	for _, st := range []State{StateReachable, StateStale, StateDelay, StateProbe} {
		for _, s := range []bool{false, true} {
			for _, o := range []bool{false, true} {
				for _, lla := range []string{"none", "same", "diff"} {
					for _, r := range []bool{false, true} {
						name := fmt.Sprintf("%v/S=%v/O=%v/%s/R=%v", st, s, o, lla, r)
						t.Run(name, func(t *testing.T) {
							e := newEnv(t, nil)
							e.into(peer6, st)
							var flags uint8
							if s {
								flags |= naFlagSolicited
							}
							if o {
								flags |= naFlagOverride
							}
							if r {
								flags |= naFlagRouter
							}
							var opt *[6]byte
							switch lla {
							case "same":
								opt = &peerMAC
							case "diff":
								opt = &peerMAC2
							}
							e.in(naFrame(peer6, peerMAC2, our6, flags, peer6, opt))
							wantSt, replaced := naReference(st, s, o, lla)
							x, _ := e.tab.Lookup(port1, peer6)
							wantMAC := peerMAC
							if replaced {
								wantMAC = peerMAC2
							}
							if x.State != wantSt || x.MAC != wantMAC {
								t.Fatalf("got %v %x, want %v %x", x.State, x.MAC, wantSt, wantMAC)
							}
							// Router flag: recorded when the NA was acted on.
							acted := o || lla != "diff"
							if acted && x.Router != r {
								t.Fatalf("router %v, want %v", x.Router, r)
							}
							e.tab.Poll()
							if mac, ok := e.rd.Lookup(e.tab.Snapshot(), peer6); !ok || mac != wantMAC {
								t.Fatalf("snapshot %x %v", mac, ok)
							}
						})
					}
				}
			}
		}
	}
}

func TestNAIncomplete(t *testing.T) {
	for _, s := range []bool{false, true} {
		e := newEnv(t, nil)
		e.miss(peer6)
		e.stk.take()
		// No TLLA: ignored.
		e.in(naFrame(peer6, peerMAC, our6, naFlagSolicited, peer6, nil))
		e.wantState(peer6, StateIncomplete)
		var f uint8
		want := StateStale
		if s {
			f, want = naFlagSolicited, StateReachable
		}
		e.in(naFrame(peer6, peerMAC, our6, f|naFlagRouter, peer6, &peerMAC))
		e.wantState(peer6, want)
		if x, _ := e.tab.Lookup(port1, peer6); !x.Router {
			t.Fatal("router flag not kept")
		}
		if n := len(e.stk.take()); n != 1 {
			t.Fatalf("%d packets released", n)
		}
	}
	// Unsolicited NA without an entry creates nothing.
	e := newEnv(t, nil)
	e.in(naFrame(peer6, peerMAC, allNodes6(), naFlagOverride, peer6, &peerMAC))
	if n, _ := e.tab.Len(); n != 0 {
		t.Fatal("NA created an entry")
	}
	// NA claiming our address: conflict.
	e.in(naFrame(our6, peerMAC, allNodes6(), naFlagOverride, our6, &peerMAC))
	if c := e.tab.Counters(); c.Conflicts != 1 || c.Dropped[DropSpoof] != 1 {
		t.Fatalf("conflicts %d", c.Conflicts)
	}
}

func allNodes6() netip.Addr { return netip.AddrFrom16(allNodes) }

func parseARPFrame(t *testing.T, f []byte) arpMsg {
	t.Helper()
	typ, p, why := parseEther(f)
	var a arpMsg
	if why != DropNone || typ != etherTypeARP || parseARP(p, &a) != DropNone {
		t.Fatalf("not a valid ARP frame: %x", f)
	}
	copy(a.ethDst[:], f[0:6])
	copy(a.ethSrc[:], f[6:12])
	return a
}

func parseNDFrame(t *testing.T, f []byte) ndMsg {
	t.Helper()
	typ, p, why := parseEther(f)
	var n ndMsg
	if why != DropNone || typ != etherTypeIPv6 {
		t.Fatalf("not IPv6: %x", f)
	}
	if why := parseND(p, &n); why != DropNone {
		t.Fatalf("invalid ND: %v", why)
	}
	copy(n.ethDst[:], f[0:6])
	copy(n.ethSrc[:], f[6:12])
	return n
}

func TestARPLearning(t *testing.T) {
	other := netip.MustParseAddr("198.18.0.77")
	offLink := netip.MustParseAddr("198.19.0.5")
	cases := []struct {
		name      string
		setup     State // entry for peer4 before (0: none)
		frame     []byte
		wantState State
		wantMAC   [6]byte
		reply     bool
		drop      Drop
	}{
		{"request for us creates STALE", 0,
			arpFrame(broadcastMAC, peerMAC, arpOpRequest, peerMAC, peer4, [6]byte{}, our4), StateStale, peerMAC, true, DropNone},
		{"request not for us teaches nothing", 0,
			arpFrame(broadcastMAC, peerMAC, arpOpRequest, peerMAC, peer4, [6]byte{}, other), 0, [6]byte{}, false, DropNotForUs},
		{"reply without entry creates nothing", 0,
			arpFrame(ourMAC, peerMAC, arpOpReply, peerMAC, peer4, ourMAC, our4), 0, [6]byte{}, false, DropNone},
		{"request not for us merges a known sender", StateReachable,
			arpFrame(broadcastMAC, peerMAC2, arpOpRequest, peerMAC2, peer4, [6]byte{}, other), StateStale, peerMAC2, false, DropNone},
		{"gratuitous ARP moves a known sender", StateReachable,
			arpFrame(broadcastMAC, peerMAC2, arpOpRequest, peerMAC2, peer4, [6]byte{}, peer4), StateStale, peerMAC2, false, DropNone},
		{"same MAC keeps REACHABLE", StateReachable,
			arpFrame(broadcastMAC, peerMAC, arpOpRequest, peerMAC, peer4, [6]byte{}, our4), StateReachable, peerMAC, true, DropNone},
		{"reply to us confirms", StateStale,
			arpFrame(ourMAC, peerMAC, arpOpReply, peerMAC, peer4, ourMAC, our4), StateReachable, peerMAC, false, DropNone},
		{"reply to us with a new MAC", StateDelay,
			arpFrame(ourMAC, peerMAC2, arpOpReply, peerMAC2, peer4, ourMAC, our4), StateReachable, peerMAC2, false, DropNone},
		{"sender claims our address", 0,
			arpFrame(broadcastMAC, peerMAC, arpOpRequest, peerMAC, our4, [6]byte{}, our4), 0, [6]byte{}, false, DropSpoof},
		{"sender claims our MAC", 0,
			arpFrame(broadcastMAC, ourMAC, arpOpRequest, ourMAC, peer4, [6]byte{}, our4), 0, [6]byte{}, false, DropSpoof},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, nil)
			if c.setup != 0 {
				e.into(peer4, c.setup)
			}
			e.stk.take()
			e.in(c.frame)
			if got := e.state(peer4); got != c.wantState {
				t.Fatalf("state %v, want %v", got, c.wantState)
			}
			if c.wantState != 0 {
				if x, _ := e.tab.Lookup(port1, peer4); x.MAC != c.wantMAC {
					t.Fatalf("MAC %x", x.MAC)
				}
			}
			out := e.stk.take()
			if c.reply != (len(out) == 1) || len(out) > 1 {
				t.Fatalf("%d frames sent, reply %v", len(out), c.reply)
			}
			if c.reply {
				a := parseARPFrame(t, out[0].data)
				if a.op != arpOpReply || a.sha != ourMAC || a.spa != ip4(our4) || a.tha != [6]byte(c.frame[22:28]) ||
					a.tpa != ip4(peer4) || a.ethDst != a.tha || a.ethSrc != ourMAC {
					t.Fatalf("reply %+v", a)
				}
			}
			if c.drop != DropNone && e.tab.Counters().Dropped[c.drop] != 1 {
				t.Fatalf("drop %v not counted", c.drop)
			}
		})
	}
	t.Run("off-link sender answered not learned", func(t *testing.T) {
		e := newEnv(t, nil)
		e.in(arpFrame(broadcastMAC, peerMAC, arpOpRequest, peerMAC, offLink, [6]byte{}, our4))
		if n, _ := e.tab.Len(); n != 0 || len(e.stk.take()) != 1 || e.tab.Counters().Dropped[DropNotOnLink] != 1 {
			t.Fatal("off-link sender learned or not answered")
		}
	})
	t.Run("probe from 0.0.0.0 answered", func(t *testing.T) {
		e := newEnv(t, nil)
		e.in(arpFrame(broadcastMAC, peerMAC, arpOpRequest, peerMAC, netip.IPv4Unspecified(), [6]byte{}, our4))
		out := e.stk.take()
		if n, _ := e.tab.Len(); n != 0 || len(out) != 1 {
			t.Fatal("probe learned or not answered")
		}
		if a := parseARPFrame(t, out[0].data); a.tpa != 0 || a.ethDst != peerMAC {
			t.Fatalf("probe reply %+v", a)
		}
	})
	t.Run("request resolves INCOMPLETE", func(t *testing.T) {
		e := newEnv(t, nil)
		e.miss(peer4)
		e.stk.take()
		e.in(arpFrame(broadcastMAC, peerMAC, arpOpRequest, peerMAC, peer4, [6]byte{}, our4))
		e.wantState(peer4, StateStale)
		if out := e.stk.take(); len(out) != 2 {
			t.Fatalf("%d frames (want the held packet and the reply)", len(out))
		}
	})
}

func TestNSLearningAndAnswer(t *testing.T) {
	t.Run("NS for us", func(t *testing.T) {
		e := newEnv(t, nil)
		e.in(nsFrame(peer6, peerMAC, netip.AddrFrom16(solicitedNode(our6.As16())), our6, &peerMAC))
		e.wantState(peer6, StateStale)
		out := e.stk.take()
		if len(out) != 1 {
			t.Fatalf("%d frames", len(out))
		}
		n := parseNDFrame(t, out[0].data)
		if n.typ != icmp6NA || n.flags != naFlagRouter|naFlagSolicited|naFlagOverride || n.target != our6.As16() ||
			n.src != our6.As16() || n.dst != peer6.As16() || !n.hasLLA || n.lla != ourMAC || n.ethDst != peerMAC {
			t.Fatalf("NA %+v", n)
		}
	})
	t.Run("NS updates a moved neighbour", func(t *testing.T) {
		e := newEnv(t, nil)
		e.into(peer6, StateReachable)
		e.in(nsFrame(peer6, peerMAC2, our6, our6, &peerMAC2))
		x, _ := e.tab.Lookup(port1, peer6)
		if x.State != StateStale || x.MAC != peerMAC2 {
			t.Fatalf("%v", x)
		}
	})
	t.Run("NS same MAC keeps state", func(t *testing.T) {
		e := newEnv(t, nil)
		e.into(peer6, StateReachable)
		e.in(nsFrame(peer6, peerMAC, our6, our6, &peerMAC))
		e.wantState(peer6, StateReachable)
	})
	t.Run("NS without SLLA answered, not learned", func(t *testing.T) {
		e := newEnv(t, nil)
		e.in(nsFrame(peer6, peerMAC, our6, our6, nil))
		if n, _ := e.tab.Len(); n != 0 {
			t.Fatal("learned")
		}
		out := e.stk.take()
		if len(out) != 1 || parseNDFrame(t, out[0].data).ethDst != peerMAC {
			t.Fatal("not answered to the Ethernet source")
		}
	})
	t.Run("DAD", func(t *testing.T) {
		e := newEnv(t, nil)
		e.in(nsFrame(netip.IPv6Unspecified(), peerMAC, netip.AddrFrom16(solicitedNode(our6.As16())), our6, nil))
		if n, _ := e.tab.Len(); n != 0 {
			t.Fatal("DAD NS learned")
		}
		out := e.stk.take()
		if len(out) != 1 {
			t.Fatal("DAD not defended")
		}
		n := parseNDFrame(t, out[0].data)
		if n.dst != allNodes || n.flags&naFlagSolicited != 0 || n.ethDst != multicastMAC6(allNodes) {
			t.Fatalf("DAD answer %+v", n)
		}
	})
	t.Run("NS not for us", func(t *testing.T) {
		e := newEnv(t, nil)
		e.in(nsFrame(peer6, peerMAC, netip.MustParseAddr("2001:2::99"), netip.MustParseAddr("2001:2::99"), &peerMAC))
		if n, _ := e.tab.Len(); n != 0 || len(e.stk.take()) != 0 || e.tab.Counters().Dropped[DropNotForUs] != 1 {
			t.Fatal("NS for another target acted on")
		}
	})
	t.Run("NS resolves INCOMPLETE", func(t *testing.T) {
		e := newEnv(t, nil)
		e.miss(peer6)
		e.stk.take()
		e.in(nsFrame(peer6, peerMAC, our6, our6, &peerMAC))
		e.wantState(peer6, StateStale)
		if out := e.stk.take(); len(out) != 2 {
			t.Fatalf("%d frames", len(out))
		}
	})
}

func TestAnnounce(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.tab.SetPort(port1, ourMAC, append(ourAddrs, netip.MustParsePrefix("198.18.5.1/24"), netip.MustParsePrefix("2001:2:0:5::1/64"))); err != nil {
		t.Fatal(err)
	}
	out := e.stk.take()
	if len(out) != 2 {
		t.Fatalf("%d announcements, want 2 (only the new addresses)", len(out))
	}
	a := parseARPFrame(t, out[0].data)
	if a.op != arpOpRequest || a.spa != a.tpa || a.spa != ip4(netip.MustParseAddr("198.18.5.1")) || a.ethDst != broadcastMAC {
		t.Fatalf("gratuitous ARP %+v", a)
	}
	n := parseNDFrame(t, out[1].data)
	if n.typ != icmp6NA || n.dst != allNodes || n.flags != naFlagRouter|naFlagOverride || n.lla != ourMAC {
		t.Fatalf("unsolicited NA %+v", n)
	}
	if err := e.tab.SetPort(3, [6]byte{1, 2, 3, 4, 5, 6}, nil); err == nil {
		t.Fatal("multicast port MAC accepted")
	}
}

// The table follows a neighbour that changed its MAC and announced it.
func TestFollowsMovedPeer(t *testing.T) {
	e := newEnv(t, nil)
	e.into(peer4, StateReachable)
	e.in(arpFrame(broadcastMAC, peerMAC2, arpOpRequest, peerMAC2, peer4, [6]byte{}, peer4))
	e.tab.Poll()
	if mac, ok := e.rd.Lookup(e.tab.Snapshot(), peer4); !ok || mac != peerMAC2 {
		t.Fatalf("snapshot %x", mac)
	}
	if c := e.tab.Counters(); c.Moved != 1 {
		t.Fatalf("moved %d", c.Moved)
	}
}
