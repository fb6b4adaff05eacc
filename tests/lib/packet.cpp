// SPDX-License-Identifier: GPL-2.0-only
#include "packet.h"

#include <arpa/inet.h>

#include <stdexcept>

namespace connwatch::test {

namespace {

void put8(Bytes& b, uint8_t v)
{
    b.push_back(v);
}

// Every multi-byte field on the wire is big-endian.
void put16(Bytes& b, uint16_t v)
{
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
}

void put32(Bytes& b, uint32_t v)
{
    put16(b, static_cast<uint16_t>(v >> 16));
    put16(b, static_cast<uint16_t>(v));
}

void put(Bytes& b, const Bytes& v)
{
    b.insert(b.end(), v.begin(), v.end());
}

void set16(Bytes& b, size_t at, uint16_t v)
{
    b.at(at) = static_cast<uint8_t>(v >> 8);
    b.at(at + 1) = static_cast<uint8_t>(v);
}

Bytes pad4(Bytes v)
{
    while (v.size() % 4)
        v.push_back(0); // End of Option List, both for IPv4 and TCP
    return v;
}

Bytes ip4_bytes(const std::string& text)
{
    Bytes b(4);
    if (inet_pton(AF_INET, text.c_str(), b.data()) != 1)
        throw std::invalid_argument("not an IPv4 address: " + text);
    return b;
}

Bytes ip6_bytes(const std::string& text)
{
    Bytes b(16);
    if (inet_pton(AF_INET6, text.c_str(), b.data()) != 1)
        throw std::invalid_argument("not an IPv6 address: " + text);
    return b;
}

// RFC 1071 one's-complement sum, folded, not yet inverted.
uint32_t sum16(const Bytes& b, uint32_t acc = 0)
{
    for (size_t i = 0; i < b.size(); i += 2) {
        uint32_t hi = b[i];
        uint32_t lo = i + 1 < b.size() ? b[i + 1] : 0;
        acc += hi << 8 | lo;
    }
    return acc;
}

uint16_t finish(uint32_t acc)
{
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return static_cast<uint16_t>(~acc);
}

struct Layer {
    std::string name;
    Bytes bytes;
};

} // namespace

Ipv6Ext hop_by_hop(size_t length)
{
    return Ipv6Ext{.type = kProtoHopByHop, .length = length};
}

Ipv6Ext dest_options(size_t length)
{
    return Ipv6Ext{.type = kProtoDstOpts, .length = length};
}

Ipv6Ext routing(size_t length)
{
    return Ipv6Ext{.type = kProtoRouting, .length = length};
}

Ipv6Ext fragment(uint16_t offset, bool more)
{
    return Ipv6Ext{.type = kProtoFragment, .length = 8, .frag_offset = offset,
                   .more_fragments = more};
}

Ipv6Ext auth_header(size_t length)
{
    return Ipv6Ext{.type = kProtoAh, .length = length};
}

Bytes linux_syn_options()
{
    return {
        2, 4, 0x05, 0xb4,               // MSS 1460
        4, 2,                           // SACK permitted
        8, 10, 0, 0, 0, 1, 0, 0, 0, 0,  // timestamps
        1,                              // NOP
        3, 3, 7,                        // window scale 7
    };
}

Packet& Packet::vlan(uint16_t tpid, uint16_t vid)
{
    vlans.emplace_back(tpid, vid);
    return *this;
}

namespace {

Bytes ext_bytes(const Ipv6Ext& e, uint8_t next)
{
    if (e.length < 8 || e.length % 8)
        throw std::invalid_argument("IPv6 extension headers are a multiple of 8 bytes");
    Bytes b;
    put8(b, next);
    switch (e.type) {
    case kProtoFragment:
        put8(b, 0);
        put16(b, static_cast<uint16_t>(e.frag_offset << 3 | (e.more_fragments ? 1 : 0)));
        put32(b, 0xc0ffee);
        break;
    case kProtoAh:
        // AH counts 4-byte units minus two (RFC 4302), unlike every other one.
        put8(b, static_cast<uint8_t>(e.length / 4 - 2));
        put16(b, 0);
        put32(b, 0x1000); // SPI
        put32(b, 1);      // sequence number
        break;
    case kProtoRouting:
        // Type 2 (Mobile IPv6) with segments left 0: the destination is final.
        put8(b, static_cast<uint8_t>(e.length / 8 - 1));
        put8(b, 2);
        put8(b, 0);
        break;
    default: {
        // Hop-by-hop and destination options: a PadN option fills the rest.
        put8(b, static_cast<uint8_t>(e.length / 8 - 1));
        size_t rest = e.length - 2;
        put8(b, 1);
        put8(b, static_cast<uint8_t>(rest - 2));
        break;
    }
    }
    b.resize(e.length, 0);
    return b;
}

uint8_t l4_proto(const Packet& p)
{
    if (p.tcp)
        return kProtoTcp;
    if (p.udp)
        return kProtoUdp;
    if (p.icmp)
        return p.ipv6 ? kProtoIcmpv6 : kProtoIcmp;
    return kProtoNone;
}

// The L4 segment with its checksum, given the pseudo-header's partial sum.
Bytes l4_bytes(const Packet& p, const Bytes& src, const Bytes& dst)
{
    Bytes b;
    size_t csum_at = 0;
    if (p.tcp) {
        const Tcp& t = *p.tcp;
        Bytes opts = pad4(t.options);
        put16(b, t.sport);
        put16(b, t.dport);
        put32(b, t.seq);
        put32(b, t.ack);
        put8(b, static_cast<uint8_t>(t.doff.value_or(5 + opts.size() / 4) << 4));
        put8(b, t.flags);
        put16(b, t.window);
        csum_at = b.size();
        put16(b, 0);
        put16(b, 0); // urgent pointer
        put(b, opts);
        put(b, t.payload);
    } else if (p.udp) {
        put16(b, p.udp->sport);
        put16(b, p.udp->dport);
        put16(b, static_cast<uint16_t>(8 + p.udp->payload.size()));
        csum_at = b.size();
        put16(b, 0);
        put(b, p.udp->payload);
    } else if (p.icmp) {
        put8(b, p.ipv6 ? 128 : 8); // echo request
        put8(b, 0);
        csum_at = b.size();
        put16(b, 0);
        put32(b, 0x00010001); // identifier, sequence
        put32(b, 0x64617461);
    } else {
        return b;
    }
    put(b, p.raw_payload);

    uint32_t acc = 0;
    bool pseudo = !(p.icmp && p.ipv4); // ICMPv4 alone has no pseudo-header
    if (pseudo) {
        acc = sum16(src, acc);
        acc = sum16(dst, acc);
        acc += l4_proto(p);
        acc += static_cast<uint32_t>(b.size());
    }
    uint16_t c = finish(sum16(b, acc));
    set16(b, csum_at, p.udp && c == 0 ? 0xffff : c);
    return b;
}

std::vector<Layer> layers(const Packet& p)
{
    std::vector<Layer> out;
    uint16_t l3type = p.ipv4   ? kEthIpv4
                      : p.ipv6 ? kEthIpv6
                      : p.arp  ? kEthArp
                               : p.ethertype_override;

    Layer eth{"ethernet", {}};
    eth.bytes.assign(p.dst_mac.begin(), p.dst_mac.end());
    eth.bytes.insert(eth.bytes.end(), p.src_mac.begin(), p.src_mac.end());
    put16(eth.bytes, p.vlans.empty() ? l3type : p.vlans.front().first);
    out.push_back(eth);
    for (size_t i = 0; i < p.vlans.size(); i++) {
        Layer v{"vlan" + std::to_string(i), {}};
        put16(v.bytes, p.vlans[i].second & 0x0fff); // PCP 0, DEI 0, VLAN id
        put16(v.bytes, i + 1 < p.vlans.size() ? p.vlans[i + 1].first : l3type);
        out.push_back(v);
    }

    Bytes l4;
    if (p.ipv4) {
        const Ipv4& ip = *p.ipv4;
        Bytes src = ip4_bytes(ip.src), dst = ip4_bytes(ip.dst);
        l4 = l4_bytes(p, src, dst);
        Bytes opts = pad4(ip.options);
        uint8_t ihl = ip.ihl.value_or(static_cast<uint8_t>(5 + opts.size() / 4));
        Layer h{"ipv4", {}};
        put8(h.bytes, static_cast<uint8_t>(ip.version << 4 | (ihl & 0xf)));
        put8(h.bytes, 0); // DSCP, ECN
        size_t payload = l4.empty() ? p.raw_payload.size() : l4.size();
        put16(h.bytes, static_cast<uint16_t>(20 + opts.size() + payload));
        put16(h.bytes, ip.id);
        put16(h.bytes, static_cast<uint16_t>((ip.dont_fragment ? 0x4000 : 0) |
                                             (ip.more_fragments ? 0x2000 : 0) |
                                             (ip.frag_offset & 0x1fff)));
        put8(h.bytes, 64); // TTL
        put8(h.bytes, ip.protocol.value_or(p.tcp || p.udp || p.icmp ? l4_proto(p) : 0xff));
        put16(h.bytes, 0);
        put(h.bytes, src);
        put(h.bytes, dst);
        put(h.bytes, opts);
        set16(h.bytes, 10, finish(sum16(h.bytes)));
        out.push_back(h);
    } else if (p.ipv6) {
        const Ipv6& ip = *p.ipv6;
        Bytes src = ip6_bytes(ip.src), dst = ip6_bytes(ip.dst);
        l4 = l4_bytes(p, src, dst);
        uint8_t last = ip.next_header.value_or(l4_proto(p));
        std::vector<Layer> ext;
        size_t ext_len = 0;
        for (size_t i = 0; i < ip.ext.size(); i++) {
            uint8_t next = i + 1 < ip.ext.size() ? ip.ext[i + 1].type : last;
            ext.push_back({"ipv6ext" + std::to_string(i), ext_bytes(ip.ext[i], next)});
            ext_len += ip.ext[i].length;
        }
        Layer h{"ipv6", {}};
        put32(h.bytes, static_cast<uint32_t>(ip.version) << 28); // class 0, flow 0
        size_t payload = ext_len + (l4.empty() ? p.raw_payload.size() : l4.size());
        put16(h.bytes, static_cast<uint16_t>(payload));
        put8(h.bytes, ip.ext.empty() ? last : ip.ext.front().type);
        put8(h.bytes, 64); // hop limit
        put(h.bytes, src);
        put(h.bytes, dst);
        out.push_back(h);
        out.insert(out.end(), ext.begin(), ext.end());
    } else if (p.arp) {
        Layer h{"arp", {}};
        put16(h.bytes, 1);        // Ethernet
        put16(h.bytes, kEthIpv4); // protocol
        put8(h.bytes, 6);
        put8(h.bytes, 4);
        put16(h.bytes, 1); // request
        put(h.bytes, Bytes(p.src_mac.begin(), p.src_mac.end()));
        put(h.bytes, ip4_bytes(p.arp->sender));
        for (int i = 0; i < 6; i++)
            put8(h.bytes, 0);
        put(h.bytes, ip4_bytes(p.arp->target));
        out.push_back(h);
    }

    if (!l4.empty()) {
        out.push_back({p.tcp ? "tcp" : p.udp ? "udp" : "icmp", l4});
    } else if (!p.raw_payload.empty()) {
        out.push_back({"payload", p.raw_payload});
    }
    size_t size = 0;
    for (const auto& l : out)
        size += l.bytes.size();
    if (size < p.pad_to)
        out.push_back({"padding", Bytes(p.pad_to - size, 0)});
    return out;
}

} // namespace

Bytes Packet::build() const
{
    Bytes out;
    for (const auto& l : layers(*this))
        put(out, l.bytes);
    return out;
}

std::vector<std::pair<std::string, size_t>> Packet::layout() const
{
    std::vector<std::pair<std::string, size_t>> out;
    size_t at = 0;
    for (const auto& l : layers(*this)) {
        out.emplace_back(l.name, at);
        at += l.bytes.size();
    }
    out.emplace_back("end", at);
    return out;
}

Packet tcp4(const std::string& src, uint16_t sport, uint16_t dport, uint8_t flags)
{
    Packet p;
    p.ipv4 = Ipv4{.src = src};
    p.tcp = Tcp{.sport = sport, .dport = dport, .flags = flags};
    return p;
}

Packet tcp6(const std::string& src, uint16_t sport, uint16_t dport, uint8_t flags)
{
    Packet p;
    p.ipv6 = Ipv6{.src = src};
    p.tcp = Tcp{.sport = sport, .dport = dport, .flags = flags};
    return p;
}

} // namespace connwatch::test
