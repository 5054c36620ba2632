package capture

import (
	"bytes"
	"sync"
	"testing"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/gopacket/gopacket/pcapgo"
)

func frames(t *testing.T, p *mbuf.Pool, n, size int) []*mbuf.Mbuf {
	t.Helper()
	ms := make([]*mbuf.Mbuf, n)
	if k := p.Alloc(ms); k != n {
		t.Fatalf("pool: %d of %d", k, n)
	}
	for i, m := range ms {
		d := m.Append(size)
		for j := range d {
			d[j] = byte(i + j)
		}
	}
	return ms
}

// TestRingsConcurrent: two producers (one per ring) and one reader; every
// frame is either read, in order per ring, or counted as dropped. Run
// with -race.
func TestRingsConcurrent(t *testing.T) {
	p, err := mbuf.NewPool(mbuf.Config{Name: "t", Count: 256, BufSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s, err := New(Config{Port: 3, Dir: Both, Rings: 2, Slots: 8, Snaplen: 100})
	if err != nil {
		t.Fatal(err)
	}
	ms := [2][]*mbuf.Mbuf{frames(t, p, 32, 60), frames(t, p, 32, 150)}
	const bursts = 2000
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range bursts {
				if w == 0 {
					s.Rx(w, 3, ms[w])
					s.Rx(w, 4, ms[w]) // another port: ignored
				} else {
					s.Tx(w, 3, ms[w])
				}
			}
		}()
	}
	read := 0
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	check := func(f *Frame) error {
		want := 60
		if f.Worker == 1 {
			want = 150
		}
		if f.Wire != want || len(f.Data) != min(want, 100) || (f.Worker == 0) != (f.Dir == Rx) {
			t.Errorf("frame %+v", f)
		}
		read++
		return nil
	}
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		if _, err := s.Read(0, check); err != nil {
			t.Fatal(err)
		}
	}
	s.Read(0, check)
	if total := uint64(read) + s.Dropped(); total != 2*bursts*32 {
		t.Fatalf("%d read + %d dropped = %d, want %d", read, s.Dropped(), total, 2*bursts*32)
	}
	s.Stop()
	s.Rx(0, 3, ms[0])
	if k, _ := s.Read(0, check); k != 0 {
		t.Errorf("stopped session took %d frames", k)
	}
	p.Free(ms[0])
	p.Free(ms[1])
}

// TestWriterReadBack: what Writer writes, pcapgo reads back, pcap and
// pcapng (with directions).
func TestWriterReadBack(t *testing.T) {
	for _, ng := range []bool{false, true} {
		var b bytes.Buffer
		w, err := NewWriter(&b, 100, ng, "p0")
		if err != nil {
			t.Fatal(err)
		}
		in := []Frame{{Dir: Rx, Wire: 3, Data: []byte{1, 2, 3}}, {Dir: Tx, Wire: 200, Data: bytes.Repeat([]byte{9}, 100)}}
		for i := range in {
			if err := w.Write(&in[i]); err != nil {
				t.Fatal(err)
			}
		}
		w.Flush()
		var got [][]byte
		if ng {
			r, err := pcapgo.NewNgReader(&b, pcapgo.DefaultNgReaderOptions)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; ; i++ {
				d, ci, opts, err := r.ReadPacketDataWithOptions()
				if err != nil {
					break
				}
				want := pcapgo.NgEpbFlagDirectionInbound
				if in[i].Dir == Tx {
					want = pcapgo.NgEpbFlagDirectionOutbound
				}
				if opts.Flags == nil || opts.Flags.Direction != want || ci.Length != in[i].Wire {
					t.Errorf("pcapng packet %d: %+v %+v", i, opts.Flags, ci)
				}
				got = append(got, d)
			}
		} else {
			r, err := pcapgo.NewReader(&b)
			if err != nil {
				t.Fatal(err)
			}
			for {
				d, _, err := r.ReadPacketData()
				if err != nil {
					break
				}
				got = append(got, d)
			}
		}
		if len(got) != 2 || !bytes.Equal(got[0], in[0].Data) || !bytes.Equal(got[1], in[1].Data) {
			t.Errorf("ng=%v: read back %v", ng, got)
		}
	}
}
