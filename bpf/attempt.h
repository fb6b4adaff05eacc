// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * connwatch XDP program: what happens to a TCP segment without ACK -- a
 * connection attempt, a stealth probe or a reset: de-duplication, the scan
 * state, events, and the automatic block. Part of connwatch.bpf.c (see maps.h).
 */
#pragma once

/* ---- attempts, probes and automatic blocks ------------------------------------ */

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_ACK 0x10

/* May one more automatic block be made now? GCRA (the generic cell rate
 * algorithm, a token bucket kept as one word): tat is when the bucket will be
 * full again; a block may be made while tat is at most block_slack_ns ahead of
 * now, and each block moves tat block_every_ns on from max(tat, now).
 *
 * Across CPUs: the word only changes by a compare-and-swap from the value the
 * decision was made on, so no two CPUs spend the same token, and each success
 * moves tat exactly block_every_ns on. Over any span [t0, t1] the successes
 * k satisfy t0 + (k - 1) * every <= tat before the k-th <= t1 + slack, so
 * k <= burst + (t1 - t0) / every: the bound holds whatever the interleaving,
 * even for a CPU whose clock read is a moment stale (its `now` is only smaller,
 * so it sees tat further ahead and is stricter). A CPU that loses the race
 * four times in a row skips the block: under such contention the bucket is
 * being spent anyway, and a skipped block errs on the side of the bound. */
static __always_inline int block_token(const struct cw_config *cfg, __u64 now)
{
	__u64 every = cfg->block_every_ns, tat, from;
	__u32 zero = 0;
	__u64 *w;

	if (!every)
		return 1; /* no bound */
	w = bpf_map_lookup_elem(&bucket, &zero);
	if (!w)
		return 0;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		tat = READ_ONCE(*w);
		from = tat > now ? tat : now;
		if (from - now > cfg->block_slack_ns)
			return 0; /* empty */
		if (__sync_val_compare_and_swap(w, tat, from + every) == tat)
			return 1;
	}
	return 0;
}

/* Does the source fail the reverse-path check (rp-filter) for a packet that
 * came in on ifindex? What Linux's fib_validate_source() decides for IPv4
 * with rp_filter 1 or 2, done on the route mirror (map routes), for IPv6 too:
 *  - no route, or a route that rejects (unreachable, blackhole, prohibit):
 *    spoofed in both modes;
 *  - an own address (or a broadcast route): spoofed unless it came in on
 *    loopback;
 *  - strict: spoofed unless one of the route's interfaces is ifindex.
 * Called only when a scan is about to be blocked. */
static __always_inline int rp_spoofed(const struct cw_addr *src, __u32 ifindex,
				      const struct cw_config *cfg)
{
	struct cw_lpm_key k = { .prefixlen = 128 };
	__u32 mode = cfg->rp_filter;
	struct cw_route *r;
	int v4;

	if (mode == CW_RP_IFACE) {
		__u32 *m = bpf_map_lookup_elem(&rp_iface, &ifindex);

		mode = m ? *m : CW_RP_OFF;
	}
	if (mode != CW_RP_STRICT && mode != CW_RP_LOOSE)
		return 0;
	k.addr = *src;
	r = bpf_map_lookup_elem(&routes, &k);
	v4 = src->b[10] == 0xff && src->b[11] == 0xff && !(src->b[0] | src->b[1] | src->b[2] |
							     src->b[3] | src->b[4] | src->b[5] |
							     src->b[6] | src->b[7] | src->b[8] |
							     src->b[9]);
	if (!r || (v4 && r->v6))
		return 1; /* no route back at all */
	if (r->kind == CW_ROUTE_LOCAL)
		return ifindex != CW_LOOPBACK_IFINDEX;
	if (r->kind != CW_ROUTE_UNICAST && r->kind != CW_ROUTE_ANY)
		return 1; /* a route that rejects */
	if (mode == CW_RP_LOOSE || r->kind == CW_ROUTE_ANY)
		return 0;
#pragma unroll
	for (int i = 0; i < CW_ROUTE_NEXTHOPS; i++)
		if (i < r->nhops && r->ifindex[i] == ifindex)
			return 0;
	return 1;
}

/* Inserts an automatic block for a scanner and says what happened. The block
 * covers unit, the scan's unit: the source (plen 0) or its prefix of plen
 * bits; *block_plen says what was blocked. The checks look at the real
 * source (the allowlist, the reverse path); the escalation history is kept
 * under the key blocked, so that a scanner rotating addresses inside its /64
 * is one offender. */
