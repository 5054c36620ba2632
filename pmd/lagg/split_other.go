//go:build !amd64

package lagg

import "github.com/fwdd/fwdd/mbuf"

// splitVecOK: split2Vec is amd64 only.
func splitVecOK() bool { return false }

func split2Vec(ms []*mbuf.Mbuf, b0, b1 *[memberBuf]*mbuf.Mbuf) (uint, bool) {
	panic("lagg: split2Vec is amd64 only (splitVecOK)")
}
