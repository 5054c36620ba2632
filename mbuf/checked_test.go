//go:build mbufcheck

package mbuf

const checkedBuild = true
