package ctlsock

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// Cred is the identity of the process at the other end of a connection,
// as the kernel recorded it when the peer called connect(2).
type Cred struct {
	PID int32
	UID uint32
	GID uint32
}

// peerCred reads SO_PEERCRED from c. It is safe: getsockopt only reads
// the socket, and Control runs it while the descriptor is held open.
func peerCred(c *net.UnixConn) (Cred, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return Cred{}, err
	}
	var uc *unix.Ucred
	var serr error
	if err := rc.Control(func(fd uintptr) {
		uc, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Cred{}, err
	}
	if serr != nil {
		return Cred{}, fmt.Errorf("SO_PEERCRED: %w", serr)
	}
	return Cred{PID: uc.Pid, UID: uc.Uid, GID: uc.Gid}, nil
}
