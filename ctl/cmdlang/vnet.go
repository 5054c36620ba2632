package cmdlang

import (
	"path/filepath"
	"strconv"
	"strings"
)

// Vnets: several isolated stacks in one fwdd (FreeBSD VIMAGE). The words
// are parsed here; the vnet package owns the stacks.

// DefaultVnet is the vnet that commands without a "vnet NAME" prefix run in.
const DefaultVnet = "default"

// MaxSocketPath bounds "socket PATH" (sizeof(sun_path) - 1).
const MaxSocketPath = 107

// NoID in VnetAdd.UID or GID means "not given".
const NoID = -1

// VnetAdd is "vnet add NAME [owner UID[:GID]] [socket PATH] [devices DEV,...] [routes DIR] [netns NS]":
// create a vnet. Socket is its tenant's control socket (mode 0660, owned by
// UID:GID); Devices are the devices its tenant may open (root may open any
// device in it); Routes is the directory its tenant may route load from;
// NetNS is the network namespace its devices, kernel interfaces (lcp) and
// mirrored kernel tables are in (a path; "netns NAME" is
// /run/netns/NAME), by default the daemon's.
type VnetAdd struct {
	Where
	Name    string   `json:"name"`
	UID     int      `json:"uid"` // NoID: not given
	GID     int      `json:"gid"` // NoID: not given
	Socket  string   `json:"socket,omitempty"`
	Devices []string `json:"devices,omitempty"`
	Routes  string   `json:"routes,omitempty"`
	NetNS   string   `json:"netns,omitempty"`
}

// VnetDel is "vnet del NAME".
type VnetDel struct {
	Where
	Name string `json:"name"`
}

// ShowVnets is "show vnets".
type ShowVnets struct{ Where }

// InVnet is "vnet NAME COMMAND": COMMAND runs in vnet NAME. Cmd is never an
// InVnet, VnetAdd or VnetDel.
type InVnet struct {
	Where
	Name string  `json:"name"`
	Cmd  Command `json:"cmd"`
}

func (*VnetAdd) Verb() string   { return "vnet add" }
func (*VnetDel) Verb() string   { return "vnet del" }
func (*ShowVnets) Verb() string { return "show vnets" }
func (c *InVnet) Verb() string  { return c.Cmd.Verb() }

func (c *VnetAdd) String() string {
	var b strings.Builder
	b.WriteString("vnet add " + c.Name)
	if c.UID != NoID {
		b.WriteString(" owner " + strconv.Itoa(c.UID))
		if c.GID != NoID {
			b.WriteString(":" + strconv.Itoa(c.GID))
		}
	}
	if c.Socket != "" {
		b.WriteString(" socket " + Quote(c.Socket))
	}
	if len(c.Devices) > 0 {
		b.WriteString(" devices " + strings.Join(c.Devices, ","))
	}
	if c.Routes != "" {
		b.WriteString(" routes " + Quote(c.Routes))
	}
	if c.NetNS != "" {
		b.WriteString(" netns " + Quote(c.NetNS))
	}
	return b.String()
}

func (c *VnetDel) String() string { return "vnet del " + c.Name }
func (*ShowVnets) String() string { return "show vnets" }
func (c *InVnet) String() string  { return "vnet " + c.Name + " " + c.Cmd.String() }

// Unwrap splits c into its vnet and the command to run there: "default"
// for a command without a prefix.
func Unwrap(c Command) (vnet string, cmd Command) {
	if iv, ok := c.(*InVnet); ok {
		return iv.Name, iv.Cmd
	}
	return DefaultVnet, c
}

