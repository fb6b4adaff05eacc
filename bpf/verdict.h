// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * connwatch XDP program: counters, the parsed packet, and the blocklist
 * lookups of the fast path. Part of connwatch.bpf.c (see maps.h).
 */
#pragma once

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

/* a = ::ffff:v4, written as two 8-byte words. The lookups that follow read
 * the key in 4- and 8-byte words (the hash, the key compare), and a load that
 * spans several smaller stores -- bytes 10 and 11, then the 4-byte address,
 * as this was written before -- cannot be forwarded from the CPU's store
 * buffer: it waits for them to reach the cache. That stall was ~10 ns of the
 * block path's ~22 (bench/README.md, "Where the block path's time went"). a must be 8-byte
 * aligned (struct pkt) for the compiler to emit two stores. */
static __always_inline void v4_mapped(struct cw_addr *a, __be32 v4)
{
	__u64 hi = 0, lo = bpf_cpu_to_be64(0xffff00000000ULL | bpf_ntohl(v4));

	__builtin_memcpy(&a->b[0], &hi, 8);
	__builtin_memcpy(&a->b[8], &lo, 8);
}

/* A block applies while it has no deadline or the deadline is in the future.
 * Expired entries are left for userspace to sweep (and log); until then they
 * simply stop matching. The coarse clock: on the drop path of every packet
 * of a blocked source, where the precise one cost ~35 ns (a block may end up
 * to a tick late). */
static __always_inline int block_active(const struct cw_block *b)
{
	return b->expires_ns == 0 || now_coarse_ns() < b->expires_ns;
}

static __always_inline int is_allowed(const struct cw_addr *a)
{
	struct cw_lpm_key k = { .prefixlen = 128 };

	k.addr = *a;
	return bpf_map_lookup_elem(&allow, &k) != NULL;
}

/* The length, in bits of the 128-bit form, of the prefix a source of this
 * family is counted and blocked as (ipv4-prefix, ipv6-prefix); 0 = per
 * address (a length of 0, 32 or 128 in the config). */
static __always_inline __u32 source_prefix(const struct cw_config *cfg, const int v4)
{
	if (v4)
		return cfg->ipv4_prefix && cfg->ipv4_prefix < 32 ? 96 + cfg->ipv4_prefix : 0;
	return cfg->ipv6_prefix && cfg->ipv6_prefix < 128 ? cfg->ipv6_prefix : 0;
}

/* k = src masked to its first plen bits (1 <= plen <= 127), as two 64-bit
 * words: a handful of ALU instructions, no loop. */
static __always_inline void prefix_key(struct cw_addr *k, const struct cw_addr *src, __u32 plen)
{
	__u64 hi, lo;

	__builtin_memcpy(&hi, &src->b[0], 8);
	__builtin_memcpy(&lo, &src->b[8], 8);
	if (plen <= 64) {
		hi &= bpf_cpu_to_be64(~0ULL << ((64 - plen) & 63));
		lo = 0;
	} else {
		lo &= bpf_cpu_to_be64(~0ULL << ((128 - plen) & 63));
	}
	__builtin_memcpy(&k->b[0], &hi, 8);
	__builtin_memcpy(&k->b[8], &lo, 8);
}

/* block_addr is known to be empty: userspace saw it so after reading the
 * kernel's insert count, and the count has not moved since (connwatch_abi.h,
 * exact_empty_gen). The kernel bumps the count after its insert and userspace
 * disarms before its own, so no entry is ever present while this says empty,
 * except for the inserting program's own instant. Two inlined array reads
 * instead of a hash lookup of an absent key. */
static __always_inline int exact_list_empty(const struct cw_config *cfg)
{
	__u64 armed = READ_ONCE(cfg->exact_empty_gen);
	__u32 zero = 0;
	__u64 *gen;

	if (!armed)
		return 0;
	gen = bpf_map_lookup_elem(&block_gen, &zero);
	return gen && armed == READ_ONCE(*gen) + 1;
}

/* After an automatic insert into block_addr: whatever userspace saw empty
 * before is no longer (exact_list_empty). */
static __always_inline void exact_list_grew(void)
{
	__u32 zero = 0;
	__u64 *gen = bpf_map_lookup_elem(&block_gen, &zero);

	if (gen)
		__sync_fetch_and_add(gen, 1);
}

/* ---- the verdict cache (maps.h: verdict_cache) ------------------------- */

