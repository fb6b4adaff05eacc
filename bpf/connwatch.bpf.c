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
#include "maps.h"
#include "verdict.h"
#include "scan.h"
#include "escalate.h"
#include "attempt.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ---- parsing ------------------------------------------------------------------- */

/* The IPv6 extension headers walked in front of TCP. */
static __always_inline int ext_header(__u8 next)
{
	return next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS ||
	       next == IPPROTO_FRAGMENT || next == IPPROTO_AH;
}

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
	/* A first fragment (more follow, offset 0) and the bytes of transport
	 * header and data it carries: its own word, not the frame's size. */
	__u32 tlen = 0, ext_len = 0;
	__u8 first_frag = 0;
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
		p.v4 = 1;
		v4_mapped(&p.flow.saddr, ip->saddr);

		drop = blocked(&p.flow.saddr, cfg, 1);
		if (drop) {
			count(drop);
			return XDP_DROP;
		}
		v4_mapped(&p.flow.daddr, ip->daddr); /* not needed to drop */
		/* One test for the common case (offset 0, MF clear; DF is 0x4000). */
		if (ip->frag_off & bpf_htons(0x3fff)) {
			if (ip->frag_off & bpf_htons(0x1fff)) { /* offset != 0: no TCP header */
				/* RFC 1858 (3.2) and RFC 3128: a TCP fragment at offset 1
				 * (8 bytes) overwrites, or completes, the flags of a first
				 * fragment. Offsets >= 2 lie past the flags (byte 13)
				 * and the data offset (byte 12) of any header. */
				if (ip->protocol == IPPROTO_TCP &&
				    (ip->frag_off & bpf_htons(0x1fff)) == bpf_htons(1))
					return tiny_verdict(cfg);
				return pass(CW_STAT_PASS_FRAGMENT);
			}
			first_frag = 1; /* MF set, offset 0 */
		}
		if (ip->protocol != IPPROTO_TCP)
			return pass(CW_STAT_PASS_NON_TCP);
		if (first_frag) {
			/* What it holds of the TCP header is its total length's
			 * word, not the frame's (Ethernet pads short frames). */
			if (bpf_ntohs(ip->tot_len) < hlen)
				return pass(CW_STAT_PASS_UNPARSED);
			tlen = bpf_ntohs(ip->tot_len) - hlen;
		}
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

		drop = blocked(&p.flow.saddr, cfg, 0);
		if (drop) {
			count(drop);
			return XDP_DROP;
		}
		__builtin_memcpy(&p.flow.daddr, &ip6->daddr, 16);
		l4 = ip6->nexthdr;
		pos = ip6 + 1;

		/* Bounded walk over extension headers to find TCP. */
		for (int i = 0; i < CW_MAX_EXT_HDRS; i++) {
			__u8 *h = pos;
			__u32 len;

			if (l4 == IPPROTO_TCP)
				break;
			if (!ext_header(l4))
				return pass(CW_STAT_PASS_NON_TCP); /* ICMPv6, UDP, ESP, none, ... */
			/* Every extension header is >= 8 bytes. A first fragment
			 * that ends inside the chain breaks RFC 7112 (the whole
			 * chain and the TCP header belong in the first fragment). */
			if ((void *)(h + 8) > end)
				return first_frag ? tiny_verdict(cfg) : pass(CW_STAT_PASS_UNPARSED);
			if (l4 == IPPROTO_FRAGMENT) {
				/* Fragment offset is the top 13 bits of bytes 2-3, M
				 * the lowest bit. */
				if ((h[2] << 8 | h[3]) & 0xfff8)
					return pass(CW_STAT_PASS_FRAGMENT);
				/* |=: a later fragment header (an atomic one,
				 * offset 0 without M) does not make a first
				 * fragment whole (xdp_fuzz found its cut TCP
				 * header passed as unparsed). */
				first_frag |= h[3] & 1;
				len = 8;
			} else if (l4 == IPPROTO_AH) {
				len = ((__u32)h[1] + 2) * 4; /* AH length is in 4-byte units, minus 2 */
			} else {
				len = ((__u32)h[1] + 1) * 8; /* in 8-byte units, minus 1 */
			}
			l4 = h[0];
			pos = h + len;
			ext_len += len;
		}
		/* A seventh extension header: the TCP header, if any, lies beyond
		 * the headers walked. No real stack sends such a chain
		 * (docs/PROBES.md), and what it hides cannot be judged here. What
		 * follows six headers is judged like any other (xdp_fuzz found
		 * six headers and UDP, or no next header, dropped). */
		if (l4 != IPPROTO_TCP)
			return ext_header(l4) ? tiny_verdict(cfg) : pass(CW_STAT_PASS_NON_TCP);
		if (first_frag) {
			if (bpf_ntohs(ip6->payload_len) < ext_len)
				return tiny_verdict(cfg); /* the chain ends past this fragment */
			tlen = bpf_ntohs(ip6->payload_len) - ext_len;
		}
	} else {
		return pass(CW_STAT_PASS_NON_IP);
	}

	tcp = pos;
	if (first_frag && tlen < sizeof(*tcp)) {
		/* A first fragment too short for the whole TCP header: the stack
		 * reassembles the segment and answers it, unseen here. RFC 1858
		 * / RFC 3128 (IPv4) and RFC 7112 (IPv6) let a filter drop it;
		 * whether this one does is drop-tiny-fragments. What it shows is
		 * judged: its ports (the first 4 bytes) make it a probe of its
		 * destination port, unless its flags (byte 13) show in it and
		 * say ACK or a reset, which the whole segment would be too
		 * (Linux discards overlapping fragments, so later ones cannot
		 * change them). */
		__u8 *t = pos;

		if (tlen < 4 || (void *)(t + 4) > end)
			return tiny_verdict(cfg); /* not even the ports */
		if (tlen >= 14 && (void *)(t + 14) <= end) {
			p.tcp_flags = t[13];
			if ((p.tcp_flags & TH_ACK) || tcp_kind(p.tcp_flags) == TCP_PASS)
				return tiny_verdict(cfg);
		}
		p.tiny = 1;
		p.flow.sport = (__u16)t[0] << 8 | t[1];
		p.flow.dport = (__u16)t[2] << 8 | t[3];
	} else {
		if ((void *)(tcp + 1) > end || tcp->doff < 5)
			return pass(CW_STAT_PASS_UNPARSED);
		/* The options (data offset > 5) must be in the frame too: a
		 * header that runs past the end is truncated, and the kernel's
		 * TCP discards it, so it is no connection attempt. In a first
		 * fragment they may continue in the next one. Nothing reads the
		 * options; this only compares. */
		if (!first_frag && pos + tcp->doff * 4 > end)
			return pass(CW_STAT_PASS_UNPARSED);
		/* The fast path's only flag test: established traffic always
		 * has ACK. Everything else about the flags is decided past this
		 * point, on the rare segments without ACK. */
		if (tcp->ack)
			return pass(CW_STAT_PASS_TCP_OTHER);
		p.tcp_flags = ((__u8 *)tcp)[13];
		p.flow.sport = bpf_ntohs(tcp->source);
		p.flow.dport = bpf_ntohs(tcp->dest);
	}
	/* One call site, so the scan path is in the program (and verified) once. */
	return handle_no_ack(ctx, &p, cfg);
}
