// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * connwatch XDP program: per-source port-scan detection over a sliding window,
 * lock-free across CPUs. Part of connwatch.bpf.c (see maps.h).
 */
#pragma once

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

/* Records a SYN from flow->saddr to flow->dport in the state of the source's
 * unit: the source itself, or its prefix (scan_unit()). Returns
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
static __always_inline __u32 scan_update(const struct cw_flow_key *flow, const struct cw_addr *unit,
					 __u64 now_ns, const struct cw_config *cfg,
					 struct scan_walk *w)
{
	struct cw_scan_state *st = bpf_map_lookup_elem(&scan_state, unit);
	__u32 threshold = cfg->threshold;
	__u64 reported;

	w->now_ms = now_ns / 1000000 + 1;
	w->window_ms = cfg->window_ns / 1000000;
	if (st) {
		reported = READ_ONCE(st->reported_ms);
		if (reported && (__s64)(w->now_ms - reported) < (__s64)w->window_ms &&
		    block_lapsed(unit, reported)) {
			/* What userspace does when it removes a block. */
			bpf_map_delete_elem(&scan_state, unit);
			st = NULL;
		}
	}
	if (!st) {
		__u32 zero = 0;
		struct scan_blank *blank = bpf_map_lookup_elem(&scan_zero, &zero);

		if (!blank)
			return 0;
		/* BPF_NOEXIST: if another CPU created it meanwhile, use theirs. */
		bpf_map_update_elem(&scan_state, unit, blank, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&scan_state, unit);
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

/* What a source is counted and blocked as: its prefix (ipv4-prefix,
 * ipv6-prefix), written to *unit, and its length returned; or, when sources of
 * its family are counted per address or the prefix holds an allowlisted or own
 * address (allow_inside), the source itself and 0. On the attempt/probe path
 * only; one hash lookup when a length is configured. */
static __always_inline __u32 scan_unit(const struct pkt *p, const struct cw_config *cfg,
				       struct cw_addr *unit)
{
	__u32 plen = source_prefix(cfg, p->v4);

	*unit = p->flow.saddr;
	if (!plen)
		return 0;
	prefix_key(unit, &p->flow.saddr, plen);
	if (bpf_map_lookup_elem(&allow_inside, unit)) {
		*unit = p->flow.saddr;
		return 0;
	}
	return plen;
}

