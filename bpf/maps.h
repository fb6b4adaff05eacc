// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * connwatch XDP program: the test clock and every map. Included once, by
 * connwatch.bpf.c (the program is one translation unit; these headers only
 * divide it by subject).
 */
#pragma once

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

/* The same clock (CLOCK_MONOTONIC) as of the last timer tick: no clock-source
 * read, so a few ns instead of ~35 in a KVM guest (bench/README.md, "The clock
 * read of an expiring block"). Behind now_ns() by at most a tick (1-10 ms):
 * for a block's deadline that means lasting up to a tick longer. */
static __always_inline __u64 now_coarse_ns(void)
{
	if (cw_test_clock)
		return cw_fake_now_ns;
	return bpf_ktime_get_coarse_ns();
}

/* Jiffies: the verifier inlines bpf_jiffies64() into one load on 64-bit JITs.
 * Updated by the same tick as the coarse clock. The test clock counts one
 * every CW_JIFFY_MAX_NS (connwatch_abi.h). */
static __always_inline __u64 now_jiffies(void)
{
	if (cw_test_clock)
		return cw_fake_now_ns / CW_JIFFY_MAX_NS;
	return bpf_jiffies64();
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

/* How many automatic blocks the kernel has inserted into block_addr (bumped
 * after each insert, never written by userspace): what config.exact_empty_gen
 * is checked against (bpf/verdict.h). Its own map, not a config field, because
 * userspace writes the config entry whole and would put an old count back. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} block_gen SEC(".maps");

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

/* Per-CPU direct-mapped cache of recent drop verdicts (struct cw_verdict_slot,
 * CW_VERDICT_SLOTS of them, 128 KiB a CPU): a source that keeps sending after
 * its block costs an inlined array read and a compare instead of the hash
 * lookup (verdict.h, blocked()). Only drop verdicts are cached, each with the
 * block's deadline and the epoch at the time (config.verdict_gen + block_gen):
 * userspace moves the generation on after every blocklist write, the kernel
 * its count after every automatic block, and either retires every slot at
 * once, on every CPU. Per CPU: written without atomics by the only
 * program that runs on that CPU at a time (XDP runs with bottom halves off).
 * Not pinned: a new program starts with an empty one. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CW_VERDICT_SLOTS);
	__type(key, __u32);
	__type(value, struct cw_verdict_slot);
} verdict_cache SEC(".maps");

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

/* Prefixes that must never be counted or blocked as a whole (ipv4-prefix,
 * ipv6-prefix): the source prefixes, masked to the configured length, that
 * hold an allow entry longer than that length -- an own address, a configured
 * host -- so that a scanner sharing its /64 with this host or an allowlisted
 * neighbour is counted and blocked per address instead. An entry covering the
 * whole prefix needs no row here: it covers the source too (is_allowed()).
 * Written only by userspace, whenever the allowlist or the lengths change;
 * looked up only on the attempt/probe path when a length is configured.
 * Twice the allowlist's default capacity: one row per allow entry at most. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct cw_addr);
	__type(value, __u8);
} allow_inside SEC(".maps");

/* The token bucket of automatic blocks (max-new-blocks-per-second), as GCRA's
 * theoretical arrival time: one CLOCK_MONOTONIC word, moved on by compare-and-
 * swap (block_token()). Read and written only when a scan is about to be
 * blocked, never on the fast path. 0 at load: the bucket starts full. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bucket SEC(".maps");

/* Repeat offenders: per blocked source, its latest automatic block's end and
 * duration and the offences in its chain (struct cw_offender, bpf/escalate.h).
 * Touched only when an automatic block is made with escalation on. An LRU:
 * under a flood of blocks (at most max-new-blocks-per-second) the least
 * recently blocked histories go first, which can only make a returning
 * scanner's block shorter, never make one. Pinned with the blocklists, so it
 * outlives a restart; saved by userspace for a reboot. 32768 x 40 bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, struct cw_addr);
	__type(value, struct cw_offender);
} offenders SEC(".maps");
/* The route mirror for the reverse-path check (rp-filter): the host's routes
 * of tables local and main, IPv4 and IPv6, keyed like the allowlist, kept by
 * connwatchd from rtnetlink (docs/SECURITY.md, "Spoofed sources and decoys").
 * bpf_fib_lookup() cannot serve: on a host that does not forward it answers
 * BPF_FIB_LKUP_RET_FWD_DISABLED for every lookup. Looked up only when a scan
 * is about to be blocked, never on the fast path. 65536 routes; a host with
 * more (a full BGP table) gets the check turned off, said once. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct cw_lpm_key);
	__type(value, struct cw_route);
} routes SEC(".maps");

/* Each watched interface's rp-filter mode (enum cw_rp_mode) when the config
 * says CW_RP_IFACE (rp-filter unset: the interface's own rp_filter sysctl).
 * Key ifindex. Written by connwatchd; read only before an automatic block. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} rp_iface SEC(".maps");

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
