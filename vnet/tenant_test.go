package vnet

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwdd/fwdd/ctl/ctlsock"
	"github.com/fwdd/fwdd/internal/testnet"
)

// client is a control-socket client run as another user: python3 (any
// user may run it) sending one request line and printing the answer.
const client = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    d = s.recv(65536)
    if not d:
        break
    buf += d
sys.stdout.write(buf.decode())
`

// openDir makes a directory other users can traverse (t.TempDir's parent
// is 0700), for sockets a tenant connects to; removed at cleanup.
func openDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "fwdd-vnet-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// python3 is the system's, which every user may run (not a per-user
// shim from PATH).
const python3 = "/usr/bin/python3"

// asUser sends lines to the socket at path as uid:gid and returns the
// response (or the connection error as a response).
func asUser(t *testing.T, path string, uid, gid uint32, lines ...string) ctlsock.Response {
	t.Helper()
	req, _ := json.Marshal(ctlsock.Request{Lines: lines})
	cmd := exec.Command(python3, "-c", client, path, string(req))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	var resp ctlsock.Response
	if jerr := json.Unmarshal(out, &resp); jerr != nil {
		return ctlsock.Response{Error: "client: " + strings.TrimSpace(string(out)) + " " + errString(err)}
	}
	return resp
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestTenantSocket: a tenant (uid 65534) on its vnet's socket can show its
// ports and add routes in its vnet; everything else is refused with a
// clear message, and it never sees the other vnets' names. Other users
// cannot connect; root can.
func TestTenantSocket(t *testing.T) {
	testnet.Skip(t)
	if _, err := os.Stat(python3); err != nil {
		t.Skip("needs python3 for a client running as another user")
	}
	dir := openDir(t)
	sock := filepath.Join(dir, "blue.sock")
	h := startHost(t, twoVnets+"vnet add red devices vethr0\nvnet red port add secret0 driver null\n")
	mustText(t, h, "vnet del blue")
	mustText(t, h, "vnet add blue owner 65534:65534 socket "+sock+" devices vethb0")
	mustText(t, h, "vnet blue port add p0 driver null")
	mustText(t, h, "vnet blue addr add p0 198.18.1.1/24")
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o660 || st.Uid != 65534 || st.Gid != 65534 {
		t.Fatalf("socket mode %v owner %d:%d, want 0660 65534:65534", fi.Mode().Perm(), st.Uid, st.Gid)
	}
	const nobody = 65534
	ok := func(lines ...string) string {
		t.Helper()
		r := asUser(t, sock, nobody, nobody, lines...)
		if !r.OK {
			t.Fatalf("tenant %q: %s", lines, r.Error)
		}
		return r.Text
	}
	if out := ok("show ports"); !strings.Contains(out, "p0") || strings.Contains(out, "secret0") {
		t.Fatalf("tenant show ports:\n%s", out)
	}
	ok("route add 198.19.0.0/16 via 198.18.1.9")
	if out := mustText(t, h, "vnet blue show routes"); !strings.Contains(out, "198.19.0.0/16") {
		t.Fatalf("the tenant's route is not in blue:\n%s", out)
	}
	if out := ok("show vnets"); !strings.Contains(out, "blue") || strings.Contains(out, "red") || strings.Contains(out, "default") {
		t.Fatalf("tenant show vnets:\n%s", out)
	}
	for _, tc := range []struct{ line, want string }{
		{"vnet red show ports", "vnet prefixes are for the main socket"},
		{"vnet default route add 198.19.0.0/16 blackhole", "vnet prefixes are for the main socket"},
		{"vnet add evil", "only root creates and deletes vnets"},
		{"vnet del red", "only root creates and deletes vnets"},
		{"port add x0 driver afxdp dev vethr0", "device vethr0 was not given to this vnet"},
		{"port add x0 driver afpacket dev eth0", "device eth0 was not given to this vnet"},
		{"port add x0 driver null lcp tap9", "lcp makes a kernel interface"},
		{"route load /etc/passwd blackhole", "no routes directory"},
		{"neigh add secret0 198.18.1.7 lladdr 02:00:00:00:00:07", "no such port"},
	} {
		r := asUser(t, sock, nobody, nobody, tc.line)
		if r.OK || !strings.Contains(r.Error, tc.want) {
			t.Errorf("tenant %q: ok=%v error %q, want %q", tc.line, r.OK, r.Error, tc.want)
		}
		if strings.Contains(r.Error, "red") && !strings.Contains(tc.line, "red") {
			t.Errorf("tenant %q: the answer names vnet red: %s", tc.line, r.Error)
		}
	}
	// Another user may not connect; root may (and is still confined to
	// blue on this socket).
	if r := asUser(t, sock, 4242, 4242, "show ports"); r.OK || !strings.Contains(r.Error, "permission denied") && !strings.Contains(r.Error, "Permission denied") {
		t.Errorf("uid 4242 on blue's socket: %+v", r)
	}
	if r := asUser(t, sock, 0, 0, "show ports"); !r.OK || strings.Contains(r.Text, "secret0") {
		t.Errorf("root on blue's socket: %+v", r)
	}
	// vnet del closes the socket and removes its file.
	mustText(t, h, "vnet del blue")
	testnet.Eventually(t, 5*time.Second, "the socket file to go", func() bool {
		_, err := os.Stat(sock)
		return os.IsNotExist(err)
	})
}
