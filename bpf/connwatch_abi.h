/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one header shared by the XDP program (bpf/connwatch.bpf.c) and userspace
 * (src/). Everything that crosses the kernel/userspace boundary is defined here
 * and only here: map keys and values, the ring-buffer event, the config record
 * and the counter indices.
 *
 * Rules: plain C, fixed-width types only, explicit padding, every field says its
 * unit and byte order. Userspace static_asserts the sizes (src/kernel/abi_check.cpp) so a
 * change here that breaks the layout fails the build instead of corrupting data.
 *
 * Versions: a new connwatchd shares every pinned map whose type, key and value
 * sizes, capacity and flags equal its own with the program an earlier one left
 * attached (docs/ARCHITECTURE.md, "No gap on restart"), so equal layout must
 * mean equal meaning: fields and counters are only appended (which changes the
 * size), and a changed meaning at an unchanged size needs a new map name.
 *
 * Addresses: one form for both families. Every address is 16 bytes in network
 * order; IPv4 is stored IPv4-mapped (::ffff:a.b.c.d), so one allowlist and one
 * blocklist serve IPv4 and IPv6 alike. An IPv4 /24 is LPM prefix 96 + 24.
 */
#ifndef CONNWATCH_ABI_H
#define CONNWATCH_ABI_H

#include <linux/types.h> /* __u8..__u64 */

/* Distinct destination ports remembered per source. The scan threshold must be
 * below this (userspace validates 1 <= threshold < CW_SCAN_SLOTS), so the slot
 * array always holds enough ports to see threshold + 1 distinct ones. */
#define CW_SCAN_SLOTS 32

/* IPv6 extension headers walked before giving up and passing the packet. */
#define CW_MAX_EXT_HDRS 6

/* 16-byte address, network byte order, IPv4 as ::ffff:a.b.c.d. */
struct cw_addr {
	__u8 b[16];
};

/* Key of the LPM tries (allowlist and CIDR blocklist). prefixlen counts bits of
 * the 128-bit mapped form: an IPv4 /24 is 96 + 24 = 120. */
struct cw_lpm_key {
	__u32 prefixlen; /* host order, 0..128, as the LPM trie map requires */
	struct cw_addr addr;
};

/* Who made a block. */
enum cw_origin {
	CW_ORIGIN_SCAN = 1,   /* inserted by the XDP program on a detected scan */
	CW_ORIGIN_MANUAL = 2, /* inserted by an operator (connwatchctl) */
	CW_ORIGIN_CROWDSEC = 3, /* a CrowdSec LAPI decision mirrored by connwatchd */
};

/* Value of both blocklists (exact hash and CIDR trie). */
struct cw_block {
	__u64 created_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) when inserted */
	__u64 expires_ns; /* CLOCK_MONOTONIC deadline; 0 = until removed */
	__u8 origin;      /* enum cw_origin */
	/* block_cidr only: 1 = the prefix is an IPv6 one. Needed because in the
	 * LPM trie an IPv6 prefix shorter than /96 (::/0, ::/8, ...) also covers
	 * the IPv4-mapped keys ::ffff:a.b.c.d: the program ignores such a match
	 * for an IPv4 packet, so an IPv6 block never covers IPv4. Any IPv4 prefix
	 * covering the address is longer (>= 96), so the trie returns it first.
	 * 0 for IPv4 prefixes and for exact blocks. Was padding: entries pinned
	 * before it existed read 0, and the loader marks them at start. */
	__u8 v6_prefix;
	/* block_addr only: 0 = the key is one address (as before this field);
	 * otherwise the key is a prefix of this many bits of the 128-bit form,
	 * the source masked to it: an automatic block of a whole prefix
	 * (ipv6-prefix, ipv4-prefix; 64 for an IPv6 /64, 96 + 24 for an IPv4
	 * /24). The drop path looks the masked source up when an exact lookup
	 * missed, and only trusts an entry that says it is a prefix: the masked
	 * key of 2001:db8:1:2::/64 is also the address 2001:db8:1:2::, which may
	 * carry an exact block of its own. Was padding. */
	__u8 prefix_len;
	__u8 pad[5];
};