/* Remembers a drop verdict in this CPU's slot. Tag 0 first and the tag last:
 * whatever reads the slot in between sees it empty, never half written.
 *
 * A block with a deadline is kept in jiffies, which the verifier inlines
 * into one load (the coarse clock is a helper call, ~3 ns on every dropped
 * packet): the slot stays valid for the time left divided by the longest
 * jiffy (CW_JIFFY_MAX_NS: HZ >= 100), so it lapses before the deadline on
 * any kernel, and the next packet finds the block through the lookups (and
 * caches it again, for the time then left). Not cached: a block that ends
 * within a jiffy of now. */
static __always_inline void verdict_store(struct cw_verdict_slot *s, __u64 hi, __u64 lo,
					  __u64 expires_ns, __u32 stat, __u64 gen)
{
	__u64 until = 0;

	if (expires_ns) {
		__u64 now = now_coarse_ns();

		if (expires_ns <= now + CW_JIFFY_MAX_NS)
			return;
		until = now_jiffies() + (expires_ns - now) / CW_JIFFY_MAX_NS;
		if (!until)
			return; /* 0 would say "no deadline" (jiffies wrapped) */
	}
	WRITE_ONCE(s->tag, 0);
	asm volatile("" ::: "memory");
	__builtin_memcpy(&s->addr.b[0], &hi, 8);
	__builtin_memcpy(&s->addr.b[8], &lo, 8);
	s->until_jiffies = until;
	asm volatile("" ::: "memory");
	WRITE_ONCE(s->tag, gen << 8 | stat);
}

/* The slot holds a verdict on the source hi, lo under generation gen that is
 * still in force: returns its drop counter, else 0. (Jiffies that wrapped
 * between the store and now only make it lapse early.) */
static __always_inline __u32 verdict_cached(const struct cw_verdict_slot *s, __u64 hi, __u64 lo,
					    __u64 gen)
{
	__u64 tag = READ_ONCE(s->tag), a, b, until;

	__builtin_memcpy(&a, &s->addr.b[0], 8);
	__builtin_memcpy(&b, &s->addr.b[8], 8);
	if (tag >> 8 != gen || a != hi || b != lo)
		return 0;
	until = s->until_jiffies;
	if (until && now_jiffies() >= until)
		return 0;
	return tag & 0xff;
}

/* The lookups behind the verdict cache (blocked(), below): returns the drop
 * counter when src is blocked, 0 otherwise, and fills the slot (when there is
 * one) with a drop found. v4 is a constant at each call.
 *
 * The exact lookup first: the common case, and every single-address block.
 * Then, when sources of this family are counted per prefix, the masked source
 * in the same hash (an automatic prefix block, docs/ARCHITECTURE.md): one more
 * hash lookup, only for a source whose exact lookup missed, only on a family
 * with a prefix configured (IPv6 by default; IPv4 not at its default 32). Then
 * the CIDR trie, while it holds anything.
 *
 * A subprogram of its own (a BPF-to-BPF call, ~1 ns): only the packets the
 * cache does not answer pay for the call, and the verifier sees one return
 * value where the inlined branches made every later path through the program
 * be explored once per way out of here (over its million-instruction limit). */
static __noinline __u32 blocked_lookup(const struct cw_addr *src, const struct cw_config *cfg,
				       const __u32 v4, struct cw_verdict_slot *slot, __u64 epoch)
{
	struct cw_block *b;
	__u32 plen, stat;

	/* Both lookups are of block_addr: when it is known empty, neither. */
	if (!exact_list_empty(cfg)) {
		b = bpf_map_lookup_elem(&block_addr, src);
		/* (The first address of a blocked prefix is its key: counted as
		 * the prefix's drop, one byte of the cache line just read.) */
		if (b && block_active(b)) {
			stat = b->prefix_len ? CW_STAT_DROP_BLOCKED_PREFIX : CW_STAT_DROP_BLOCKED;
			goto drop;
		}
		plen = source_prefix(cfg, v4);
		if (plen) {
			struct cw_addr k;

			prefix_key(&k, src, plen);
			b = bpf_map_lookup_elem(&block_addr, &k);
			/* Only an entry that says it is a prefix block of this
			 * length: the masked key may be another address's exact
			 * block. */
			if (b && b->prefix_len == plen && block_active(b)) {
				stat = CW_STAT_DROP_BLOCKED_PREFIX;
				goto drop;
			}
		}
	}
	if (cfg->cidr_blocks) {
		struct cw_lpm_key k = { .prefixlen = 128 };

		k.addr = *src;
		b = bpf_map_lookup_elem(&block_cidr, &k);
		/* An allow entry inside a blocked prefix wins: a CIDR block must not
		 * lock out an administrator's address. Exact blocks need no such
		 * check: userspace never inserts one that an allow entry covers. */
		if (b && block_active(b) && !(v4 && b->v6_prefix) && !is_allowed(src)) {
			stat = CW_STAT_DROP_BLOCKED_CIDR;
			goto drop;
		}
	}
	return 0;
drop:
	if (slot) {
		__u64 hi, lo;

		__builtin_memcpy(&hi, &src->b[0], 8);
		__builtin_memcpy(&lo, &src->b[8], 8);
		verdict_store(slot, hi, lo, b->expires_ns, stat, epoch);
	}
	return stat;
}

