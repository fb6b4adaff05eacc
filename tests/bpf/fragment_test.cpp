// SPDX-License-Identifier: GPL-2.0-only
// Fragments and header chains that hide the TCP header (drop-tiny-fragments,
// docs/PROBES.md): an IPv4 or IPv6 first fragment with less than the 20-byte TCP
// header (nmap -f sends 8 bytes, --mtu 16 sends 16), an IPv4 TCP fragment at
// offset 1 (RFC 1858's overlap), an IPv6 TCP header beyond the extension headers
// walked or beyond the first fragment. Each is dropped (the default) or passed
// (drop-tiny-fragments = false), and where its destination port shows, counted
// as a probe of that port either way, so a fragmented scan is detected and
// blocked. Config otherwise connwatchd's defaults: window 60 s, threshold 3.
#include "xdp_fixture.h"

namespace connwatch::test {
namespace {

constexpr const char* kSrc4 = "192.0.2.10";
constexpr const char* kSrc6 = "2001:db8:1::10";
constexpr size_t kEth = 14;

// The TCP header (and payload) of a segment, as a real stack would build it:
// the bytes that fragmentation then cuts. Checksummed for the given family.
Bytes tcp_bytes(const std::string& src, uint16_t sport, uint16_t dport, uint8_t flags,
                Bytes options = {})
{
    Packet p = tcp_from(src, sport, dport, flags);
    p.tcp->options = std::move(options);
    Bytes whole = p.build();
    size_t ip_len = src.find(':') == std::string::npos ? 20 : 40;
    return Bytes(whole.begin() + static_cast<std::ptrdiff_t>(kEth + ip_len), whole.end());
}

Bytes head(const Bytes& b, size_t n)
{
    return Bytes(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(std::min(n, b.size())));
}

// An IPv4 fragment of a TCP segment: `payload` at `offset` 8-byte units, with
// MF as `more` says.
Packet frag4(const std::string& src, Bytes payload, uint16_t offset, bool more)
{
    Packet p;
    p.ipv4 = Ipv4{};
    p.ipv4->src = src;
    p.ipv4->protocol = kProtoTcp;
    p.ipv4->frag_offset = offset;
    p.ipv4->more_fragments = more;
    p.raw_payload = std::move(payload);
    return p;
}

// An IPv6 first fragment (offset 0, M set) of a TCP segment, after `before`
// (extension headers ahead of the fragment header).
Packet frag6(const std::string& src, Bytes payload, std::vector<Ipv6Ext> before = {})
{
    Packet p;
    p.ipv6 = Ipv6{};
    p.ipv6->src = src;
    p.ipv6->ext = std::move(before);
    p.ipv6->ext.push_back(fragment(0, true));
    p.ipv6->next_header = kProtoTcp;
    p.raw_payload = std::move(payload);
    return p;
}

class Fragments : public XdpTest {
protected:
    void set_drop(bool on)
    {
        cw_config c = default_config();
        c.drop_tiny_frags = on ? 1 : 0;
        prog_->set_config(c);
        drop_ = on;
    }
    // The verdict a hiding packet gets under the current setting.
    cw_stat hidden() const
    {
        return drop_ ? CW_STAT_DROP_TINY_FRAGMENT : CW_STAT_PASS_TINY_FRAGMENT;
    }
    int hidden_action() const { return drop_ ? XDP_DROP : XDP_PASS; }