/* Value of the per-source scan-detection state (LRU hash keyed by cw_addr).
 *
 * slot[i] remembers one destination port this source sent a SYN to, and when:
 *     slot = (stamp_ms << 16) | port,   stamp_ms = CLOCK_MONOTONIC in ms, + 1
 * (the + 1 keeps a valid slot non-zero; 0 means empty). A port counts as "in the
 * window" while now_ms - stamp_ms < window. Packing both into one word lets a
 * CPU claim or refresh a slot with a single atomic store or compare-and-swap:
 * RSS spreads one scanner's SYNs (different 4-tuples) over every CPU, and LRU
 * maps cannot carry a bpf_spin_lock (the kernel refuses it with EOPNOTSUPP).
 * The XDP program documents the remaining race and why it is harmless. */
struct cw_scan_state {
	__u64 reported_ms;           /* stamp_ms of the last scan event; 0 = never */
	__u64 slot[CW_SCAN_SLOTS];   /* (stamp_ms << 16) | port; 0 = empty */
};

/* Key of the SYN de-duplication map: one TCP 4-tuple. A retransmitted SYN of the
 * same 4-tuple inside dedup_ns is not reported again. */
struct cw_flow_key {
	struct cw_addr saddr;
	struct cw_addr daddr;
	__u16 sport; /* host order */
	__u16 dport; /* host order */
};

/* The single entry of the config array map. Userspace writes it before attach
 * and again on every live change (SIGHUP, connwatchctl); the XDP program reads
 * it on every SYN. Fields are independent words, so a reader racing a writer
 * sees each field either old or new, never torn. */
struct cw_config {
	__u64 window_ns;     /* scan window: ports seen in the previous window_ns count */
	__u64 block_ns;      /* automatic block duration; 0 = until removed */
	__u64 dedup_ns;      /* SYN retransmission de-duplication interval */
	__u32 threshold;     /* more than this many distinct ports is a scan */
	__u32 monitor_only;  /* 1: report scans, never block */
	__u32 cidr_blocks;   /* entries in block_cidr; 0 lets the fast path skip the trie */
	__u32 drop_tiny_frags; /* 1: drop the TCP fragments and header chains that hide the
				* flags (drop-tiny-fragments; docs/PROBES.md); 0: pass
				* them. Counted as probes either way. Was padding. */
	/* Bound on automatic blocks (max-new-blocks-per-second, max-new-blocks-burst),
	 * a token bucket kept as GCRA's one word (bucket map): a block may be made
	 * while the theoretical arrival time is at most block_slack_ns ahead of now,
	 * and each one moves it block_every_ns on. */
	__u64 block_every_ns; /* 1e9 / rate: one token per this long; 0 = no bound */
	__u64 block_slack_ns; /* (burst - 1) * block_every_ns: the burst beyond one */
	/* Repeat offenders (escalation-window, escalation-factor,
	 * max-block-duration; bpf/escalate.h): a source blocked again within
	 * escalation_window_ns of the end of its previous automatic block gets
	 * the previous duration x escalation_factor_milli / 1000, at least
	 * block_ns, at most max_block_ns. 0 = no escalation: every automatic
	 * block lasts block_ns and no history is kept, as before these fields. */
	__u64 escalation_window_ns;
	__u64 max_block_ns;            /* the cap; 0 (or below block_ns) = block_ns */
	__u32 escalation_factor_milli; /* factor x 1000; below 1000 = 1000 (no growth) */
	__u32 pad2;
	/* Reverse-path check of a scanner's source before its automatic block
	 * (rp-filter; docs/SECURITY.md, "Spoofed sources and decoys"): enum
	 * cw_rp_mode. 0 (off) is the behaviour before it existed. */
	__u32 rp_filter;
	__u32 pad_rp;
	/* Sources counted and blocked per prefix (ipv4-prefix, ipv6-prefix): an
	 * IPv4 source as its /ipv4_prefix, an IPv6 one as its /ipv6_prefix,
	 * unless the prefix holds an allowlisted or own address (map
	 * allow_inside). 0, 32 (IPv4) and 128 (IPv6): per address, as before
	 * these fields; connwatchd's defaults are 32 and 64. Appended after
	 * rp-filter's fields: every earlier offset is unchanged. */
	__u8 ipv4_prefix;    /* 0..32 */
	__u8 ipv6_prefix;    /* 0..128 */
	__u8 pad_prefix[6];
	/* The pass path's shortcut (bpf/verdict.h, exact_list_empty): nonzero when
	 * userspace saw block_addr empty after reading the kernel's insert count
	 * (the block_gen map) as exact_empty_gen - 1. While block_gen still holds
	 * that value, no automatic block has been made since, and the exact
	 * lookup is skipped. The kernel bumps block_gen after each automatic
	 * insert; userspace writes 0 here before each insert of its own. 0: look
	 * the source up on every packet, the behaviour before this field. */
	__u64 exact_empty_gen;
	/* Generation of the block path's per-CPU verdict cache (bpf/verdict.h,
	 * map verdict_cache). A cached drop verdict counts only while its slot
	 * carries the epoch: this plus the kernel's count of automatic blocks
	 * (block_gen). Userspace moves it on after every write of the blocklists
	 * (an insert, a rewrite, a removal, single or batched), every allowlist
	 * addition and every write of this entry, so no verdict cached before such
	 * a change is used after it. 0 = the cache is off, neither read nor
	 * written: every packet looks the blocklists up, the behaviour before
	 * this field. */
	__u64 verdict_gen;
};

