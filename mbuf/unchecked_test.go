//go:build !mbufcheck

package mbuf

const checkedBuild = false
