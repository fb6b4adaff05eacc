/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Sources no packet may carry -- "martians", as Linux calls them. XDP runs
 * before the kernel's stack gets to discard them, so connwatch checks for them
 * itself: a SYN from a martian is passed (the stack drops it a moment later),
 * counted in PASS_MARTIAN, and nothing else -- no scan state, no block, no
 * event. Dropping it here would save the stack nothing worth a rule of its
 * own, and "anything unexpected passes, counted" is the program's rule.
 *
 * The list is the one the stack itself applies on input, so that connwatch
 * never ignores a source the host would answer (that would be a blind spot for
 * a scanner) and never reports an attempt that can never become a connection:
 *   IPv4 (ip_route_input_slow): 0.0.0.0/8, 224.0.0.0/4 multicast,
 *        255.255.255.255, and 127.0.0.0/8 unless it arrives on loopback;
 *   IPv6 (ip6_rcv_core): ff00::/8 multicast, ::ffff:0:0/96 v4-mapped, and ::1
 *        unless it arrives on loopback; plus :: (unspecified), which the
 *        stack lets through for neighbour discovery but TCP can never answer.
 * Not martians, on purpose: 240.0.0.0/4 (class E; Linux has routed and
 * answered it since 2.6.25, and some networks use it) and the deprecated
 * v4-compatible ::a.b.c.d (the stack answers it; its keys alias nothing).
 *
 * The v4-mapped case matters most: its 16 bytes are exactly those of the IPv4
 * host a.b.c.d, so it would share that host's scan state and blocks. It is
 * checked where the IPv6 header is parsed, before the block lookup (see
 * v4mapped_source()); the rest only on the SYN path, after it, so that
 * established traffic pays nothing for this.
 */
#ifndef CONNWATCH_MARTIAN_H
#define CONNWATCH_MARTIAN_H

/* The loopback device is ifindex 1 in every network namespace: the kernel
 * registers it first and fixes its index (LOOPBACK_IFINDEX). */
#define CW_LOOPBACK_IFINDEX 1

/* An IPv6 source in ::ffff:0:0/96. Reads the header's three leading words: on
 * the IPv6 fast path, so two loads and a branch for every normal address. */
static __always_inline int v4mapped_source(const struct ipv6hdr *ip6)
{
	return !(ip6->saddr.in6_u.u6_addr32[0] | ip6->saddr.in6_u.u6_addr32[1]) &&
	       ip6->saddr.in6_u.u6_addr32[2] == bpf_htonl(0xffff);
}

/* The rest of the list, for a 16-byte source (IPv4 mapped) that arrived on
 * ifindex. Called only on the SYN path, after v4mapped_source() passed every
 * IPv6 packet whose source is mapped: a mapped source here is IPv4. */
static __always_inline int martian_source(const struct cw_addr *src, __u32 ifindex)
{
	const __u8 *b = src->b;
	__u8 zero10 = 0, zero15;

	if (b[0] == 0xff)
		return 1; /* IPv6 multicast */
	if (b[0] != 0)
		return 0; /* IPv6 unicast: the common case */
#pragma unroll
	for (int i = 1; i < 10; i++)
		zero10 |= b[i];
	if (zero10)
		return 0;
	if (b[10] == 0xff && b[11] == 0xff) { /* IPv4 a.b.c.d */
		if (b[12] == 0 || (b[12] >= 224 && b[12] <= 239))
			return 1; /* 0.0.0.0/8, multicast */
		if (b[12] == 255 && b[13] == 255 && b[14] == 255 && b[15] == 255)
			return 1; /* limited broadcast */
		return b[12] == 127 && ifindex != CW_LOOPBACK_IFINDEX;
	}
	zero15 = b[10] | b[11] | b[12] | b[13] | b[14];
	if (zero15)
		return 0;
	return b[15] == 0 || (b[15] == 1 && ifindex != CW_LOOPBACK_IFINDEX); /* ::, ::1 */
}

#endif /* CONNWATCH_MARTIAN_H */
