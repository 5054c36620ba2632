// xskfwd: the C reference leg of make bench-e2e. A minimal AF_XDP
// forwarder with the structure of the kernel's xsk_fwd sample, written
// against libxdp's xsk.h: one UMEM shared by a socket on the ingress device
// and one on the egress device (XDP_SHARED_UMEM), need_wakeup, bursts of 64,
// and per frame only a MAC rewrite (no routing). It is what fwdd's afxdp
// path is compared with: same devices, generator, sink and CPU.
//
//   xskfwd -i IN -o OUT -d DSTMAC [-s SRCMAC] [-b BURST] [-t SECONDS] [-z]
//
// Frames received on IN queue 0 leave OUT queue 0 with the destination MAC
// set to DSTMAC and the source to SRCMAC (default: OUT's own). It runs until
// SIGINT/SIGTERM (or -t seconds), says "ready" on stderr once its sockets
// are bound, and prints its counters as one JSON line on stdout. It binds
// in copy mode (what veth offers); -z binds zero-copy instead, for the
// same comparison on a NIC whose driver has it (docs/perf.md).
//
// Build: gcc -O2 -o xskfwd xskfwd.c -lxdp -lbpf (Debian libxdp-dev,
// libbpf-dev). The harness builds it and skips the leg when it cannot.

#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <xdp/xsk.h>

#define FRAMES 8192
#define FRAME_SIZE XSK_UMEM__DEFAULT_FRAME_SIZE
#define RING 2048
#define MAX_BURST 256

static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

// port is one AF_XDP socket with its four rings.
struct port {
	const char *ifname;
	struct xsk_socket *xsk;
	struct xsk_ring_cons rx, cq;
	struct xsk_ring_prod tx, fq;
};

// frames is the stack of free UMEM frame addresses.
struct frames {
	uint64_t addr[FRAMES];
	uint32_t n;
};

static struct {
	uint64_t rx, tx, tx_full_drops /* only when stopping */, fill_empty, kicks;
} ctr;

