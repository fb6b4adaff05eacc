// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * connwatch XDP program: repeat offenders (escalation-window,
 * escalation-factor, max-block-duration). Part of connwatch.bpf.c (see maps.h).
 */
#pragma once

/* ---- repeat offenders -------------------------------------------------------- */

/* The deadline of an automatic block of src made now, and the history that
 * goes with it: fail2ban's bantime.increment without a database.
 *
 * A source blocked again while its previous automatic block is less than
 * escalation_window_ns over (or not over yet: lifted early by an operator is
 * forgiven by userspace, which deletes the history) is offence n + 1 of its
 * chain and gets the previous block's duration x factor, at least block_ns and
 * at most max_block_ns: block-duration x factor^n while block-duration stays
 * as it is. Otherwise it is offence 1 and gets block_ns. The window counts
 * from the previous block's end, not its start: from its start, a block as
 * long as the window could never be followed by a longer one.
 *
 * With escalation off (escalation_window_ns 0) or blocks until removed
 * (block_ns 0) this is exactly the block without it: block_ns, no map touched,
 * *offence 0.
 *
 * The history is written here, before the block is inserted: a block the
 * kernel then refuses (the blocklist is full) still counts as an offence.
 * Two CPUs blocking the same source at the same instant both read the same
 * history and write the same offence: one offence, never two. */
static __always_inline __u64 escalate(const struct cw_addr *src, __u64 now,
				      const struct cw_config *cfg, __u32 *offence)
{
	__u64 base = cfg->block_ns, window = cfg->escalation_window_ns;
	__u64 cap = cfg->max_block_ns, factor = cfg->escalation_factor_milli;
	struct cw_offender next = {}, *o;
	__u64 dur = base;

	*offence = 0;
	if (!window || !base)
		return base ? now + base : 0;
	if (cap < base)
		cap = base;
	if (factor < 1000)
		factor = 1000;
	next.offences = 1;
	o = bpf_map_lookup_elem(&offenders, src);
	/* Signed: until_ns may lie ahead (lifted early) or, reloaded after a
	 * reboot, before this boot's clock began. */
	if (o && o->offences && (__s64)(now - o->until_ns) < (__s64)window) {
		__u64 prev = o->block_ns;

		/* prev x factor / 1000 without overflow: the cap stops it first. */
		if (prev / 1000 >= cap / factor)
			dur = cap;
		else
			dur = prev / 1000 * factor + prev % 1000 * factor / 1000;
		if (dur < base)
			dur = base;
		if (dur > cap)
			dur = cap;
		next.offences = o->offences + 1 ? o->offences + 1 : o->offences;
	}
	next.until_ns = now + dur;
	next.block_ns = dur;
	bpf_map_update_elem(&offenders, src, &next, BPF_ANY);
	*offence = next.offences;
	return now + dur;
}
