package lagg

import (
	"encoding/binary"
	"errors"

	"github.com/fwdd/fwdd/pmd/mcast"
)

// Slow protocols (IEEE 802.3 annex 57A, 802.1AX-2014 clause 6.4).
const (
	subtypeLACP   = 1
	subtypeMarker = 2
	lacpVersion   = 1
	// pduLen is the length of an LACPDU or marker PDU after the Ethernet
	// header (802.1AX 6.4.2.3: 110 octets).
	pduLen   = 110
	frameLen = 14 + pduLen
)

// Port state bits (802.1AX 6.4.2.3 Actor_State).
const (
	stActivity     = 1 << 0 // LACP_Activity: active
	stTimeout      = 1 << 1 // LACP_Timeout: short (fast)
	stAggregation  = 1 << 2 // aggregatable
	stSync         = 1 << 3 // in sync: attached to the right aggregator
	stCollecting   = 1 << 4
	stDistributing = 1 << 5
	stDefaulted    = 1 << 6 // partner information is the administrative default
	stExpired      = 1 << 7 // receive machine in EXPIRED
)

// lacpInfo is one side of an LACPDU (actor or partner information).
type lacpInfo struct {
	SysPrio  uint16
	Sys      [6]byte
	Key      uint16
	PortPrio uint16
	Port     uint16
	State    uint8
}

// sameAgg reports whether two infos name the same system, key and port
// (what selection and "matched" compare; not the state).
func (a lacpInfo) sameAgg(b lacpInfo) bool {
	return a.SysPrio == b.SysPrio && a.Sys == b.Sys && a.Key == b.Key && a.PortPrio == b.PortPrio && a.Port == b.Port
}

// lacpdu is a decoded LACPDU.
type lacpdu struct {
	Actor, Partner lacpInfo
	MaxDelay       uint16
}

// markerPDU is a decoded marker or marker response PDU.
type markerPDU struct {
	Response bool
	Port     uint16
	Sys      [6]byte
	TxID     uint32
}

var (
	errShort   = errors.New("slow protocol frame too short")
	errSubtype = errors.New("not LACP or marker")
	errTLV     = errors.New("malformed TLV")
)

// parseSlow decodes a slow-protocol payload (after the Ethernet header):
// an LACPDU (kind 1) or a marker PDU (kind 2). It never panics; version
// numbers above 1 are accepted (802.1AX 6.4.2.3: forward compatibility),
// TLVs must be where version 1 puts them with at least their version-1
// lengths.
func parseSlow(b []byte) (kind int, l lacpdu, m markerPDU, err error) {
	if len(b) < 2 {
		return 0, l, m, errShort
	}
	switch b[0] {
	case subtypeLACP:
		if len(b) < 60 {
			return 0, l, m, errShort
		}
		if b[2] != 1 || b[3] < 20 || b[22] != 2 || b[23] < 20 || b[42] != 3 || b[43] < 16 {
			return 0, l, m, errTLV
		}
		l.Actor = readInfo(b[4:22])
		l.Partner = readInfo(b[24:42])
		l.MaxDelay = binary.BigEndian.Uint16(b[44:46])
		return subtypeLACP, l, m, nil
	case subtypeMarker:
		if len(b) < 20 {
			return 0, l, m, errShort
		}
		if (b[2] != 1 && b[2] != 2) || b[3] < 16 {
			return 0, l, m, errTLV
		}
		m.Response = b[2] == 2
		m.Port = binary.BigEndian.Uint16(b[4:6])
		copy(m.Sys[:], b[6:12])
		m.TxID = binary.BigEndian.Uint32(b[12:16])
		return subtypeMarker, l, m, nil
	}
	return 0, l, m, errSubtype
}

func readInfo(b []byte) lacpInfo {
	var i lacpInfo
	i.SysPrio = binary.BigEndian.Uint16(b[0:2])
	copy(i.Sys[:], b[2:8])
	i.Key = binary.BigEndian.Uint16(b[8:10])
	i.PortPrio = binary.BigEndian.Uint16(b[10:12])
	i.Port = binary.BigEndian.Uint16(b[12:14])
	i.State = b[14]
	return i
}

func writeInfo(b []byte, i lacpInfo) {
	binary.BigEndian.PutUint16(b[0:2], i.SysPrio)
	copy(b[2:8], i.Sys[:])
	binary.BigEndian.PutUint16(b[8:10], i.Key)
	binary.BigEndian.PutUint16(b[10:12], i.PortPrio)
	binary.BigEndian.PutUint16(b[12:14], i.Port)
	b[14] = i.State
}

// buildLACPDU writes a complete frame (frameLen bytes) into f.
func buildLACPDU(f []byte, src [6]byte, actor, partner lacpInfo) {
	clear(f[:frameLen])
	copy(f[0:6], mcast.SlowProtocols) // the destination of LACPDUs and marker PDUs
	copy(f[6:12], src[:])
	binary.BigEndian.PutUint16(f[12:14], 0x8809)
	b := f[14:]
	b[0], b[1] = subtypeLACP, lacpVersion
	b[2], b[3] = 1, 20
	writeInfo(b[4:], actor)
	b[22], b[23] = 2, 20
	writeInfo(b[24:], partner)
	b[42], b[43] = 3, 16
	// Collector max delay 0; terminator TLV (0, 0) and reserved octets
	// are zero.
}

// buildMarkerResponse writes the response to a marker PDU: the same
// information in a type-2 TLV (802.1AX 6.5.3).
func buildMarkerResponse(f []byte, src [6]byte, m markerPDU) {
	clear(f[:frameLen])
	copy(f[0:6], mcast.SlowProtocols) // the destination of LACPDUs and marker PDUs
	copy(f[6:12], src[:])
	binary.BigEndian.PutUint16(f[12:14], 0x8809)
	b := f[14:]
	b[0], b[1] = subtypeMarker, 1
	b[2], b[3] = 2, 16
	binary.BigEndian.PutUint16(b[4:6], m.Port)
	copy(b[6:12], m.Sys[:])
	binary.BigEndian.PutUint32(b[12:16], m.TxID)
}
