// SPDX-License-Identifier: GPL-2.0-only
// A reference model of the XDP program, for the differential fuzzer
// (tests/bpf/xdp_fuzz.cpp, docs/FUZZING.md). Written from what the documents
// say a frame must get -- docs/ARCHITECTURE.md (the per-packet picture, the
// maps, port-scan detection, bounded automatic blocks), docs/PROBES.md (which
// segments are attempts, probes or neither; tiny fragments and long header
// chains), bpf/martian.h's list and bpf/connwatch_abi.h's field comments -- not
// by translating the BPF C: it keeps its state in ordinary containers (a map of
// ports per source rather than 32 atomic slots), and parses with plain offsets.
//
// For one frame, at one time, on one interface, it says the XDP action, how
// much each counter (enum cw_stat) moves, and the events (new connection,
// probe, scan), and it keeps what the kernel's maps must then hold: the scan
// state of each source, the blocklist, the de-duplication of retransmissions,
// the token bucket of automatic blocks.
//
// One function per decision step (see classify()): a new rule (a cw_config
// field added by another change) is one more step, and zero in that field must
// leave every step as it is.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

extern "C" {
#include "connwatch_abi.h"
}

namespace connwatch::ref {

using Addr = std::array<uint8_t, 16>; // network order, IPv4 mapped

// A prefix of the 128-bit key space, as the LPM tries hold it: an IPv4 /24 is
// length 120.
struct Prefix {
    Addr addr{};
    unsigned len = 0;
    bool covers(const Addr& a) const;
    auto operator<=>(const Prefix&) const = default;
};

struct Block {
    uint64_t created_ns = 0;
    uint64_t expires_ns = 0; // 0: never
    uint8_t origin = 0;
    bool v6_prefix = false; // CIDR blocks: an IPv6 prefix (IPv4 packets ignore it)
    // block_addr: 0 = the key is one address; else an automatic block of the
    // prefix of this many bits (of the 128-bit form) whose masked address is
    // the key (ipv6-prefix, ipv4-prefix).
    unsigned prefix_len = 0;
    bool active(uint64_t now) const { return expires_ns == 0 || now < expires_ns; }
    auto operator<=>(const Block&) const = default;
};

// The 4-tuple of syn_seen and probe_seen.
struct Flow {
    Addr src{}, dst{};
    uint16_t sport = 0, dport = 0;
    auto operator<=>(const Flow&) const = default;
};

// One source's scan state: each destination port in the window with the
// millisecond stamp of its latest hit (stamp = now in ms + 1, as the ABI says),
// and when the last scan was reported (0: never).
struct SourceState {
    std::map<uint16_t, uint64_t> ports;
    uint64_t reported_ms = 0;
};

// What a frame must get.
struct Outcome {
    int action = -1; // XDP_PASS or XDP_DROP
    std::array<uint64_t, CW_STAT_MAX> delta{};
    std::vector<cw_event> events;
};

// Deliberate mistakes, to show that the fuzzer fails when the program and the
// reference disagree (docs/FUZZING.md): never set outside that check.
enum class Flip {
    none,
    synfin_is_attempt,   // SYN+FIN counted as a connection attempt, not a probe
    threshold_inclusive, // "threshold ports" is already a scan (the classic off-by-one)
    one_vlan_tag,        // only one VLAN tag is looked through
};
std::optional<Flip> parse_flip(const std::string& name);

class Reference {
public:
    explicit Reference(uint32_t max_blocks) : max_blocks_(max_blocks) {}

    // ---- what userspace writes, mirrored (the fuzzer does it to both) ----
    cw_config config{};
    Flip flip = Flip::none;
    std::vector<Prefix> allow;
    std::map<Prefix, Block> cidr;
    std::map<Addr, Block> blocks; // block_addr

    // ---- what the program keeps ----
    std::map<Addr, SourceState> scan;
    std::map<Flow, uint64_t> syn_seen, probe_seen;
    uint64_t bucket_tat = 0;                    // GCRA's theoretical arrival time
    std::map<uint32_t, uint64_t> syn_per_ifindex; // if_syn

    // The frame's outcome, and the state changed accordingly.
    Outcome classify(std::span<const uint8_t> frame, uint32_t ifindex, uint64_t now);

    // The ports of a source's state that are inside the window at `now`.
    std::map<uint16_t, uint64_t> live_ports(const SourceState& s, uint64_t now) const;

private:
    struct Packet; // what the parse found
    struct Step;   // a final verdict, or "go on"

    // The decision steps, in the order of docs/ARCHITECTURE.md.
    Step link_layer(const Packet& p, std::span<const uint8_t> f, size_t* l3, uint16_t* type);
    Step ipv4(Packet& p, std::span<const uint8_t> f, size_t l3);
    Step ipv6(Packet& p, std::span<const uint8_t> f, size_t l3);
    Step blocklists(const Packet& p);
    Step transport(Packet& p, std::span<const uint8_t> f);
    Step segment(Packet& p);
    Step martian(Packet& p);
    Step retransmission(Packet& p);
    Step attempt(Packet& p);

    bool allowed(const Addr& a) const;
    // ipv4-prefix / ipv6-prefix: the length (of the 128-bit form) a source is
    // counted and blocked as, 0 = per address.
    unsigned source_length(const Addr& a, bool v4) const;
    // What a source is counted and blocked as: its prefix, unless no length
    // is configured for its family or the prefix holds an allow entry longer
    // than the prefix (an own or allowlisted address). *len = 0: the source.
    Addr unit_of(const Addr& src, bool v4, unsigned* len) const;
    bool martian_source(const Addr& a, uint32_t ifindex) const;
    // Records the port; returns the ports to report when this is a scan now.
    std::optional<std::vector<uint16_t>> record_port(const Addr& src, uint16_t dport);
    bool block_lapsed(const Addr& src, uint64_t reported_ms) const;
    uint8_t automatic_block(const Addr& src, Addr unit, unsigned len, uint64_t* expires,
                            unsigned* block_len);
    bool take_token();
    int tiny_verdict();
    int pass(cw_stat s);
    void count(cw_stat s) { out_.delta[s]++; }
    cw_event event(const Packet& p, uint8_t type) const;

    uint32_t max_blocks_;
    // The frame being classified.
    Outcome out_;
    uint64_t now_ = 0;
    uint32_t ifindex_ = 0;
};

// Addresses for the fuzzer and its messages.
Addr mapped_v4(const uint8_t* b4);
Addr masked(const Addr& a, unsigned len); // the first len bits, the rest zero
std::string to_string(const Addr& a);

} // namespace connwatch::ref