    // A hiding packet that shows a port: its verdict, counted as a probe,
    // reported as one probe event of that port, marked tiny.
    void expect_tiny_probe(const RunResult& r, const std::string& src, uint16_t sport,
                           uint16_t dport, uint8_t flags)
    {
        EXPECT_EQ(r.action, hidden_action());
        EXPECT_EQ(r.delta, StatDelta({{hidden(), 1}, {CW_STAT_PROBE, 1}}));
        ASSERT_EQ(r.events.size(), 1u) << describe(r.events);
        const cw_event& e = r.events[0];
        SCOPED_TRACE(describe(e));
        EXPECT_EQ(e.type, CW_EV_PROBE);
        EXPECT_EQ(e.tiny_fragment, 1);
        EXPECT_EQ(Address(e.saddr), addr(src));
        EXPECT_EQ(e.sport, sport);
        EXPECT_EQ(e.dport, dport);
        EXPECT_EQ(e.tcp_flags, flags);
    }
    // A hiding packet that shows no port (or shows ACK/RST): its verdict, nothing else.
    void expect_hidden_only(const RunResult& r)
    {
        EXPECT_EQ(r.action, hidden_action());
        EXPECT_EQ(r.delta, verdict(hidden()));
        EXPECT_TRUE(r.events.empty()) << describe(r.events);
    }

