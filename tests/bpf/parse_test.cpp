// SPDX-License-Identifier: GPL-2.0-only
// What the parser makes of each kind of frame: which verdict counter it lands
// in, whether it is a connection attempt (and then the event says exactly who
// connected where), and that a frame the program passes leaves it untouched.
// One fresh program per case, so no case can lean on the state of another.
#include <functional>
#include <optional>

#include "xdp_fixture.h"

namespace connwatch::test {
namespace {

struct Flow {
    std::string src, dst;
    uint16_t sport, dport;
};

struct ParseCase {
    const char* name;
    std::function<Packet()> packet;
    int action;
    StatDelta delta;
    std::optional<Flow> conn; // the one CW_EV_NEW_CONN expected, if any

    friend void PrintTo(const ParseCase& c, std::ostream* os) { *os << c.name; }
};

const char* const kSrc4 = "192.0.2.10";
const char* const kSrc6 = "2001:db8:1::10";

// The defaults of packet.h, as the event must report them.
const Flow kFlow4{kSrc4, kDst4, 40000, 80};
const Flow kFlow6{kSrc6, kDst6, 40000, 80};

Packet v4(uint8_t flags = kSyn)
{
    return tcp4(kSrc4, 40000, 80, flags);
}

Packet v6(uint8_t flags = kSyn, std::vector<Ipv6Ext> ext = {})
{
    Packet p = tcp6(kSrc6, 40000, 80, flags);
    p.ipv6->ext = std::move(ext);
    return p;
}

const ParseCase kCases[] = {
    // ---- TCP: only a SYN without ACK is an attempt (a few flag combinations;
    // probe_test.cpp has them all).
    {"Ipv4Syn", [] { return v4(); }, XDP_PASS, syn_reported(), kFlow4},
    {"Ipv4SynAsLinuxSendsIt",
     [] {
         Packet p = v4();
         p.ipv4->dont_fragment = true; // DF is not a fragment offset
         p.tcp->options = linux_syn_options();
         return p;
     },
     XDP_PASS, syn_reported(), kFlow4},
    {"Ipv4SynWithEcnSetup", [] { return v4(kSyn | kEce | kCwr); }, XDP_PASS, syn_reported(),
     kFlow4},
    {"Ipv4SynAck", [] { return v4(kSyn | kAck); }, XDP_PASS, verdict(CW_STAT_PASS_TCP_OTHER), {}},
    {"Ipv4Ack", [] { return v4(kAck); }, XDP_PASS, verdict(CW_STAT_PASS_TCP_OTHER), {}},
    {"Ipv4Rst", [] { return v4(kRst); }, XDP_PASS, verdict(CW_STAT_PASS_TCP_OTHER), {}},
    {"Ipv4RstAck", [] { return v4(kRst | kAck); }, XDP_PASS, verdict(CW_STAT_PASS_TCP_OTHER), {}},
    {"Ipv4FinAck", [] { return v4(kFin | kAck); }, XDP_PASS, verdict(CW_STAT_PASS_TCP_OTHER), {}},
    {"Ipv4Data",
     [] {
         Packet p = v4(kPsh | kAck);
         p.tcp->payload = Bytes(100, 'x');
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_TCP_OTHER), {}},
    // Every other combination of flags, stealth probes included: probe_test.cpp.

    // ---- not IP at all: passed untouched.
    {"Arp",
     [] {
         Packet p;
         p.arp = Arp{};
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_NON_IP), {}},
    {"Lldp",
     [] {
         Packet p;
         p.ethertype_override = kEthLldp;
         p.raw_payload = {0x02, 0x07, 0x04, 0x02, 0, 0, 0, 0, 1, 0x04, 0x03, 0x05, 'e', '0'};
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_NON_IP), {}},
    {"VlanTaggedArp",
     [] {
         Packet p;
         p.arp = Arp{};
         p.vlan(kEthVlan, 10);
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_NON_IP), {}},
    // The parser follows two tags (QinQ); a third is not looked into.
    {"ThreeVlanTags",
     [] {
         Packet p = v4();
         p.vlan(kEthQinQ, 1).vlan(kEthVlan, 2).vlan(kEthVlan, 3);
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_NON_IP), {}},

    // ---- IP, not TCP.
    {"Ipv4Udp",
     [] {
         Packet p;
         p.ipv4 = Ipv4{};
         p.udp = Udp{};
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_NON_TCP), {}},
    {"Ipv4Icmp",
     [] {
         Packet p;
         p.ipv4 = Ipv4{};
         p.icmp = Icmp{};
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_NON_TCP), {}},
    {"Ipv6Udp",
     [] {
         Packet p;
         p.ipv6 = Ipv6{};
         p.udp = Udp{};
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_NON_TCP), {}},
    {"Ipv6Icmpv6",
     [] {
         Packet p;
         p.ipv6 = Ipv6{};
         p.icmp = Icmp{};
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_NON_TCP), {}},
    {"Ipv6HopByHopThenUdp",
     [] {
         Packet p;
         p.ipv6 = Ipv6{.ext = {hop_by_hop()}};
         p.udp = Udp{};
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_NON_TCP), {}},
    {"Ipv6NoNextHeader",
     [] {
         Packet p;
         p.ipv6 = Ipv6{};
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_NON_TCP), {}},

    // ---- VLAN tags in front of IP.
    {"Ipv4Vlan",
     [] {
         Packet p = v4();
         p.vlan(kEthVlan, 42);
         return p;
     },
     XDP_PASS, syn_reported(), kFlow4},
    {"Ipv4ServiceTagOnly",
     [] {
         Packet p = v4();
         p.vlan(kEthQinQ, 42);
         return p;
     },
     XDP_PASS, syn_reported(), kFlow4},
    {"Ipv4QinQ",
     [] {
         Packet p = v4();
         p.vlan(kEthQinQ, 100).vlan(kEthVlan, 200);
         return p;
     },
     XDP_PASS, syn_reported(), kFlow4},
    {"Ipv6QinQ",
     [] {
         Packet p = v6();
         p.vlan(kEthQinQ, 100).vlan(kEthVlan, 200);
         return p;
     },
     XDP_PASS, syn_reported(), kFlow6},

    // ---- IPv6 and its extension headers.
    {"Ipv6Syn", [] { return v6(); }, XDP_PASS, syn_reported(), kFlow6},
    {"Ipv6SynAck", [] { return v6(kSyn | kAck); }, XDP_PASS, verdict(CW_STAT_PASS_TCP_OTHER), {}},
    {"Ipv6HopByHopDestOptsRouting",
     [] { return v6(kSyn, {hop_by_hop(), dest_options(16), routing()}); }, XDP_PASS,
     syn_reported(), kFlow6},
    {"Ipv6AuthHeader", [] { return v6(kSyn, {auth_header(24)}); }, XDP_PASS, syn_reported(),
     kFlow6},
    {"Ipv6FirstFragment", [] { return v6(kSyn, {fragment(0, true)}); }, XDP_PASS,
     syn_reported(), kFlow6},
    {"Ipv6NonFirstFragment", [] { return v6(kSyn, {fragment(185, true)}); }, XDP_PASS,
     verdict(CW_STAT_PASS_FRAGMENT), {}},
    {"Ipv6LastFragment", [] { return v6(kSyn, {hop_by_hop(), fragment(1, false)}); }, XDP_PASS,
     verdict(CW_STAT_PASS_FRAGMENT), {}},
    // CW_MAX_EXT_HDRS (6) is the most the program walks ...
    {"Ipv6SixExtensionHeaders",
     [] {
         return v6(kSyn, {hop_by_hop(), dest_options(), routing(), fragment(0, false),
                          auth_header(16), dest_options()});
     },
     XDP_PASS, syn_reported(), kFlow6},
    // ... and one more hides the TCP header: dropped by default
    // (drop-tiny-fragments; fragment_test.cpp has both settings).
    {"Ipv6SevenExtensionHeaders",
     [] {
         return v6(kSyn, {hop_by_hop(), dest_options(), routing(), fragment(0, false),
                          auth_header(16), dest_options(), dest_options()});
     },
     XDP_DROP, verdict(CW_STAT_DROP_TINY_FRAGMENT), {}},
    // ... but what follows six, when it is neither TCP nor a seventh extension
    // header, hides nothing: not TCP, passed (xdp_fuzz found both dropped).
    {"Ipv6SixExtensionHeadersThenUdp",
     [] {
         Packet p = v6(kSyn, {hop_by_hop(), dest_options(), routing(), fragment(0, false),
                              auth_header(16), dest_options()});
         p.tcp.reset();
         p.udp = Udp{};
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_NON_TCP), {}},
    {"Ipv6SixExtensionHeadersThenNoNextHeader",
     [] {
         Packet p = v6(kSyn, {hop_by_hop(), dest_options(), routing(), fragment(0, false),
                              auth_header(16), dest_options()});
         p.tcp.reset();
         p.ipv6->next_header = kProtoNone;
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_NON_TCP), {}},

    // ---- IPv4 fragments: only the first one carries the TCP header.
    {"Ipv4FirstFragment",
     [] {
         Packet p = v4();
         p.ipv4->more_fragments = true;
         return p;
     },
     XDP_PASS, syn_reported(), kFlow4},
    // The bytes after the IP header look like a SYN: a parser that ignored the
    // offset would report it.
    {"Ipv4NonFirstFragment",
     [] {
         Packet p = v4();
         p.ipv4->frag_offset = 185;
         p.ipv4->more_fragments = true;
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_FRAGMENT), {}},
    // (Offset 1 is RFC 1858's overlapping fragment: fragment_test.cpp.)
    {"Ipv4LastFragment",
     [] {
         Packet p = v4();
         p.ipv4->frag_offset = 3;
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_FRAGMENT), {}},

    // ---- malformed headers: passed, counted, never reported.
    // IHL 4 puts "TCP" 16 bytes into the IP header: the destination address as
    // the ports, then the real TCP header shifted by 4. The ack number is
    // chosen so that the shifted bytes read as data offset 5 + SYN: a parser
    // that trusted IHL 4 would report a connection attempt.
    {"Ipv4IhlFour",
     [] {
         Packet p = v4(kAck);
         p.ipv4->ihl = 4;
         p.tcp->ack = 0x50020000;
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_UNPARSED), {}},
    {"Ipv4IhlZero",
     [] {
         Packet p = v4();
         p.ipv4->ihl = 0;
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_UNPARSED), {}},
    // IHL 15 says 60 bytes of header; the frame has 20 + a 20-byte TCP header.
    {"Ipv4IhlBeyondTheFrame",
     [] {
         Packet p = v4();
         p.ipv4->ihl = 15;
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_UNPARSED), {}},
    {"Ipv6InsideIpv4EtherType",
     [] {
         Packet p = v4();
         p.ipv4->version = 6;
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_UNPARSED), {}},
    {"Ipv4InsideIpv6EtherType",
     [] {
         Packet p = v6();
         p.ipv6->version = 4;
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_UNPARSED), {}},
    {"TcpDataOffsetFour",
     [] {
         Packet p = v4();
         p.tcp->doff = 4;
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_UNPARSED), {}},
    {"TcpDataOffsetZero",
     [] {
         Packet p = v6();
         p.tcp->doff = 0;
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_UNPARSED), {}},
    // Data offset 15 claims 40 bytes of options the frame does not have: a
    // truncated header, which the kernel's TCP would discard as well.
    {"TcpDataOffsetBeyondTheFrame",
     [] {
         Packet p = v4();
         p.tcp->doff = 15;
         return p;
     },
     XDP_PASS, verdict(CW_STAT_PASS_UNPARSED), {}},
};

class Parse : public XdpTest, public ::testing::WithParamInterface<ParseCase> {};

TEST_P(Parse, VerdictCountersAndEvents)
{
    const ParseCase& c = GetParam();
    Bytes frame = c.packet().build();
    RunResult r = run(frame);
    EXPECT_EQ(r.action, c.action);
    EXPECT_EQ(r.delta, c.delta);
    // connwatch only ever reads or drops a frame, never rewrites it.
    EXPECT_EQ(r.out, frame);
    if (c.conn) {
        expect_new_conn(r, c.conn->src, c.conn->dst, c.conn->sport, c.conn->dport);
    } else {
        EXPECT_TRUE(r.events.empty()) << describe(r.events);
    }
}

INSTANTIATE_TEST_SUITE_P(Frames, Parse, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

// IPv4 options of every length: the TCP header is found after IHL * 4 bytes,
// whatever the options are. Ports differ in each round, so each SYN is a new
// attempt (not a retransmission) to the same port (not a scan).
TEST_F(XdpTest, Ipv4OptionsOfEveryLengthAreSkipped)
{
    for (uint8_t ihl = 6; ihl <= 15; ihl++) {
        SCOPED_TRACE("IHL " + std::to_string(ihl));
        Packet p = tcp4(kSrc4, static_cast<uint16_t>(41000 + ihl), 8080);
        // NOPs, ending in a router alert when there is room: real options, not
        // just padding.
        Bytes opts(static_cast<size_t>(ihl - 5) * 4, 1);
        if (opts.size() >= 4)
            std::copy_n(Bytes{0x94, 0x04, 0, 0}.begin(), 4, opts.end() - 4);
        p.ipv4->options = opts;
        Bytes frame = p.build();
        ASSERT_EQ(frame[14], 0x40 | ihl);
        RunResult r = run(frame);
        EXPECT_EQ(r.action, XDP_PASS);
        EXPECT_EQ(r.delta, syn_reported());
        expect_new_conn(r, kSrc4, kDst4, static_cast<uint16_t>(41000 + ihl), 8080);
    }
}

} // namespace
} // namespace connwatch::test
