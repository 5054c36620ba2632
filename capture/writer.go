package capture

import (
	"fmt"
	"io"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Writer writes frames as pcap or pcapng (one interface, the captured
// port, with each packet's direction in pcapng's epb_flags).
type Writer struct {
	pcap *pcapgo.Writer
	ng   *pcapgo.NgWriter
}

// NewWriter writes the file header to w.
func NewWriter(w io.Writer, snaplen int, ng bool, ifname string) (*Writer, error) {
	if ng {
		intf := pcapgo.NgInterface{Name: ifname, LinkType: layers.LinkTypeEthernet, SnapLength: uint32(snaplen),
			TimestampResolution: 9, Description: "fwdd port " + ifname}
		nw, err := pcapgo.NewNgWriterInterface(w, intf, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "fwdd"}})
		if err != nil {
			return nil, fmt.Errorf("pcapng header: %w", err)
		}
		return &Writer{ng: nw}, nil
	}
	pw := pcapgo.NewWriterNanos(w)
	if err := pw.WriteFileHeader(uint32(snaplen), layers.LinkTypeEthernet); err != nil {
		return nil, fmt.Errorf("pcap header: %w", err)
	}
	return &Writer{pcap: pw}, nil
}

// Write writes one frame.
func (w *Writer) Write(f *Frame) error {
	ci := gopacket.CaptureInfo{Timestamp: f.Time, CaptureLength: len(f.Data), Length: f.Wire}
	if w.ng != nil {
		fl := pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionInbound}
		if f.Dir == Tx {
			fl.Direction = pcapgo.NgEpbFlagDirectionOutbound
		}
		return w.ng.WritePacketWithOptions(ci, f.Data, pcapgo.NgPacketOptions{Flags: &fl})
	}
	return w.pcap.WritePacket(ci, f.Data)
}

// Flush flushes buffered output (pcapng buffers; pcap writes through).
func (w *Writer) Flush() error {
	if w.ng != nil {
		return w.ng.Flush()
	}
	return nil
}
