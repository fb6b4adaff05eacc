// SPDX-License-Identifier: GPL-2.0-only
// The packet builder checked against the wire format by hand: every BPF test
// trusts these bytes, so a builder bug would make them test the wrong thing
// (say, a fragment offset in the wrong bits, which would make "first fragment"
// and "non-first fragment" the same packet). No privileges needed.
#include <gtest/gtest.h>

#include "packet.h"

namespace connwatch::test {
namespace {

uint16_t be16(const Bytes& b, size_t at)
{
    return static_cast<uint16_t>(b.at(at) << 8 | b.at(at + 1));
}

// One's-complement sum over [from, to) plus `acc`; 0xffff means "checksum ok".
uint16_t fold(const Bytes& b, size_t from, size_t to, uint32_t acc = 0)
{
    for (size_t i = from; i < to; i += 2)
        acc += static_cast<uint32_t>(b[i] << 8 | (i + 1 < to ? b[i + 1] : 0));
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return static_cast<uint16_t>(acc);
}

TEST(Packet, Ipv4SynIsFiftyFourBytesWithValidChecksums)
{
    Bytes b = tcp4("192.0.2.7", 40001, 443).build();
    ASSERT_EQ(b.size(), 14u + 20 + 20);
    EXPECT_EQ(be16(b, 12), kEthIpv4);
    EXPECT_EQ(b[14], 0x45);           // version 4, IHL 5
    EXPECT_EQ(be16(b, 16), 40);       // total length
    EXPECT_EQ(be16(b, 20), 0);        // flags + fragment offset
    EXPECT_EQ(b[23], kProtoTcp);
    EXPECT_EQ(b[26], 192);            // source 192.0.2.7
    EXPECT_EQ(b[29], 7);
    EXPECT_EQ(fold(b, 14, 34), 0xffff);
    EXPECT_EQ(be16(b, 34), 40001);    // TCP source port
    EXPECT_EQ(be16(b, 36), 443);
    EXPECT_EQ(b[46], 5 << 4);         // data offset
    EXPECT_EQ(b[47], kSyn);
    // TCP checksum over the IPv4 pseudo-header: addresses, protocol, length.
    uint32_t pseudo = fold(b, 26, 34) + kProtoTcp + 20;
    EXPECT_EQ(fold(b, 34, 54, pseudo), 0xffff);
}

TEST(Packet, Ipv4OptionsSetIhlAndFragmentBits)
{
    Packet p = tcp4("192.0.2.7", 40001, 443);
    p.ipv4->options = Bytes(40, 1); // 40 NOPs: the largest header, IHL 15
    p.ipv4->frag_offset = 0x1abc;
    p.ipv4->more_fragments = true;
    p.ipv4->dont_fragment = true;
    Bytes b = p.build();
    EXPECT_EQ(b[14], 0x4f);
    EXPECT_EQ(be16(b, 16), 60 + 20);
    EXPECT_EQ(be16(b, 20), 0x4000 | 0x2000 | 0x1abc);
    EXPECT_EQ(fold(b, 14, 74), 0xffff);
    EXPECT_EQ(be16(b, 74), 40001); // TCP right after the options

    p.ipv4->options = {0x94, 0x04, 0, 0, 1}; // router alert + NOP, padded to 8
    EXPECT_EQ(p.build()[14], 0x47);
}

TEST(Packet, VlanTagsChainTheEtherTypes)
{
    Packet p = tcp4("192.0.2.7", 1, 2);
    p.vlan(kEthQinQ, 100).vlan(kEthVlan, 200);
    Bytes b = p.build();
    EXPECT_EQ(be16(b, 12), kEthQinQ);
    EXPECT_EQ(be16(b, 14), 100);
    EXPECT_EQ(be16(b, 16), kEthVlan);
    EXPECT_EQ(be16(b, 18), 200);
    EXPECT_EQ(be16(b, 20), kEthIpv4);
    EXPECT_EQ(b[22], 0x45);
    auto l = p.layout();
    ASSERT_EQ(l.size(), 6u);
    EXPECT_EQ(l[3].first, "ipv4");
    EXPECT_EQ(l[3].second, 22u);
    EXPECT_EQ(l[5].second, b.size());
}

TEST(Packet, Ipv6ExtensionHeadersChainAndEncodeTheirLengths)
{
    Packet p = tcp6("2001:db8::7", 40001, 22);
    p.ipv6->ext = {hop_by_hop(16), routing(), fragment(0x123, true), auth_header(24),
                   dest_options(8)};
    Bytes b = p.build();
    size_t ip = 14, ext = ip + 40;
    EXPECT_EQ(be16(b, 12), kEthIpv6);
    EXPECT_EQ(b[ip] >> 4, 6);
    EXPECT_EQ(be16(b, ip + 4), 16 + 24 + 8 + 24 + 8 + 20); // payload length
    EXPECT_EQ(b[ip + 6], kProtoHopByHop);
    // Hop-by-hop, 16 bytes: 8-byte units minus one.
    EXPECT_EQ(b[ext], kProtoRouting);
    EXPECT_EQ(b[ext + 1], 1);
    ext += 16;
    EXPECT_EQ(b[ext], kProtoFragment);
    EXPECT_EQ(b[ext + 1], 2);
    ext += 24;
    // Fragment: offset in the top 13 bits, M in the lowest.
    EXPECT_EQ(b[ext], kProtoAh);
    EXPECT_EQ(be16(b, ext + 2), 0x123 << 3 | 1);
    ext += 8;
    // AH, 24 bytes: 4-byte units minus two.
    EXPECT_EQ(b[ext], kProtoDstOpts);
    EXPECT_EQ(b[ext + 1], 4);
    ext += 24;
    EXPECT_EQ(b[ext], kProtoTcp);
    EXPECT_EQ(b[ext + 1], 0);
    ext += 8;
    EXPECT_EQ(be16(b, ext), 40001);
    EXPECT_EQ(ext + 20, b.size());
}

TEST(Packet, Ipv6TcpChecksumCoversThePseudoHeader)
{
    Bytes b = tcp6("2001:db8::7", 40001, 22).build();
    ASSERT_EQ(b.size(), 14u + 40 + 20);
    uint32_t pseudo = fold(b, 22, 54) + kProtoTcp + 20;
    EXPECT_EQ(fold(b, 54, 74, pseudo), 0xffff);
}

TEST(Packet, TcpOptionsSetTheDataOffset)
{
    Packet p = tcp4("192.0.2.7", 1, 2);
    p.tcp->options = linux_syn_options();
    Bytes b = p.build();
    EXPECT_EQ(b.size(), 14u + 20 + 40);
    EXPECT_EQ(b[46], 10 << 4);
    EXPECT_EQ(be16(b, 54), 0x0204); // MSS option first
}

TEST(Packet, ArpAndRawEtherTypes)
{
    Packet arp;
    arp.arp = Arp{};
    Bytes b = arp.build();
    EXPECT_EQ(b.size(), 14u + 28);
    EXPECT_EQ(be16(b, 12), kEthArp);
    EXPECT_EQ(be16(b, 20), 1); // request

    Packet lldp;
    lldp.ethertype_override = kEthLldp;
    lldp.raw_payload = {0x02, 0x07, 0x04};
    b = lldp.build();
    EXPECT_EQ(b.size(), 17u);
    EXPECT_EQ(be16(b, 12), kEthLldp);
}

// The benchmark's frames: real MACs, DF, its own id and window, and Ethernet
// padding to 60 bytes that no length field and no checksum may count.
TEST(Packet, MacsIdWindowAndPaddingAsSet)
{
    Packet p = tcp4("10.232.0.1", 1000, 8080, kAck);
    p.dst_mac = {0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
    p.src_mac = {0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};
    p.ipv4->dst = "10.232.0.2";
    p.ipv4->id = 1;
    p.ipv4->dont_fragment = true;
    p.tcp->window = 0xffff;
    p.pad_to = 60;
    Bytes b = p.build();
    ASSERT_EQ(b.size(), 60u);
    EXPECT_EQ(Bytes(b.begin(), b.begin() + 12),
              Bytes({0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f}));
    EXPECT_EQ(be16(b, 16), 40); // total length: the padding is not the IP packet's
    EXPECT_EQ(be16(b, 18), 1);
    EXPECT_EQ(be16(b, 20), 0x4000);
    EXPECT_EQ(fold(b, 14, 34), 0xffff);
    EXPECT_EQ(be16(b, 48), 0xffff);
    uint32_t pseudo = fold(b, 26, 34) + kProtoTcp + 20;
    EXPECT_EQ(fold(b, 34, 54, pseudo), 0xffff);
    EXPECT_EQ(Bytes(b.begin() + 54, b.end()), Bytes(6, 0));
    EXPECT_EQ(p.layout().back(), std::make_pair(std::string("end"), size_t{60}));

    p.pad_to = 40; // shorter than the frame: nothing added
    EXPECT_EQ(p.build().size(), 54u);
}

} // namespace
} // namespace connwatch::test