// vnet parses what follows "vnet": add, del, or NAME COMMAND.
func (p *parser) vnet() Command {
	p.verb = "vnet"
	w := p.next()
	if w == nil {
		p.fail(nil, "missing add, del or a vnet name (vnet add NAME, vnet del NAME, vnet NAME COMMAND)")
		return nil
	}
	switch w.text {
	case "add":
		p.verb = "vnet add"
		return p.vnetAdd()
	case "del":
		p.verb = "vnet del"
		c := &VnetDel{Where: p.at, Name: p.name(p.next(), "vnet")}
		p.end()
		if p.err == nil && c.Name == DefaultVnet {
			p.fail(nil, "the default vnet cannot be deleted")
		}
		return c
	}
	name := p.name(w, "vnet")
	if p.err != nil {
		return nil
	}
	if !p.more() {
		p.fail(nil, "missing command after \"vnet %s\" (e.g. vnet %s show ports)", name, name)
		return nil
	}
	if p.words[p.i].text == "vnet" {
		p.fail(&p.words[p.i], "vnet prefixes do not nest (one \"vnet NAME\" per command)")
		return nil
	}
	c := p.command()
	if p.err != nil || c == nil {
		return nil
	}
	return &InVnet{Where: p.at, Name: name, Cmd: c}
}

func (p *parser) vnetAdd() Command {
	c := &VnetAdd{Where: p.at, UID: NoID, GID: NoID}
	c.Name = p.name(p.next(), "vnet")
	if p.err == nil && (c.Name == "add" || c.Name == "del") {
		p.fail(&p.words[p.i-1], "%q cannot name a vnet (it is a subcommand)", c.Name)
	}
	for p.more() {
		w := p.next()
		switch w.text {
		case "owner":
			if !p.once(w, "owner") {
				break
			}
			v := p.value(w, "UID[:GID]")
			if v == nil {
				break
			}
			u, g, hasG := strings.Cut(v.text, ":")
			c.UID = p.idWord(v, u, "a uid")
			if hasG {
				c.GID = p.idWord(v, g, "a gid")
			}
		case "socket":
			if !p.once(w, "socket") {
				break
			}
			v := p.value(w, "a socket path")
			if v == nil {
				break
			}
			switch {
			case !filepath.IsAbs(v.text):
				p.fail(v, "socket path %q must be absolute", v.text)
			case len(v.text) > MaxSocketPath:
				p.fail(v, "socket path is %d bytes; at most %d fit in a Unix socket address", len(v.text), MaxSocketPath)
			}
			c.Socket = filepath.Clean(v.text)
		case "devices":
			if !p.once(w, "devices") {
				break
			}
			v := p.value(w, "device names (DEV,DEV...)")
			if v == nil {
				break
			}
			for _, d := range strings.Split(v.text, ",") {
				if !validDev(d) {
					p.fail(v, "device name %q is not valid (see ip link)", d)
					break
				}
				for _, o := range c.Devices {
					if o == d {
						p.fail(v, "device %s listed twice", d)
					}
				}
				c.Devices = append(c.Devices, d)
			}
		case "routes":
			if !p.once(w, "routes") {
				break
			}
			v := p.value(w, "a directory")
			if v == nil {
				break
			}
			if !filepath.IsAbs(v.text) {
				p.fail(v, "routes directory %q must be absolute", v.text)
			}
			c.Routes = filepath.Clean(v.text)
		case "netns":
			if !p.once(w, "netns") {
				break
			}
			v := p.value(w, "a namespace name or path")
			if v == nil {
				break
			}
			switch {
			case filepath.IsAbs(v.text):
				c.NetNS = filepath.Clean(v.text)
			case v.text != "." && v.text != ".." && len(v.text) <= 255 && !strings.Contains(v.text, "/"):
				c.NetNS = "/run/netns/" + v.text
			default:
				p.fail(v, "netns %q: give a name (ip netns list) or an absolute path", v.text)
			}
		default:
			p.unexpected(w, "owner, socket, devices, routes or netns")
		}
	}
	if p.err == nil && c.Socket != "" && c.UID == NoID {
		p.fail(nil, "a tenant socket needs an owner (vnet add %s owner UID[:GID] socket %s)", c.Name, c.Socket)
	}
	if p.err != nil {
		return nil
	}
	return c
}

// idWord parses a numeric uid or gid (part of word w).
func (p *parser) idWord(w *word, s, what string) int {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n >= 1<<31 {
		p.fail(w, "%q is not %s (owner takes numbers: UID or UID:GID)", s, what)
		return NoID
	}
	return int(n)
}
