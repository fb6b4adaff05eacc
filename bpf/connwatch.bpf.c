// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * connwatch XDP program: sees every inbound TCP connection attempt, detects port
 * scans per source with a sliding window, and drops blocked sources.
 *
 * Per packet (docs/ARCHITECTURE.md has the picture):
 *   1. parse Ethernet (+ up to two VLAN tags) -> IPv4 | IPv6 -> TCP; anything else
 *      or anything truncated passes, counted;
 *   2. source in the blocklist and not expired -> XDP_DROP, counted;
 *   3. ACK set, or a segment legitimate TCP may send without ACK (RST) ->
 *      XDP_PASS (the common case stops here, at the ACK test);
 *   4. SYN, or a stealth probe (FIN/NULL/Xmas/SYN+FIN/SYN+RST, see tcp_kind()):
 *      de-duplicate retransmissions, update the source's scan state, report the
 *      attempt or the probe, and on the threshold+1-th distinct port report the
 *      scan and block the source (unless allowlisted or monitor-only).
 * Nothing here ever drops a packet it could not parse.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))

#include "connwatch_abi.h"
#include "martian.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ---- load-time constants and the test clock ------------------------------ */

/* Set only by the BPF tests (tests/bpf): time comes from fake_now_ns instead of
 * bpf_ktime_get_ns(), so windows and expiries are tested without sleeping. As
 * rodata it is a constant to the verifier, which removes the unused branch: the
 * production program carries no trace of it. */
const volatile __u8 cw_test_clock = 0;
__u64 cw_fake_now_ns = 0;

static __always_inline __u64 now_ns(void)
{
	if (cw_test_clock)
		return cw_fake_now_ns;
	return bpf_ktime_get_ns();
}

/* ---- maps ---------------------------------------------------------------- */

/* Runtime knobs, one entry (struct cw_config). Written by userspace at start and
 * on every live change; read here. Array lookups with a constant key are inlined
 * by the verifier, so reading it costs a few instructions, no helper call. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cw_config);
} config SEC(".maps");

/* Counters, indexed by enum cw_stat. Per-CPU so the fast path never contends on
 * a cache line; userspace sums the CPUs. Never evicts (an array). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CW_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Reported connection attempts per interface (key ifindex, value a count), for
 * connwatch_new_connections_total{interface}. Touched on the SYN path only, never
 * for established traffic. Per-CPU, so no contention. 1024 interfaces is more
 * than any host watches; an interface beyond that is still counted in `stats`.
 * Never evicts (a plain hash). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} if_syn SEC(".maps");

/* Exact-address blocklist: key source address, value its block. A plain hash,
 * not an LRU: nothing but an explicit delete (userspace expiry sweep, unblock)
 * removes an entry, so a flood of new sources can never push a block out.
 * Capacity is max-blocks (userspace sets max_entries before load; 65536 here is
 * the default, 16,777,216 the limit). When full, the kernel refuses the insert,
 * the scan is still reported with action CW_ACT_BLOCKLIST_FULL and counted in
 * BLOCK_FULL. Not preallocated: the entries' memory follows the number of
 * blocks; only the bucket array (16 bytes per slot, the capacity rounded up
 * to a power of two) is allocated at creation (docs/SCALE.md). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct cw_addr);
	__type(value, struct cw_block);
} block_addr SEC(".maps");

/* CIDR blocklist (operator blocks of whole prefixes). The fast path consults it
 * only while config.cidr_blocks != 0, so an empty trie costs nothing. Written
 * only by userspace; never evicts. Capacity is max-cidr-blocks (set before
 * load; 4096 here is the default). A lookup walks at most 129 nodes (one per
 * prefix length that branches), whatever the trie holds. LPM tries must be
 * created with BPF_F_NO_PREALLOC: memory follows the entries. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct cw_lpm_key);
	__type(value, struct cw_block);
} block_cidr SEC(".maps");

/* Allowlist of prefixes that are never blocked automatically (loopback, the
 * host's own addresses, configured ranges). Consulted only when a block is about
 * to be made, and when a CIDR block matches, never on the fast path. Written only
 * by userspace; never evicts. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct cw_lpm_key);
	__type(value, __u8);
} allow SEC(".maps");

/* Per-source scan-detection state. An LRU: under a flood of spoofed sources the
 * least recently seen states are evicted, which can only make us forget a
 * scanner's earlier ports (a missed detection), never lose a block. 32768
 * entries x 264-byte values is about 9 MiB, preallocated by the kernel. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, struct cw_addr);
	__type(value, struct cw_scan_state);
} scan_state SEC(".maps");

/* All-zero bytes the size of a scan state, used to create one: a 264-byte value
 * does not fit next to the rest on the 512-byte BPF stack. Never written. */