/* Slots of the per-CPU verdict cache a CPU (a power of two): direct-mapped. */
#define CW_VERDICT_SLOTS_LOG2 12
#define CW_VERDICT_SLOTS (1u << CW_VERDICT_SLOTS_LOG2)

/* The slot of a source whose address is the 8-byte words hi, lo (the key's
 * bytes 0-7 and 8-15, as the CPU loads them): the words folded to 32 bits,
 * times a 32-bit golden-ratio constant, the top bits (Fibonacci hashing:
 * neighbouring addresses land far apart). The program and the tests compute
 * it with this one macro. */
#define CW_VERDICT_INDEX(hi, lo)                                                            \
	((__u32)((((__u32)((hi) ^ (lo)) ^ (__u32)(((hi) ^ (lo)) >> 32)) * 2654435761u) >>  \
		 (32 - CW_VERDICT_SLOTS_LOG2)))

/* One slot of the verdict cache: a recent drop verdict of this CPU. 32 bytes,
 * two to a cache line. */
struct cw_verdict_slot {
	struct cw_addr addr;  /* the source dropped */
	__u64 until_jiffies;  /* valid while jiffies are below this; 0 = the block has no
			       * deadline (bpf/verdict.h, verdict_store) */
	__u64 tag;            /* epoch << 8 | the drop's enum cw_stat; 0 = empty */
};

/* The longest jiffy of any kernel connwatch runs on (HZ >= 100): a slot of a
 * block with a deadline stays valid for the time left divided by this many
 * ns, so it lapses before the deadline whatever HZ is. */
#define CW_JIFFY_MAX_NS 10000000ULL

/* Value of the offenders map (LRU hash keyed by the blocked source, the key of
 * block_addr): the history of a source's automatic blocks, for escalation.
 * Written only when the kernel makes an automatic block with escalation on;
 * userspace deletes it when an operator lifts a block (a manual unblock
 * forgives), saves it at stop and reloads it at start across a reboot. */
struct cw_offender {
	__u64 until_ns;  /* CLOCK_MONOTONIC end of the latest automatic block (its
			  * deadline); the window is measured from it. Compared
			  * signed: after a reboot userspace may write a time
			  * before boot, i.e. "negative". */
	__u64 block_ns;  /* the latest block's duration */
	__u32 offences;  /* automatic blocks in the chain, the latest included */
	__u32 pad;
};

/* cw_config.rp_filter, and the values of the rp_iface map. */
enum cw_rp_mode {
	CW_RP_OFF = 0,    /* no check */
	CW_RP_STRICT = 1, /* RFC 3704 strict: the route back to the source must leave by
			   * the interface the packet came in on */
	CW_RP_LOOSE = 2,  /* RFC 3704 loose (feasible): some route back must exist */
	CW_RP_IFACE = 3,  /* cw_config only: each interface's mode is in rp_iface
			   * (keyed by ifindex; an interface not there: off) */
};

/* Nexthop interfaces kept per route (multipath); a route with more is kept as
 * CW_ROUTE_ANY. */
#define CW_ROUTE_NEXTHOPS 4

/* What a route of the mirror (map routes, an LPM trie keyed like the allowlist)
 * says about a source it covers. */