static __always_inline __u8 block_scanner(const struct cw_addr *src, const struct cw_addr *unit,
					  __u32 plen, __u32 ifindex, __u64 now,
					  const struct cw_config *cfg, __u64 *expires,
					  __u32 *offence, __u8 *block_plen)
{
	struct cw_block b = { .created_ns = now, .origin = CW_ORIGIN_SCAN };
	struct cw_block *old;

	if (is_allowed(src)) {
		count(CW_STAT_BLOCK_ALLOWED);
		return CW_ACT_ALLOWLISTED;
	}
	/* Before monitor-only, which changes nothing about a source being a
	 * decoy, and before the token bucket: a flood of decoys the check sees
	 * through spends no tokens that a real scanner's block would need. */
	if (rp_spoofed(src, ifindex, cfg)) {
		count(CW_STAT_BLOCK_SPOOFED);
		return CW_ACT_SPOOFED;
	}
	if (cfg->monitor_only) {
		count(CW_STAT_BLOCK_MONITOR);
		return CW_ACT_MONITOR_ONLY;
	}
	/* Last of the checks, so that only a block about to be made spends a
	 * token. (One whose insert then fails has spent it: rare, and harmless
	 * to the bound.) */
	if (!block_token(cfg, now)) {
		count(CW_STAT_BLOCK_RATE_LIMITED);
		return CW_ACT_RATE_LIMITED;
	}
	if (plen) {
		/* The prefix's key is also the address of its first host (the
		 * subnet-router anycast 2001:db8:1:2::, the network address
		 * 10.1.2.0): an active exact block there is another source's,
		 * maybe an operator's, and is never overwritten -- the scanner
		 * is then blocked alone. */
		old = bpf_map_lookup_elem(&block_addr, unit);
		if (old && !old->prefix_len && block_active(old)) {
			unit = src;
			plen = 0;
		}
	}
	b.prefix_len = plen;
	b.expires_ns = escalate(unit, now, cfg, offence);
	/* BPF_ANY: an entry still present here has expired (an active one would
	 * have dropped this packet), so overwriting it is renewing the block. */
	if (bpf_map_update_elem(&block_addr, unit, &b, BPF_ANY)) {
		count(CW_STAT_BLOCK_FULL);
		return CW_ACT_BLOCKLIST_FULL;
	}
	exact_list_grew(); /* after the insert: see exact_list_empty */
	count(CW_STAT_BLOCK_ADDED);
	if (plen)
		count(CW_STAT_BLOCK_PREFIX_ADDED);
	*expires = b.expires_ns;
	*block_plen = plen;
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
	e->tiny_fragment = p->tiny;
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
	struct cw_addr unit;
	__u64 expires = 0;
	__u32 offence = 0;
	struct cw_event *e;
	__u32 nports, plen;
	__u8 action, block_plen = 0;

	if (type == CW_EV_PROBE) {
		count(CW_STAT_PROBE);
	} else {
		count(CW_STAT_SYN);
		count_interface(ctx->ingress_ifindex);
	}

	plen = scan_unit(p, cfg, &unit);
	nports = scan_update(&p->flow, &unit, now, cfg, &w);

	/* The attempt is reported before the scan it completes, matching the
	 * order an operator expects to read them in. */
	e = event_new(p, now, ctx->ingress_ifindex, type);
	if (e)
		bpf_ringbuf_submit(e, 0);

	if (nports) {
		count(CW_STAT_SCAN);
		action = block_scanner(&p->flow.saddr, &unit, plen, ctx->ingress_ifindex, now, cfg,
				       &expires, &offence, &block_plen);
		e = event_new(p, now, ctx->ingress_ifindex, CW_EV_SCAN);
		if (e) {
			e->action = action;
			e->expires_ns = expires;
			e->prefix_len = plen;
			e->block_prefix_len = block_plen;
			e->offence = action == CW_ACT_BLOCKED ? offence : 0;
			e->nports = nports > CW_SCAN_SLOTS ? CW_SCAN_SLOTS : nports;
			__builtin_memcpy(e->ports, w.ports, sizeof(w.ports));
			bpf_ringbuf_submit(e, 0);
		}
	}
	/* The packet that crosses the threshold is the last one that passes:
	 * the block takes effect from the next packet on. A tiny fragment
	 * gets its own verdict (drop-tiny-fragments). */
	if (p->tiny)
		return tiny_verdict(cfg);
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


static __always_inline enum tcp_kind tcp_kind(__u8 flags)
{
	if (flags & TH_SYN)
		return flags & (TH_FIN | TH_RST) ? TCP_PROBE : TCP_ATTEMPT;
	if (flags & TH_RST)
		return TCP_PASS;
	return TCP_PROBE;
}

/* A TCP segment without ACK: an attempt, a probe, or a reset. Or a tiny first
 * fragment whose flags did not show ACK or RST: always a probe, since the
 * flags a SYN would need to be a connection attempt may be missing. */
static __always_inline int handle_no_ack(struct xdp_md *ctx, struct pkt *p,
					 const struct cw_config *cfg)
{
	enum tcp_kind kind = p->tiny ? TCP_PROBE : tcp_kind(p->tcp_flags);
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
			if (p->tiny)
				return tiny_verdict(cfg);
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