struct scan_blank {
	__u8 b[sizeof(struct cw_scan_state)];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scan_blank);
} scan_zero SEC(".maps");

/* Recently seen SYN 4-tuples, value the CLOCK_MONOTONIC of the latest SYN, so a
 * retransmission is not reported twice. An LRU: eviction only means a
 * retransmitted SYN may be reported again. 65536 x ~48 bytes = 3 MiB. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct cw_flow_key);
	__type(value, __u64);
} syn_seen SEC(".maps");

/* The same for stealth probes: a separate map, so that a probe can never make
 * a later SYN of the same 4-tuple look like a retransmission (and go
 * unreported), nor a SYN hide a probe. Probes are rare next to SYNs; 16384 x
 * ~48 bytes = 0.75 MiB. An LRU: eviction only means a retransmitted probe is
 * reported again (it hits a port already counted, so no scan comes of it). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct cw_flow_key);
	__type(value, __u64);
} probe_seen SEC(".maps");

/* Events to userspace (struct cw_event, 128 bytes). 1 MiB holds 8192 events: a
 * userspace stall of that many SYNs is counted as EVENTS_LOST, never a stall
 * of the packet path. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* ---- helpers --------------------------------------------------------------- */

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += 1;
}

static __always_inline void count_interface(__u32 ifindex)
{
	__u64 *v = bpf_map_lookup_elem(&if_syn, &ifindex);

	if (!v) {
		__u64 zero = 0;

		bpf_map_update_elem(&if_syn, &ifindex, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&if_syn, &ifindex);
	}
	if (v)
		*v += 1;
}

static __always_inline int pass(__u32 reason)
{
	count(reason);
	return XDP_PASS;
}

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

/* A block applies while it has no deadline or the deadline is in the future.
 * Expired entries are left for userspace to sweep (and log); until then they
 * simply stop matching. */
static __always_inline int block_active(const struct cw_block *b)
{
	return b->expires_ns == 0 || now_ns() < b->expires_ns;
}

static __always_inline int is_allowed(const struct cw_addr *a)
{
	struct cw_lpm_key k = { .prefixlen = 128 };

	k.addr = *a;
	return bpf_map_lookup_elem(&allow, &k) != NULL;
}

/* Returns the XDP_DROP stat index when src is blocked, 0 otherwise. v4 is a
 * constant at each call (inlined), so the IPv6 path carries no trace of it. */
static __always_inline __u32 blocked(const struct cw_addr *src, const struct cw_config *cfg,
				     const int v4)
{
	struct cw_block *b = bpf_map_lookup_elem(&block_addr, src);

	if (b && block_active(b))
		return CW_STAT_DROP_BLOCKED;
	if (cfg->cidr_blocks) {
		struct cw_lpm_key k = { .prefixlen = 128 };

		k.addr = *src;
		b = bpf_map_lookup_elem(&block_cidr, &k);
		/* An allow entry inside a blocked prefix wins: a CIDR block must not
		 * lock out an administrator's address. Exact blocks need no such
		 * check: userspace never inserts one that an allow entry covers. */
		if (b && block_active(b) && !(v4 && b->v6_prefix) && !is_allowed(src))
			return CW_STAT_DROP_BLOCKED_CIDR;
	}
	return 0;
}

/* Parsed packet: what the SYN and probe paths need. */
struct pkt {
	struct cw_flow_key flow;
	__u8 tcp_flags; /* byte 13 of the TCP header */
};

/* ---- scan detection ---------------------------------------------------------- */

static __always_inline __u64 slot_stamp(__u64 slot) { return slot >> 16; }
static __always_inline __u16 slot_port(__u64 slot) { return slot & 0xffff; }

/* Is a slot's port inside the window ending at now_ms? Signed, because another
 * CPU may have stamped a slot a moment after this CPU read the clock. */