enum cw_route_kind {
	CW_ROUTE_UNICAST = 1, /* leaves by ifindex[0..nhops-1] */
	CW_ROUTE_NONE = 2,    /* unreachable, blackhole, prohibit, throw: no way back */
	CW_ROUTE_LOCAL = 3,   /* an own address (or broadcast, multicast, anycast route of
			       * the local table): a source only on loopback */
	CW_ROUTE_ANY = 4,     /* a route whose interfaces are not all known (more than
			       * CW_ROUTE_NEXTHOPS, or nexthop objects): any interface */
};

/* Value of the route mirror (map routes). Userspace keeps it from rtnetlink
 * (tables main and local, IPv4 and IPv6). */
struct cw_route {
	__u32 ifindex[CW_ROUTE_NEXTHOPS]; /* output interfaces, nhops of them */
	__u8 kind;  /* enum cw_route_kind */
	__u8 nhops; /* valid entries of ifindex[] */
	__u8 v6;    /* 1: an IPv6 route. As in block_cidr, an IPv6 prefix shorter
		     * than /96 also covers the IPv4-mapped keys: the program takes
		     * such a match for an IPv4 source as no route. */
	__u8 pad;
};

/* Ring-buffer event types. */
enum cw_event_type {
	CW_EV_NEW_CONN = 1,      /* a TCP SYN without ACK (not a retransmission) */
	CW_EV_SCAN = 2,          /* a source crossed the threshold */
	CW_EV_PROBE = 3,         /* a stealth probe (not a retransmission): a TCP segment
				  * without ACK that no real stack sends to a port it has
				  * no connection with (FIN, NULL, Xmas, SYN+FIN, SYN+RST;
				  * docs/PROBES.md). Counted as a port like a SYN; not a
				  * connection attempt. Its flags are in tcp_flags. */
};

/* What the kernel did with a scanner (field action of CW_EV_SCAN). */
enum cw_scan_action {
	CW_ACT_BLOCKED = 1,       /* inserted into block_addr */
	CW_ACT_MONITOR_ONLY = 2,  /* monitor-only mode: reported, not blocked */
	CW_ACT_ALLOWLISTED = 3,   /* source is in the allowlist: reported, not blocked */
	CW_ACT_BLOCKLIST_FULL = 4,/* block_addr was full: reported, not blocked */
	CW_ACT_RATE_LIMITED = 5,  /* more automatic blocks than max-new-blocks-per-second
				   * (and its burst) allow: reported, not blocked */
	CW_ACT_SPOOFED = 6,       /* the source fails the reverse-path check (rp-filter):
				   * likely spoofed (a decoy), reported, not blocked */
};

/* One ring-buffer record. 136 bytes (128 before offence was appended). */
struct cw_event {
	__u64 ts_ns;          /* CLOCK_MONOTONIC when the packet was seen */
	__u64 expires_ns;     /* CW_EV_SCAN + CW_ACT_BLOCKED: the block's deadline, 0 = never */
	struct cw_addr saddr; /* source address */
	struct cw_addr daddr; /* destination address */
	__u32 ifindex;        /* interface the packet arrived on */
	__u16 sport;          /* host order */
	__u16 dport;          /* host order */
	__u8 type;            /* enum cw_event_type */
	__u8 action;          /* enum cw_scan_action (CW_EV_SCAN only) */
	__u8 nports;          /* number of valid entries in ports[] (CW_EV_SCAN only) */
	__u8 tcp_flags;       /* byte 13 of the TCP header of the segment reported (every
			       * type; for CW_EV_SCAN the segment that completed the scan):
			       * FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 URG 0x20
			       * ECE 0x40 CWR 0x80 */
	__u8 tiny_fragment;   /* CW_EV_PROBE (and the CW_EV_SCAN it completes):
			       * 1 = a first fragment too short to hold the
			       * whole TCP header (docs/PROBES.md); tcp_flags then holds
			       * byte 13 if the fragment reaches it, else 0. Was padding. */
	__u8 prefix_len;      /* CW_EV_SCAN: the source was counted as the prefix of this
			       * many bits of the 128-bit form (64 for an IPv6 /64,
			       * 96 + 24 for an IPv4 /24), saddr being the address
			       * that completed the scan; 0 = per address. Was padding. */
	__u8 block_prefix_len;/* CW_EV_SCAN + CW_ACT_BLOCKED: what the block covers, the
			       * same form (0 = the address saddr alone). Was padding. */
	__u8 pad[1];
	__u16 ports[CW_SCAN_SLOTS]; /* distinct ports in the window, host order, unsorted */
	/* appended for repeat offenders: CW_EV_SCAN + CW_ACT_BLOCKED with
	 * escalation on, which offence this block is (1 = first in its window
	 * chain); 0 = not counted (escalation off, or not blocked). */
	__u32 offence;
	__u32 pad2;
};

