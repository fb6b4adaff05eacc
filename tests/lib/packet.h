// SPDX-License-Identifier: GPL-2.0-only
// Frames crafted byte by byte for BPF_PROG_TEST_RUN. Nothing here uses the
// kernel's or libc's header structs: the point is to write exactly the bytes a
// wire would carry, including the broken ones (IHL 4, TCP data offset 3, seven
// IPv6 extension headers) that a struct-based builder would refuse to express.
//
// A Packet is described outside-in and serialized by build(), which fills in
// what the layers say about each other (EtherTypes, IPv4 protocol and total
// length, the IPv6 next-header chain and payload length, checksums) unless a
// field is forced to a wrong value on purpose.
//
// The BPF tests use it (tests/bpf) and so does the benchmark, for the frames it
// transmits (bench/live_frames.cpp): those must be right to the byte too, since
// the receiving stack verifies their checksums.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace connwatch::test {

using Bytes = std::vector<uint8_t>;
using Mac = std::array<uint8_t, 6>;

// TCP flag bits, byte 13 of the header.
enum TcpFlag : uint8_t {
    kFin = 0x01,
    kSyn = 0x02,
    kRst = 0x04,
    kPsh = 0x08,
    kAck = 0x10,
    kUrg = 0x20,
    kEce = 0x40,
    kCwr = 0x80,
};

// EtherTypes (host order).
inline constexpr uint16_t kEthIpv4 = 0x0800;
inline constexpr uint16_t kEthArp = 0x0806;
inline constexpr uint16_t kEthVlan = 0x8100; // 802.1Q
inline constexpr uint16_t kEthQinQ = 0x88a8; // 802.1ad service tag
inline constexpr uint16_t kEthIpv6 = 0x86dd;
inline constexpr uint16_t kEthLldp = 0x88cc;

// IP protocol / IPv6 next-header numbers.
inline constexpr uint8_t kProtoHopByHop = 0;
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoRouting = 43;
inline constexpr uint8_t kProtoFragment = 44;
inline constexpr uint8_t kProtoAh = 51;
inline constexpr uint8_t kProtoIcmpv6 = 58;
inline constexpr uint8_t kProtoNone = 59;
inline constexpr uint8_t kProtoDstOpts = 60;

struct Ipv4 {
    std::string src = "192.0.2.10";
    std::string dst = "198.51.100.1";
    // Raw option bytes; the builder pads them with End-of-Option-List to a
    // multiple of 4 and derives IHL from the result.
    Bytes options{};
    uint16_t id = 0x1234;
    uint16_t frag_offset = 0; // in 8-byte units, 13 bits
    bool more_fragments = false;
    bool dont_fragment = false;
    std::optional<uint8_t> ihl{};      // forced value (malformed headers)
    uint8_t version = 4;             // forced value (malformed headers)
    std::optional<uint8_t> protocol{}; // default: taken from the L4 layer
};

// One IPv6 extension header. Use the factories below: each knows its own
// length encoding (8-byte units minus one; AH: 4-byte units minus two).
struct Ipv6Ext {
    uint8_t type = kProtoDstOpts;
    size_t length = 8;         // total bytes on the wire
    uint16_t frag_offset = 0;  // fragment header only, 8-byte units
    bool more_fragments = false;
};
Ipv6Ext hop_by_hop(size_t length = 8);
Ipv6Ext dest_options(size_t length = 8);
Ipv6Ext routing(size_t length = 24);
Ipv6Ext fragment(uint16_t offset, bool more);
Ipv6Ext auth_header(size_t length = 24);

struct Ipv6 {
    std::string src = "2001:db8:1::10";
    std::string dst = "2001:db8:2::1";
    std::vector<Ipv6Ext> ext{};
    uint8_t version = 6;               // forced value (malformed headers)
    std::optional<uint8_t> next_header{}; // after the last extension; default from L4
};

struct Tcp {
    uint16_t sport = 40000;
    uint16_t dport = 80;
    uint8_t flags = kSyn;
    uint32_t seq = 0x01020304;
    uint32_t ack = 0;
    uint16_t window = 64240;
    Bytes options{};             // padded with End-of-Option-List to a multiple of 4
    std::optional<uint8_t> doff{}; // forced data offset, 32-bit words
    Bytes payload{};
};

// The options a Linux client puts in its SYN: MSS, SACK permitted, timestamps,
// NOP, window scale (20 bytes, data offset 10).
Bytes linux_syn_options();

struct Udp {
    uint16_t sport = 5353;
    uint16_t dport = 53;
    Bytes payload = {1, 2, 3, 4};
};

struct Icmp {}; // an echo request, ICMP or ICMPv6 after the IP layer

struct Arp {
    std::string sender = "192.0.2.10";
    std::string target = "192.0.2.1";
};

// One frame, outside-in. Unset layers are absent.
struct Packet {
    // BPF_PROG_TEST_RUN ignores them; a frame that a real interface must take
    // for its own (the benchmark's, which the stack answers) needs its MAC.
    Mac dst_mac{0x02, 0, 0, 0, 0, 0x02};
    Mac src_mac{0x02, 0, 0, 0, 0, 0x01};
    uint16_t ethertype_override = 0; // used when no L3 layer is set (e.g. LLDP)
    std::vector<std::pair<uint16_t, uint16_t>> vlans{}; // {TPID, VLAN id}, outermost first
    std::optional<Ipv4> ipv4{};
    std::optional<Ipv6> ipv6{};
    std::optional<Arp> arp{};
    std::optional<Tcp> tcp{};
    std::optional<Udp> udp{};
    std::optional<Icmp> icmp{};
    Bytes raw_payload{}; // after the last header (e.g. an LLDP body)
    // Zero bytes appended up to this frame size, counted in no length field:
    // Ethernet's padding (its minimum frame is 60 bytes without the FCS).
    size_t pad_to = 0;

    Packet& vlan(uint16_t tpid, uint16_t vid);
    Bytes build() const;
    // Byte offset at which each header starts, named, in order; "end" last.
    std::vector<std::pair<std::string, size_t>> layout() const;
};

// Shorthands for the common frames.
Packet tcp4(const std::string& src, uint16_t sport, uint16_t dport, uint8_t flags = kSyn);
Packet tcp6(const std::string& src, uint16_t sport, uint16_t dport, uint8_t flags = kSyn);

} // namespace connwatch::test