static __always_inline int slot_live(__u64 slot, __u64 now_ms, __u64 window_ms)
{
	return slot && (__s64)(now_ms - slot_stamp(slot)) < (__s64)window_ms;
}

/* Shared by the bpf_loop() callbacks below. bpf_loop (not a plain loop) because
 * the verifier checks a callback once, where it would walk every iteration of an
 * inline loop with every combination of the values it tracks. */
struct scan_walk {
	struct cw_scan_state *st;
	__u64 now_ms;
	__u64 window_ms;
	__u64 mine;      /* the slot value this SYN writes */
	__u32 live;      /* live slots seen */
	__s32 found;     /* slot already holding this port, or -1 */
	__s32 free_slot; /* first empty or expired slot, or -1 */
	__s32 claimed;   /* slot this SYN claimed, for the duplicate check */
	__u16 dport;
	__u16 n;         /* ports collected */
	__u16 ports[CW_SCAN_SLOTS];
};

/* Pass 1: count live slots, refresh this port's slot, find a free one. */
static long walk_count(__u32 i, void *data)
{
	struct scan_walk *w = data;
	__u64 s;

	if (i >= CW_SCAN_SLOTS)
		return 1;
	s = READ_ONCE(w->st->slot[i]);
	if (!slot_live(s, w->now_ms, w->window_ms)) {
		if (w->free_slot < 0)
			w->free_slot = i;
		return 0;
	}
	w->live++;
	if (w->found < 0 && slot_port(s) == w->dport) {
		w->found = i;
		WRITE_ONCE(w->st->slot[i], w->mine); /* refresh the port's stamp */
	}
	return 0;
}

/* Pass 2, after claiming a slot for a new port: if another CPU put the same port
 * in a lower slot at the same moment, give ours back, so a port is never
 * counted twice. (Lowest index wins, so exactly one of the two stays.) */
static long walk_dedup(__u32 i, void *data)
{
	struct scan_walk *w = data;
	__u64 s;

	if (i >= CW_SCAN_SLOTS || (__s32)i >= w->claimed)
		return 1;
	s = READ_ONCE(w->st->slot[i]);
	if (slot_live(s, w->now_ms, w->window_ms) && slot_port(s) == w->dport) {
		w->found = i;
		return 1;
	}
	return 0;
}

/* Pass 3, only when reporting: the live ports, for the event. */
static long walk_collect(__u32 i, void *data)
{
	struct scan_walk *w = data;
	__u64 s;

	if (i >= CW_SCAN_SLOTS)
		return 1;
	s = READ_ONCE(w->st->slot[i]);
	if (slot_live(s, w->now_ms, w->window_ms) && w->n < CW_SCAN_SLOTS)
		w->ports[w->n++] = slot_port(s);
	return 0;
}

/* Did the source's block end since its last scan report? A report silences a
 * source for the rest of the window (one report per window), but a scanner
 * whose block has ended must be judged afresh from its next port, or it could
 * scan again unseen until the window is over. Userspace resets the scan state
 * when it removes a block (expired, unblocked, flushed, allowlisted); this
 * covers the moment between the kernel's deadline and userspace's sweep (up to
 * a second, or longer while connwatchd is stalled). Only a block made at or
 * after the report counts: an older one did not follow from it. Looked up only
 * for a source reported within the window, so other SYNs pay nothing. */
static __always_inline int block_lapsed(const struct cw_addr *src, __u64 reported_ms)
{
	struct cw_block *b = bpf_map_lookup_elem(&block_addr, src);

	return b && !block_active(b) && b->created_ns / 1000000 + 1 >= reported_ms;
}

/* Records a SYN from flow->saddr to flow->dport in the source's state. Returns
 * the number of distinct ports inside the window (this one included), with the
 * ports in w->ports, when that is more than the threshold and no scan was
 * reported for this source within the window -- "report a scan now"; returns 0
 * otherwise.
 *
 * Lock-free (see struct cw_scan_state). Races between CPUs handling the same
 * source at the same instant, and what they cost:
 *  - two CPUs claim the same free slot for different ports: the compare-and-swap
 *    lets one win; the loser's port is not recorded this time (a scan may need
 *    one more port to be seen; never a false report);
 *  - two CPUs claim two slots for the same new port: walk_dedup gives one back;
 *  - two CPUs both see the threshold crossed: the compare-and-swap on
 *    reported_ms lets exactly one of them report;
 *  - two CPUs both find a lapsed block and start the state afresh: the second
 *    deletion may take the first CPU's port with it (one port not recorded). */