/* Returns the XDP_DROP stat index when src is blocked, 0 otherwise.
 *
 * First this CPU's verdict cache (config.verdict_gen non-zero): a slot that
 * holds src under the current epoch, its deadline not passed, is the verdict
 * without a hash lookup -- what a source that keeps sending after its block
 * costs. The epoch is userspace's generation plus the kernel's count of its
 * own automatic blocks (block_gen): both only grow, so their sum never
 * repeats, and either moving retires every slot -- a removal, or a block the
 * kernel made that now counts a cached source's drop (a source cached as a
 * CIDR block's drop inside a new prefix block). It is read before the
 * blocklists, so a verdict cached from a lookup that raced a removal carries
 * the epoch from before it, which userspace retires right after the removal.
 * Everything else: blocked_lookup(). */
static __always_inline __u32 blocked(const struct cw_addr *src, const struct cw_config *cfg,
				     const int v4)
{
	__u64 epoch = READ_ONCE(cfg->verdict_gen), armed = READ_ONCE(cfg->exact_empty_gen), k;
	struct cw_verdict_slot *slot = NULL;
	__u32 zero = 0;
	__u64 *kgen = bpf_map_lookup_elem(&block_gen, &zero);

	if (!kgen) /* cannot happen: an array entry */
		return blocked_lookup(src, cfg, v4, NULL, 0);
	k = READ_ONCE(*kgen);
	/* Nothing blocked at all (exact_list_empty, and no CIDR block): the pass
	 * path of a host not under attack, without a call or a cache read. */
	if (armed && armed == k + 1 && !cfg->cidr_blocks)
		return 0;
	if (epoch) {
		__u64 hi, lo;
		__u32 idx, stat;

		/* src is written in two 8-byte stores (v4_mapped, and the
		 * compiler for IPv6): loaded the same way, without a stall. */
		__builtin_memcpy(&hi, &src->b[0], 8);
		__builtin_memcpy(&lo, &src->b[8], 8);
		epoch += k;
		idx = CW_VERDICT_INDEX(hi, lo);
		slot = bpf_map_lookup_elem(&verdict_cache, &idx);
		if (slot) {
			stat = verdict_cached(slot, hi, lo, epoch);
			if (stat)
				return stat;
		}
	}
	return blocked_lookup(src, cfg, v4, slot, epoch);
}

/* The verdict on a packet that hides its TCP header from this program: a
 * first fragment too short for it, an IPv4 TCP fragment at offset 1, a TCP
 * header beyond the IPv6 extension headers walked. drop-tiny-fragments
 * decides; nothing a real TCP stack sends is among them (docs/PROBES.md). */
static __always_inline int tiny_verdict(const struct cw_config *cfg)
{
	if (cfg->drop_tiny_frags) {
		count(CW_STAT_DROP_TINY_FRAGMENT);
		return XDP_DROP;
	}
	return pass(CW_STAT_PASS_TINY_FRAGMENT);
}

/* Parsed packet: what the SYN and probe paths need. */
struct pkt {
	/* 8-byte aligned, so that v4_mapped() writes each address in two
	 * 8-byte stores. */
	struct cw_flow_key flow __attribute__((aligned(8)));
	__u8 v4;        /* 1: an IPv4 packet (saddr is ::ffff:a.b.c.d) */
	__u8 tcp_flags; /* byte 13 of the TCP header; 0 in a tiny fragment that lacks it */
	__u8 tiny;      /* 1: a first fragment too short for the TCP header (a probe) */
};