/* Indices of the per-CPU counter array `stats`. Every verdict and every reason
 * has one, and every packet increments exactly one verdict counter
 * (PASS_* or DROP_*), so their sum is the number of packets seen; the other
 * counters count events on top. Verdicts are not contiguous: PASS_PROBE came
 * later and was appended. Userspace sums over CPUs. Append only: the numbers are ABI with
 * pinned maps and metrics. */
enum cw_stat {
	CW_STAT_PASS_NON_IP = 0,      /* not IPv4/IPv6 (ARP, LLDP, ...): passed untouched */
	CW_STAT_PASS_NON_TCP,     /* IP but not TCP (UDP, ICMP, ...) */
	CW_STAT_PASS_UNPARSED,    /* truncated or malformed headers: passed */
	CW_STAT_PASS_FRAGMENT,    /* non-first IP fragment: no TCP header to read */
	CW_STAT_PASS_TCP_OTHER,   /* TCP that is not a connection attempt */
	CW_STAT_PASS_SYN,         /* TCP SYN without ACK: passed (see SYN, SYN_RETRANSMIT) */
	CW_STAT_DROP_BLOCKED,     /* dropped: source in block_addr */
	CW_STAT_DROP_BLOCKED_CIDR,/* dropped: source in block_cidr */
	CW_STAT_SYN,              /* new connection attempts (reported) */
	CW_STAT_SYN_RETRANSMIT,   /* SYN of a 4-tuple seen within dedup_ns: not reported */
	CW_STAT_SCAN,             /* port scans detected */
	CW_STAT_BLOCK_ADDED,      /* automatic blocks inserted */
	CW_STAT_BLOCK_FULL,       /* automatic block refused: block_addr full */
	CW_STAT_BLOCK_ALLOWED,    /* automatic block skipped: source allowlisted */
	CW_STAT_BLOCK_MONITOR,    /* automatic block skipped: monitor-only */
	CW_STAT_EVENTS_LOST,      /* ring buffer full: event not delivered */
	/* appended for stealth probes (docs/PROBES.md) */
	CW_STAT_PASS_PROBE,       /* verdict: a stealth probe, passed (see PROBE, PROBE_RETRANSMIT) */
	CW_STAT_PROBE,            /* stealth probes counted as ports and reported */
	CW_STAT_PROBE_RETRANSMIT, /* probe of a 4-tuple probed within dedup_ns: not counted again */
	CW_STAT_PASS_MARTIAN,     /* from a source no packet may carry: passed, never counted
				   * in the scan state or blocked, not reported (SYNs; and
				   * every packet of a v4-mapped IPv6 source) */
	/* appended for fragments and header chains that hide the TCP flags
	 * (drop-tiny-fragments, docs/PROBES.md): an IPv4 or IPv6 first fragment
	 * with less than the 20-byte TCP header, an IPv4 TCP fragment at offset 1
	 * (8 bytes: RFC 1858's overlap), an IPv6 TCP header beyond the
	 * CW_MAX_EXT_HDRS extension headers walked or beyond the first fragment.
	 * Where the port shows, it is also counted as a probe (PROBE). */
	CW_STAT_DROP_TINY_FRAGMENT, /* verdict: such a packet, dropped (drop-tiny-fragments on) */
	CW_STAT_PASS_TINY_FRAGMENT, /* verdict: such a packet, passed (drop-tiny-fragments off) */
	CW_STAT_BLOCK_RATE_LIMITED, /* automatic block skipped: max-new-blocks-per-second */
	CW_STAT_BLOCK_SPOOFED,    /* automatic block skipped: the source fails the
				   * reverse-path check (rp-filter) */
	/* appended for prefix blocks (ipv4-prefix, ipv6-prefix) */
	CW_STAT_DROP_BLOCKED_PREFIX, /* verdict: dropped, the source's prefix in block_addr */
	CW_STAT_BLOCK_PREFIX_ADDED,  /* automatic blocks of a whole prefix (also in BLOCK_ADDED) */
	CW_STAT_MAX
};

#endif /* CONNWATCH_ABI_H */