static __always_inline __u32 scan_update(const struct cw_flow_key *flow, __u64 now_ns,
					 const struct cw_config *cfg, struct scan_walk *w)
{
	struct cw_scan_state *st = bpf_map_lookup_elem(&scan_state, &flow->saddr);
	__u32 threshold = cfg->threshold;
	__u64 reported;

	w->now_ms = now_ns / 1000000 + 1;
	w->window_ms = cfg->window_ns / 1000000;
	if (st) {
		reported = READ_ONCE(st->reported_ms);
		if (reported && (__s64)(w->now_ms - reported) < (__s64)w->window_ms &&
		    block_lapsed(&flow->saddr, reported)) {
			/* What userspace does when it removes a block. */
			bpf_map_delete_elem(&scan_state, &flow->saddr);
			st = NULL;
		}
	}
	if (!st) {
		__u32 zero = 0;
		struct scan_blank *blank = bpf_map_lookup_elem(&scan_zero, &zero);

		if (!blank)
			return 0;
		/* BPF_NOEXIST: if another CPU created it meanwhile, use theirs. */
		bpf_map_update_elem(&scan_state, &flow->saddr, blank, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&scan_state, &flow->saddr);
		if (!st)
			return 0;
	}
	/* Userspace validates this; the clamp keeps the kernel safe regardless. */
	if (threshold >= CW_SCAN_SLOTS)
		threshold = CW_SCAN_SLOTS - 1;

	w->st = st;
	w->mine = w->now_ms << 16 | flow->dport;
	w->dport = flow->dport;
	w->found = -1;
	w->free_slot = -1;
	bpf_loop(CW_SCAN_SLOTS, walk_count, w, 0);

	if (w->found < 0 && w->free_slot >= 0) {
		/* A new port. With no free slot, all CW_SCAN_SLOTS ports are live,
		 * far beyond any threshold: nothing more to remember. */
		__u32 i = w->free_slot & (CW_SCAN_SLOTS - 1);
		__u64 seen = READ_ONCE(st->slot[i]);

		if (!slot_live(seen, w->now_ms, w->window_ms) &&
		    __sync_val_compare_and_swap(&st->slot[i], seen, w->mine) == seen) {
			w->claimed = i;
			bpf_loop(CW_SCAN_SLOTS, walk_dedup, w, 0);
			if (w->found >= 0)
				__sync_val_compare_and_swap(&st->slot[i], w->mine, seen);
			else
				w->live++;
		}
	}
	if (w->live <= threshold)
		return 0;

	/* Signed, like slot_live(): a CPU whose clock read came a moment before
	 * another CPU's report must see that report as recent, not as ancient. */
	reported = READ_ONCE(st->reported_ms);
	if (reported && (__s64)(w->now_ms - reported) < (__s64)w->window_ms)
		return 0; /* already reported within this window */
	if (__sync_val_compare_and_swap(&st->reported_ms, reported, w->now_ms) != reported)
		return 0; /* another CPU reported it just now */
	bpf_loop(CW_SCAN_SLOTS, walk_collect, w, 0);
	return w->n;
}

/* Inserts an automatic block for a scanner and says what happened. */
static __always_inline __u8 block_scanner(const struct cw_addr *src, __u64 now,
					  const struct cw_config *cfg, __u64 *expires)
{
	struct cw_block b = { .created_ns = now, .origin = CW_ORIGIN_SCAN };

	if (is_allowed(src)) {
		count(CW_STAT_BLOCK_ALLOWED);
		return CW_ACT_ALLOWLISTED;
	}
	if (cfg->monitor_only) {
		count(CW_STAT_BLOCK_MONITOR);
		return CW_ACT_MONITOR_ONLY;
	}
	b.expires_ns = cfg->block_ns ? now + cfg->block_ns : 0;
	/* BPF_ANY: an entry still present here has expired (an active one would
	 * have dropped this packet), so overwriting it is renewing the block. */
	if (bpf_map_update_elem(&block_addr, src, &b, BPF_ANY)) {
		count(CW_STAT_BLOCK_FULL);
		return CW_ACT_BLOCKLIST_FULL;
	}
	count(CW_STAT_BLOCK_ADDED);
	*expires = b.expires_ns;
	return CW_ACT_BLOCKED;
}

