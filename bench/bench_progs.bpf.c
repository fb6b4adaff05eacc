// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The small XDP programs of the live-frames benchmark (bench/live_frames.cpp).
 * None of them is part of connwatch; they are the sender and the baselines that
 * connwatch's program is measured against.
 *
 *   xdp_redirect     the sender: run by BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES
 *                    on a packet template, it transmits every run out of
 *                    target_ifindex (the sending veth), so the frames arrive at the
 *                    peer veth as xdp_frames, straight into the peer's XDP program.
 *   xdp_redirect_sp  the same, but first writes a new TCP source port into every
 *                    frame (one per-CPU counter): every SYN is a new 4-tuple.
 *   xdp_redirect_src the same, but first writes a new IPv4 source address into
 *                    every frame: spread_base + n mod spread_count (one per-CPU
 *                    counter), so the frames cycle through a set of sources.
 *   xdp_drop_count   receiver baseline: XDP_DROP after one per-CPU counter increment
 *                    (the ceiling of anything that drops in XDP).
 *   xdp_pass_count   receiver baseline: XDP_PASS after one per-CPU counter increment.
 *   xdp_sink         on the sending veth: drops whatever comes back (replies of the
 *                    receiver's stack), counted apart from the receiver.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the harness before load: the veth the sender transmits out of. */
const volatile __u32 target_ifindex = 0;

/* Counters, per CPU so that no cache line bounces. Key: enum below. Written by
 * the programs here, read and summed by the harness. An array: never evicts. */
enum bench_counter {
	BENCH_RX = 0,   /* frames seen by xdp_drop_count / xdp_pass_count */
	BENCH_SINK = 1, /* frames dropped by xdp_sink on the sending veth */
	BENCH_TX = 2,   /* frames the sender's program ran on (xdp_redirect*) */
	BENCH_MAX
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BENCH_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1;
}

SEC("xdp")
int xdp_redirect(struct xdp_md *ctx)
{
	(void)ctx;
	return bpf_redirect(target_ifindex, 0);
}

/* One's-complement checksum after a 16-bit word of the summed data changed
 * from old to new (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')). */
static __always_inline __u16 csum_replace2(__u16 check, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~check + (__u16)~old + new;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* The frame is an untagged IPv4 + TCP packet without IP options (the harness
 * builds it). Live frames recycle their pages without copying the template in
 * again, so a frame may hold what this program wrote into it on an earlier run:
 * the port is written outright, and the checksum is adjusted from whatever port
 * the frame holds now, which keeps the two consistent whatever the page saw. The
 * checksum matters: the stack verifies it (veth passes xdp_frames up with
 * CHECKSUM_NONE), and a bad one would be a cheap discard instead of a SYN. */
SEC("xdp")
int xdp_redirect_sp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct tcphdr *tcp = data + sizeof(struct ethhdr) + sizeof(struct iphdr);
	__u32 key = BENCH_TX;
	__u64 *n = bpf_map_lookup_elem(&counters, &key);
	__u16 port;

	if ((void *)(tcp + 1) > end || !n)
		return XDP_ABORTED;
	/* Ports 1024..65535: 64512 consecutive SYNs are distinct 4-tuples. */
	port = bpf_htons(1024 + (__u16)(*n % 64512));
	tcp->check = csum_replace2(tcp->check, tcp->source, port);
	tcp->source = port;
	*n += 1;
	return bpf_redirect(target_ifindex, 0);
}

/* Set by the harness between rows (in .bss, writable while loaded): the
 * sources xdp_redirect_src cycles through, host order. */
__u32 spread_base = 0;
__u32 spread_count = 0; /* 0 counts as 1 */

/* The source address rewritten, the IP header checksum adjusted word by word
 * from what the frame holds now (as xdp_redirect_sp does with the port); the
 * TCP checksum too, which covers the address through the pseudo-header. */
SEC("xdp")
int xdp_redirect_src(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct tcphdr *tcp = (void *)(ip + 1);
	__u32 key = BENCH_TX, count = spread_count ? spread_count : 1;
	__u64 *n = bpf_map_lookup_elem(&counters, &key);
	__be32 addr;
	__u16 *old, *new;

	if ((void *)(tcp + 1) > end || !n)
		return XDP_ABORTED;
	addr = bpf_htonl(spread_base + (__u32)(*n % count));
	old = (__u16 *)&ip->saddr;
	new = (__u16 *)&addr;
	ip->check = csum_replace2(csum_replace2(ip->check, old[0], new[0]), old[1], new[1]);
	tcp->check = csum_replace2(csum_replace2(tcp->check, old[0], new[0]), old[1], new[1]);
	ip->saddr = addr;
	*n += 1;
	return bpf_redirect(target_ifindex, 0);
}

SEC("xdp")
int xdp_drop_count(struct xdp_md *ctx)
{
	(void)ctx;
	count(BENCH_RX);
	return XDP_DROP;
}

SEC("xdp")
int xdp_pass_count(struct xdp_md *ctx)
{
	(void)ctx;
	count(BENCH_RX);
	return XDP_PASS;
}

SEC("xdp")
int xdp_sink(struct xdp_md *ctx)
{
	(void)ctx;
	count(BENCH_SINK);
	return XDP_DROP;
}