    bool drop_ = true;
};

// Both settings: the same packets, the same counting, only the verdict differs.
class EachSetting : public Fragments, public ::testing::WithParamInterface<bool> {
protected:
    void SetUp() override
    {
        Fragments::SetUp();
        if (!IsSkipped())
            set_drop(GetParam());
    }
};

TEST_F(Fragments, DropIsTheDefault)
{
    EXPECT_EQ(default_config().drop_tiny_frags, 1u);
    EXPECT_EQ(prog_->config().drop_tiny_frags, 1u);
}

// nmap -f: 8 bytes of TCP in the first fragment, the ports and the sequence
// number; the flags come at offset 1.
TEST_P(EachSetting, Ipv4EightByteFirstFragmentIsAProbeOfItsPort)
{
    Bytes seg = tcp_bytes(kSrc4, 40000, 22, kSyn);
    expect_tiny_probe(run(frag4(kSrc4, head(seg, 8), 0, true)), kSrc4, 40000, 22, 0);
    // Its second fragment, at offset 1, carries the flags: no port shows.
    expect_hidden_only(run(frag4(kSrc4, Bytes(seg.begin() + 8, seg.end()), 1, false)));
}

// nmap --mtu 16: the flags (byte 13) are there, the window and checksum too,
// but not the urgent pointer and the options.
TEST_P(EachSetting, Ipv4SixteenByteFirstFragmentShowsItsFlags)
{
    Bytes seg = tcp_bytes(kSrc4, 40001, 443, kSyn, {2, 4, 0x05, 0xb4});
    expect_tiny_probe(run(frag4(kSrc4, head(seg, 16), 0, true)), kSrc4, 40001, 443, kSyn);
}

// The flags show ACK (or a reset): that is what the whole segment says, since
// Linux discards overlapping fragments. Not a probe; still its verdict.
TEST_P(EachSetting, TinyFirstFragmentShowingAckOrRstIsNoProbe)
{
    for (uint8_t flags : {uint8_t(kAck), uint8_t(kAck | kPsh), uint8_t(kRst)}) {
        SCOPED_TRACE(unsigned(flags));
        Bytes seg = tcp_bytes(kSrc4, 40002, 80, flags);
        expect_hidden_only(run(frag4(kSrc4, head(seg, 16), 0, true)));
    }
}

TEST_P(EachSetting, TinyFirstFragmentWithoutItsPortsCountsNothing)
{
    Bytes seg = tcp_bytes(kSrc4, 40003, 80, kSyn);
    for (size_t n : {0, 1, 3}) {
        SCOPED_TRACE(n);
        expect_hidden_only(run(frag4(kSrc4, head(seg, n), 0, true)));
    }
    expect_hidden_only(run(frag6(kSrc6, head(tcp_bytes(kSrc6, 40003, 80, kSyn), 3))));
}

// The fragment's own length decides, not the frame's: Ethernet pads a 42-byte
// frame to 60 bytes with zeros, which would read as a whole (if odd) header.
TEST_P(EachSetting, EthernetPaddingIsNotTcpHeader)
{
    Packet p = frag4(kSrc4, head(tcp_bytes(kSrc4, 40004, 25, kSyn), 8), 0, true);
    p.pad_to = 60;
    ASSERT_EQ(p.build().size(), 60u);
    expect_tiny_probe(run(p), kSrc4, 40004, 25, 0);
}

// RFC 1858 3.2 / RFC 3128: any TCP fragment at offset 1 is dropped; at offset 2
// and beyond it lies past the flags of every header; other protocols are not
// judged.
TEST_P(EachSetting, Ipv4OffsetOneOnlyForTcp)
{
    Bytes seg = tcp_bytes(kSrc4, 40005, 80, kSyn);
    expect_hidden_only(run(frag4(kSrc4, Bytes(seg.begin() + 8, seg.end()), 1, true)));
    RunResult r = run(frag4(kSrc4, Bytes(seg.begin() + 16, seg.end()), 2, false));
    EXPECT_EQ(r.action, XDP_PASS);
    EXPECT_EQ(r.delta, verdict(CW_STAT_PASS_FRAGMENT));
    Packet udp = frag4(kSrc4, Bytes(16, 0), 1, false);
    udp.ipv4->protocol = kProtoUdp;
    r = run(udp);
    EXPECT_EQ(r.action, XDP_PASS);
    EXPECT_EQ(r.delta, verdict(CW_STAT_PASS_FRAGMENT));
    EXPECT_TRUE(r.events.empty());
}

// A fragment header after the first one (offset 0, M clear: an "atomic"
// fragment) does not make the datagram whole: its TCP header is still cut at
// 8 bytes (xdp_fuzz found it passed as unparsed, unseen).
TEST_P(EachSetting, Ipv6FirstFragmentStaysFirstBehindAnAtomicFragmentHeader)
{
    Bytes seg = tcp_bytes(kSrc6, 40010, 22, kSyn);
    Packet p = frag6(kSrc6, head(seg, 8));
    p.ipv6->ext.push_back(fragment(0, false));
    expect_tiny_probe(run(p), kSrc6, 40010, 22, 0);
}

TEST_P(EachSetting, Ipv6EightByteFirstFragmentIsAProbeOfItsPort)
{
    Bytes seg = tcp_bytes(kSrc6, 40006, 22, kSyn);
    expect_tiny_probe(run(frag6(kSrc6, head(seg, 8))), kSrc6, 40006, 22, 0);
    // Behind two more extension headers, 19 bytes: the flags show.
    seg = tcp_bytes(kSrc6, 40007, 22, kSyn);
    expect_tiny_probe(run(frag6(kSrc6, head(seg, 19), {hop_by_hop(), dest_options()})), kSrc6,
                      40007, 22, kSyn);
}

// RFC 7112: the whole chain belongs in the first fragment. Here a destination
// options header of 16 bytes starts in it and ends past it.
TEST_P(EachSetting, Ipv6ChainEndingPastTheFirstFragment)
{
    Packet p = frag6(kSrc6, {kProtoTcp, 1, 0, 0, 0, 0, 0, 0});
    p.ipv6->next_header = kProtoDstOpts;
    expect_hidden_only(run(p));
}

// CW_MAX_EXT_HDRS (6) is the most the program walks; a TCP header behind a
// seventh is hidden, fragmented or not.
TEST_P(EachSetting, Ipv6TcpBeyondTheHeadersWalked)
{
    static_assert(CW_MAX_EXT_HDRS == 6);
    Packet p = tcp6(kSrc6, 40007, 80, kSyn);
    p.ipv6->ext = {hop_by_hop(), dest_options(), routing(), fragment(0, false), auth_header(16),
                   dest_options(), dest_options()};
    expect_hidden_only(run(p));
    // ... and with the seventh an ACK of established traffic looks no different.
    p.tcp->flags = kAck;
    expect_hidden_only(run(p));
}

// A first fragment that holds the whole 20-byte header but not its options is
// an ordinary segment: the options follow in the next fragment.
TEST_P(EachSetting, FirstFragmentWithTheWholeHeaderIsOrdinary)
{
    Bytes seg = tcp_bytes(kSrc4, 40008, 80, kSyn, linux_syn_options());
    ASSERT_EQ(seg.size(), 40u);
    RunResult r = run(frag4(kSrc4, head(seg, 24), 0, true));
    expect_attempt_only(r);
    expect_new_conn(r, kSrc4, kDst4, 40008, 80);
    Bytes seg6 = tcp_bytes(kSrc6, 40008, 80, kSyn, linux_syn_options());
    expect_attempt_only(run(frag6(kSrc6, head(seg6, 32))));
    // With ACK: established traffic, the fast path.
    r = run(frag4(kSrc4, head(tcp_bytes(kSrc4, 40009, 80, kAck, linux_syn_options()), 24), 0,
                  true));
    EXPECT_EQ(r.delta, verdict(CW_STAT_PASS_TCP_OTHER));
}

// nmap retransmits an unanswered probe: the same 4-tuple is one probe.
TEST_P(EachSetting, RetransmittedTinyFragmentIsOneProbe)
{
    Packet p = frag4(kSrc4, head(tcp_bytes(kSrc4, 40010, 22, kSyn), 8), 0, true);
    expect_tiny_probe(run(p), kSrc4, 40010, 22, 0);
    advance(1 * kSec);
    RunResult r = run(p);
    EXPECT_EQ(r.action, hidden_action());
    EXPECT_EQ(r.delta, StatDelta({{hidden(), 1}, {CW_STAT_PROBE_RETRANSMIT, 1}}));
    EXPECT_TRUE(r.events.empty()) << describe(r.events);
}

// The point of it all: a scan made of tiny fragments is a scan, reported and
// blocked like any other, IPv4 and IPv6; and a SYN to a port the fragments
// already counted adds nothing.
TEST_P(EachSetting, AFragmentedScanIsDetectedAndBlocked)
{
    for (const char* src : {kScanner, "2001:db8:66::1"}) {
        SCOPED_TRACE(src);
        auto frag = [&](uint16_t dport) {
            Bytes seg = tcp_bytes(src, 50000, dport, kSyn);
            return std::string(src).find(':') == std::string::npos
                       ? frag4(src, head(seg, 8), 0, true)
                       : frag6(src, head(seg, 8));
        };
        for (uint16_t port : {21, 22, 23})
            expect_tiny_probe(run(frag(port)), src, 50000, port, 0);
        RunResult r = run(frag(25));
        EXPECT_EQ(r.action, hidden_action());
        EXPECT_EQ(r.delta, StatDelta({{hidden(), 1},
                                      {CW_STAT_PROBE, 1},
                                      {CW_STAT_SCAN, 1},
                                      {CW_STAT_BLOCK_ADDED, 1}}));
        auto scans = events_of(r, CW_EV_SCAN);
        ASSERT_EQ(scans.size(), 1u) << describe(r.events);
        EXPECT_EQ(scans[0].action, CW_ACT_BLOCKED);
        EXPECT_EQ(ports_of(scans[0]), (std::set<uint16_t>{21, 22, 23, 25}));
        EXPECT_EQ(scans[0].tiny_fragment, 1);
        // Blocked: the next fragment, and any packet, is dropped by the block.
        r = run(frag(26));
        EXPECT_EQ(r.action, XDP_DROP);
        EXPECT_EQ(r.delta, verdict(CW_STAT_DROP_BLOCKED));
        EXPECT_EQ(syn(src, 80).action, XDP_DROP);
    }
}

INSTANTIATE_TEST_SUITE_P(DropTinyFragments, EachSetting, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "On" : "Off"; });

} // namespace
} // namespace connwatch::test