static __always_inline struct cw_event *event_new(const struct pkt *p, __u64 now, __u32 ifindex,
						  __u8 type)
{
	struct cw_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count(CW_STAT_EVENTS_LOST);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = now;
	e->saddr = p->flow.saddr;
	e->daddr = p->flow.daddr;
	e->sport = p->flow.sport;
	e->dport = p->flow.dport;
	e->ifindex = ifindex;
	e->type = type;
	e->tcp_flags = p->tcp_flags;
	return e;
}

/* Was this 4-tuple seen in `map` within dedup_ns? Records it either way. */
static __always_inline int seen_recently(void *map, const struct cw_flow_key *flow, __u64 now,
					 const struct cw_config *cfg)
{
	__u64 *last = bpf_map_lookup_elem(map, flow);

	if (last && now - *last < cfg->dedup_ns) {
		/* Refresh, so a chain of retransmissions (1 s, 2 s, 4 s apart) stays one
		 * attempt while no gap exceeds dedup_ns. */
		*last = now;
		return 1;
	}
	/* An entry that is there but old is rewritten in place: replacing it
	 * through bpf_map_update_elem() costs an LRU node swap (~400 ns measured,
	 * bench/results) on every SYN of a reused 4-tuple. */
	if (last)
		*last = now;
	else
		bpf_map_update_elem(map, flow, &now, BPF_ANY);
	return 0;
}

/* A connection attempt (type CW_EV_NEW_CONN) or a stealth probe (CW_EV_PROBE)
 * that is not a retransmission. Both count the destination port in the
 * source's scan state, the same slots and window, so a scan may mix them.
 * Always passes. One function for both, so scan_update() and the scan report
 * are in the program once. */
static __always_inline int handle_attempt(struct xdp_md *ctx, const struct pkt *p,
					  const struct cw_config *cfg, __u64 now, __u8 type)
{
	__u32 verdict = type == CW_EV_PROBE ? CW_STAT_PASS_PROBE : CW_STAT_PASS_SYN;
	struct scan_walk w = {};
	__u64 expires = 0;
	struct cw_event *e;
	__u32 nports;
	__u8 action;

	if (type == CW_EV_PROBE) {
		count(CW_STAT_PROBE);
	} else {
		count(CW_STAT_SYN);
		count_interface(ctx->ingress_ifindex);
	}

	nports = scan_update(&p->flow, now, cfg, &w);

	/* The attempt is reported before the scan it completes, matching the
	 * order an operator expects to read them in. */
	e = event_new(p, now, ctx->ingress_ifindex, type);
	if (e)
		bpf_ringbuf_submit(e, 0);

	if (nports) {
		count(CW_STAT_SCAN);
		action = block_scanner(&p->flow.saddr, now, cfg, &expires);
		e = event_new(p, now, ctx->ingress_ifindex, CW_EV_SCAN);
		if (e) {
			e->action = action;
			e->expires_ns = expires;
			e->nports = nports > CW_SCAN_SLOTS ? CW_SCAN_SLOTS : nports;
			__builtin_memcpy(e->ports, w.ports, sizeof(w.ports));
			bpf_ringbuf_submit(e, 0);
		}
	}
	/* The packet that crosses the threshold is the last one that passes:
	 * the block takes effect from the next packet on. */
	return pass(verdict);
}