static void die(const char *what, int err)
{
	fprintf(stderr, "xskfwd: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

static int if_mac(const char *ifname, uint8_t mac[6])
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	int err = ioctl(fd, SIOCGIFHWADDR, &ifr);
	close(fd);
	if (err)
		return -1;
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	return 0;
}

// refill moves up to what the fill ring takes from the free stack.
static void refill(struct port *p, struct frames *f)
{
	uint32_t idx, n = xsk_prod_nb_free(&p->fq, f->n);
	if (n > f->n)
		n = f->n;
	if (n == 0)
		return;
	n = xsk_ring_prod__reserve(&p->fq, n, &idx);
	for (uint32_t i = 0; i < n; i++)
		*xsk_ring_prod__fill_addr(&p->fq, idx + i) = f->addr[--f->n];
	xsk_ring_prod__submit(&p->fq, n);
}

// complete returns transmitted frames to the free stack.
static void complete(struct port *p, struct frames *f)
{
	uint32_t idx, n = xsk_ring_cons__peek(&p->cq, RING, &idx);
	for (uint32_t i = 0; i < n; i++)
		f->addr[f->n++] = xsk_umem__extract_addr(*xsk_ring_cons__comp_addr(&p->cq, idx + i));
	if (n)
		xsk_ring_cons__release(&p->cq, n);
}

static void kick_tx(struct port *p)
{
	if (!xsk_ring_prod__needs_wakeup(&p->tx))
		return;
	ctr.kicks++;
	if (sendto(xsk_socket__fd(p->xsk), NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 &&
	    errno != EAGAIN && errno != EBUSY && errno != ENOBUFS && errno != ENETDOWN)
		die("sendto", errno);
}

static void kick_rx(struct port *p)
{
	if (!xsk_ring_prod__needs_wakeup(&p->fq))
		return;
	recvfrom(xsk_socket__fd(p->xsk), NULL, 0, MSG_DONTWAIT, NULL, NULL);
}

// forward moves one burst from in's RX ring to out's TX ring, rewriting
// the MACs. Like the kernel sample, a full TX ring is waited out (kick,
// reap completions, retry) rather than dropping; it returns the frames sent.
static uint32_t forward(struct port *in, struct port *out, struct frames *f, void *umem,
			const uint8_t dst[6], const uint8_t src[6], uint32_t burst)
{
	uint32_t rxi, txi;
	uint32_t n = xsk_ring_cons__peek(&in->rx, burst, &rxi);
	if (n == 0)
		return 0;
	ctr.rx += n;
	while (xsk_ring_prod__reserve(&out->tx, n, &txi) < n) {
		if (stop) {
			for (uint32_t i = 0; i < n; i++)
				f->addr[f->n++] = xsk_umem__extract_addr(xsk_ring_cons__rx_desc(&in->rx, rxi + i)->addr);
			xsk_ring_cons__release(&in->rx, n);
			ctr.tx_full_drops += n;
			return 0;
		}
		kick_tx(out);
		complete(out, f);
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&in->rx, rxi + i);
		uint8_t *eth = xsk_umem__get_data(umem, d->addr);
		memcpy(eth, dst, 6);
		memcpy(eth + 6, src, 6);
		struct xdp_desc *t = xsk_ring_prod__tx_desc(&out->tx, txi + i);
		t->addr = d->addr;
		t->len = d->len;
		t->options = 0;
	}
	xsk_ring_cons__release(&in->rx, n);
	xsk_ring_prod__submit(&out->tx, n);
	ctr.tx += n;
	return n;
}

int main(int argc, char **argv)
{
	const char *in_if = NULL, *out_if = NULL, *dst_s = NULL, *src_s = NULL;
	uint32_t burst = 64;
	int seconds = 0, opt, zerocopy = 0;
	while ((opt = getopt(argc, argv, "i:o:d:s:b:t:z")) != -1) {
		switch (opt) {
		case 'i': in_if = optarg; break;
		case 'o': out_if = optarg; break;
		case 'd': dst_s = optarg; break;
		case 's': src_s = optarg; break;
		case 'b': burst = (uint32_t)atoi(optarg); break;
		case 't': seconds = atoi(optarg); break;
		case 'z': zerocopy = 1; break;
		default: goto usage;
		}
	}
	if (!in_if || !out_if || !dst_s || burst == 0 || burst > MAX_BURST)
		goto usage;
	uint8_t dst[6], src[6];
	if (parse_mac(dst_s, dst))
		die("-d: want a MAC address aa:bb:cc:dd:ee:ff", EINVAL);
	if (src_s ? parse_mac(src_s, src) : if_mac(out_if, src))
		die("source MAC (-s, or the egress device's own)", errno ? errno : EINVAL);

	size_t size = (size_t)FRAMES * FRAME_SIZE;
	void *area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		die("mmap UMEM", errno);

	struct port in = { .ifname = in_if }, out = { .ifname = out_if };
	struct xsk_umem *umem;
	struct xsk_umem_config ucfg = {
		.fill_size = RING, .comp_size = RING, .frame_size = FRAME_SIZE,
		.frame_headroom = 0, .flags = 0,
	};
	int err = xsk_umem__create(&umem, area, size, &in.fq, &in.cq, &ucfg);
	if (err)
		die("xsk_umem__create", err);
	struct xsk_socket_config scfg = {
		.rx_size = RING, .tx_size = RING,
		.bind_flags = XDP_USE_NEED_WAKEUP | (zerocopy ? XDP_ZEROCOPY : XDP_COPY),
	};
	err = xsk_socket__create(&in.xsk, in_if, 0, umem, &in.rx, &in.tx, &scfg);
	if (err)
		die("xsk_socket__create (ingress)", err);
	err = xsk_socket__create_shared(&out.xsk, out_if, 0, umem, &out.rx, &out.tx, &out.fq, &out.cq, &scfg);
	if (err)
		die("xsk_socket__create_shared (egress)", err);

	static struct frames free_frames;
	for (uint32_t i = 0; i < FRAMES; i++)
		free_frames.addr[free_frames.n++] = (uint64_t)(FRAMES - 1 - i) * FRAME_SIZE;
	// The egress socket receives little (ARP from the sink at most): a few
	// frames in its fill ring, returned as they come.
	struct frames out_free = { .n = 0 };
	for (int i = 0; i < 64; i++)
		out_free.addr[out_free.n++] = free_frames.addr[--free_frames.n];
	refill(&out, &out_free);
	refill(&in, &free_frames);

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (seconds > 0) {
		signal(SIGALRM, on_signal);
		alarm((unsigned)seconds);
	}
	fprintf(stderr, "xskfwd: ready: %s -> %s, burst %u, %s\n", in_if, out_if, burst, zerocopy ? "zero-copy" : "copy mode");

	while (!stop) {
		// Kick while frames are in flight (the kernel sample kicks after
		// every burst it queued; in copy mode it also drives completions).
		if (forward(&in, &out, &free_frames, area, dst, src, burst) ||
		    xsk_prod_nb_free(&out.tx, RING) < RING)
			kick_tx(&out);
		complete(&out, &free_frames);
		complete(&in, &free_frames);
		if (free_frames.n == 0)
			ctr.fill_empty++;
		refill(&in, &free_frames);
		kick_rx(&in);
		// Whatever the egress socket received goes straight back.
		uint32_t idx, n = xsk_ring_cons__peek(&out.rx, 64, &idx);
		for (uint32_t i = 0; i < n; i++)
			out_free.addr[out_free.n++] = xsk_umem__extract_addr(xsk_ring_cons__rx_desc(&out.rx, idx + i)->addr);
		if (n)
			xsk_ring_cons__release(&out.rx, n);
		refill(&out, &out_free);
	}

	// The kernel's counters of the ingress socket (after the run: no
	// effect on the loop): where offered frames were lost.
	struct xdp_statistics xst;
	socklen_t xlen = sizeof(xst);
	memset(&xst, 0, sizeof(xst));
	getsockopt(xsk_socket__fd(in.xsk), SOL_XDP, XDP_STATISTICS, &xst, &xlen);
	printf("{\"rx\":%llu,\"tx\":%llu,\"tx_full_drops\":%llu,\"fill_empty\":%llu,\"kicks\":%llu,"
	       "\"xsk_rx_dropped\":%llu,\"xsk_rx_ring_full\":%llu,\"xsk_rx_fill_ring_empty\":%llu}\n",
	       (unsigned long long)ctr.rx, (unsigned long long)ctr.tx,
	       (unsigned long long)ctr.tx_full_drops, (unsigned long long)ctr.fill_empty,
	       (unsigned long long)ctr.kicks, (unsigned long long)xst.rx_dropped,
	       (unsigned long long)xst.rx_ring_full, (unsigned long long)xst.rx_fill_ring_empty_descs);
	xsk_socket__delete(out.xsk);
	xsk_socket__delete(in.xsk);
	xsk_umem__delete(umem);
	munmap(area, size);
	return 0;
usage:
	fprintf(stderr, "usage: xskfwd -i IN -o OUT -d DSTMAC [-s SRCMAC] [-b BURST<=%d] [-t SECONDS] [-z]\n", MAX_BURST);
	return 2;
}