/* What a TCP segment without ACK is (segments with ACK never get here).
 *
 * RFC 9293 (3.10.7): once a connection is synchronized every segment carries
 * ACK, so without ACK a real stack sends only two things:
 *  - a SYN opening a connection (with ECE+CWR for ECN setup, rarely PSH/URG,
 *    which Linux accepts as a connection request): an attempt, as before;
 *  - an RST answering a segment of a connection it does not know, whose ACK
 *    field it echoes as the RST's sequence number: <SEQ=SEG.ACK><CTL=RST>.
 *    Legitimate, and common (a late segment after a reboot). Not counted; nor
 *    is an RST with other bits (FIN, PSH, URG): middleboxes and odd stacks put
 *    them there, and no stack answers an RST, so it cannot map a port.
 * Everything else is a probe: a stack in CLOSED answers it with an RST, one in
 * LISTEN drops it silently (RFC 9293: in LISTEN a segment without SYN "must
 * have an ACK"), and that difference is what nmap reads:
 *  - no flags (-sN NULL), FIN alone (-sF), FIN+PSH+URG (-sX Xmas), and any
 *    other mix of FIN/PSH/URG/ECE/CWR without SYN, RST or ACK (nmap
 *    --scanflags);
 *  - SYN+FIN: a SYN that also closes; nothing opens a connection that way
 *    (Linux's LISTEN discards it since 2012, "tcp: drop SYN+FIN messages"),
 *    and it was the classic way past filters that compared the flag byte
 *    with SYN;
 *  - SYN+RST: opens and aborts at once; no stack sends it.
 * (ACK-bearing segments, -sA/-sW/-sM included, pass untouched: without
 * connection state they cannot be told from a live connection's traffic.) */
enum tcp_kind { TCP_PASS, TCP_ATTEMPT, TCP_PROBE };

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04

static __always_inline enum tcp_kind tcp_kind(__u8 flags)
{
	if (flags & TH_SYN)
		return flags & (TH_FIN | TH_RST) ? TCP_PROBE : TCP_ATTEMPT;
	if (flags & TH_RST)
		return TCP_PASS;
	return TCP_PROBE;
}

/* A TCP segment without ACK: an attempt, a probe, or a reset. */
static __always_inline int handle_no_ack(struct xdp_md *ctx, struct pkt *p,
					 const struct cw_config *cfg)
{
	enum tcp_kind kind = tcp_kind(p->tcp_flags);
	__u64 now;
	__u8 type;

	if (kind == TCP_PASS)
		return pass(CW_STAT_PASS_TCP_OTHER);
	/* After the block lookup (a blocked martian is still dropped), before
	 * anything is recorded, for attempts and probes alike: no state, no
	 * event, no block. */
	if (martian_source(&p->flow.saddr, ctx->ingress_ifindex))
		return pass(CW_STAT_PASS_MARTIAN);
	now = now_ns();
	if (kind == TCP_PROBE) {
		/* nmap retransmits an unanswered probe (an open or filtered port
		 * answers nothing): the same 4-tuple within dedup_ns is one probe. */
		if (seen_recently(&probe_seen, &p->flow, now, cfg)) {
			count(CW_STAT_PROBE_RETRANSMIT);
			return pass(CW_STAT_PASS_PROBE);
		}
		type = CW_EV_PROBE;
	} else {
		if (seen_recently(&syn_seen, &p->flow, now, cfg)) {
			count(CW_STAT_SYN_RETRANSMIT);
			return pass(CW_STAT_PASS_SYN);
		}
		type = CW_EV_NEW_CONN;
	}
	/* One call site, so the scan path is in the program (and verified) once. */
	return handle_attempt(ctx, p, cfg, now, type);
}

/* ---- parsing ------------------------------------------------------------------- */

SEC("xdp")
int connwatch_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct pkt p = {};
	struct cw_config *cfg;
	struct tcphdr *tcp;
	void *pos = data;
	__u32 zero = 0, drop;
	__u16 proto;
	__u8 l4;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return pass(CW_STAT_PASS_UNPARSED); /* cannot happen: an array entry */

	if ((void *)(eth + 1) > end)
		return pass(CW_STAT_PASS_UNPARSED);
	proto = eth->h_proto;
	pos = eth + 1;

	/* Up to two VLAN tags: 802.1ad outer + 802.1Q inner (QinQ), or either. */
#pragma unroll
	for (int i = 0; i < 2; i++) {
		struct vlan_hdr *vh = pos;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > end)
			return pass(CW_STAT_PASS_UNPARSED);
		proto = vh->encap_proto;
		pos = vh + 1;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = pos;
		__u32 hlen;

		if ((void *)(ip + 1) > end)
			return pass(CW_STAT_PASS_UNPARSED);
		if (ip->version != 4 || ip->ihl < 5)
			return pass(CW_STAT_PASS_UNPARSED);
		hlen = ip->ihl * 4; /* options included; at most 60 bytes */
		p.flow.saddr.b[10] = 0xff;
		p.flow.saddr.b[11] = 0xff;
		__builtin_memcpy(&p.flow.saddr.b[12], &ip->saddr, 4);
		p.flow.daddr.b[10] = 0xff;
		p.flow.daddr.b[11] = 0xff;
		__builtin_memcpy(&p.flow.daddr.b[12], &ip->daddr, 4);

		drop = blocked(&p.flow.saddr, cfg, 1);
		if (drop) {
			count(drop);
			return XDP_DROP;
		}
		if (ip->frag_off & bpf_htons(0x1fff)) /* offset != 0: no TCP header here */
			return pass(CW_STAT_PASS_FRAGMENT);
		if (ip->protocol != IPPROTO_TCP)
			return pass(CW_STAT_PASS_NON_TCP);
		pos = (void *)ip + hlen;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = pos;

		if ((void *)(ip6 + 1) > end)
			return pass(CW_STAT_PASS_UNPARSED);
		if (ip6->version != 6)
			return pass(CW_STAT_PASS_UNPARSED);
		/* Before the block lookup: ::ffff:a.b.c.d is the very key of the IPv4
		 * host a.b.c.d, and must never match its block nor touch its scan
		 * state. The stack discards it anyway (martian.h). */
		if (v4mapped_source(ip6))
			return pass(CW_STAT_PASS_MARTIAN);
		__builtin_memcpy(&p.flow.saddr, &ip6->saddr, 16);
		__builtin_memcpy(&p.flow.daddr, &ip6->daddr, 16);

		drop = blocked(&p.flow.saddr, cfg, 0);
		if (drop) {
			count(drop);
			return XDP_DROP;
		}
		l4 = ip6->nexthdr;
		pos = ip6 + 1;

		/* Bounded walk over extension headers to find TCP. */
		for (int i = 0; i < CW_MAX_EXT_HDRS; i++) {
			__u8 *h = pos;

			if (l4 == IPPROTO_TCP)
				break;
			if (l4 != IPPROTO_HOPOPTS && l4 != IPPROTO_ROUTING &&
			    l4 != IPPROTO_DSTOPTS && l4 != IPPROTO_FRAGMENT && l4 != IPPROTO_AH)
				return pass(CW_STAT_PASS_NON_TCP); /* ICMPv6, UDP, ESP, none, ... */
			if ((void *)(h + 8) > end) /* every extension header is >= 8 bytes */
				return pass(CW_STAT_PASS_UNPARSED);
			if (l4 == IPPROTO_FRAGMENT) {
				/* Fragment offset is the top 13 bits of bytes 2-3. */
				if ((h[2] << 8 | h[3]) & 0xfff8)
					return pass(CW_STAT_PASS_FRAGMENT);
				l4 = h[0];
				pos = h + 8;
			} else if (l4 == IPPROTO_AH) {
				l4 = h[0];
				pos = h + ((__u32)h[1] + 2) * 4; /* AH length is in 4-byte units, minus 2 */
			} else {
				l4 = h[0];
				pos = h + ((__u32)h[1] + 1) * 8; /* in 8-byte units, minus 1 */
			}
		}
		if (l4 != IPPROTO_TCP)
			return pass(CW_STAT_PASS_UNPARSED); /* more extension headers than we walk */
	} else {
		return pass(CW_STAT_PASS_NON_IP);
	}

	tcp = pos;
	if ((void *)(tcp + 1) > end || tcp->doff < 5)
		return pass(CW_STAT_PASS_UNPARSED);
	/* The options (data offset > 5) must be in the frame too: a header that
	 * runs past the end is truncated, and the kernel's TCP discards it, so it
	 * is no connection attempt. Nothing reads the options; this only compares. */
	if (pos + tcp->doff * 4 > end)
		return pass(CW_STAT_PASS_UNPARSED);
	/* The fast path's only flag test: established traffic always has ACK.
	 * Everything else about the flags is decided past this point, on the
	 * rare segments without ACK. */
	if (tcp->ack)
		return pass(CW_STAT_PASS_TCP_OTHER);
	p.tcp_flags = ((__u8 *)tcp)[13];
	p.flow.sport = bpf_ntohs(tcp->source);
	p.flow.dport = bpf_ntohs(tcp->dest);
	return handle_no_ack(ctx, &p, cfg);
}
