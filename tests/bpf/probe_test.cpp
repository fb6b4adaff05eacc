// SPDX-License-Identifier: GPL-2.0-only
// Stealth probes (nmap -sF/-sN/-sX and their relatives): TCP segments without
// ACK that no real stack sends to a port it has no connection with. Each flag
// combination is either a connection attempt, a probe or neither; probes count
// as ports in the same scan state as SYNs, are reported as CW_EV_PROBE (never
// as a new connection), and a scan made of them is reported and blocked like a
// SYN scan. Config throughout: window 60 s, threshold 3, block 3600 s, dedup 5 s.
#include "xdp_fixture.h"

namespace connwatch::test {
namespace {

enum class Kind { Attempt, Probe, Other };

struct FlagCase {
    const char* name;
    uint8_t flags;
    Kind kind;
    friend void PrintTo(const FlagCase& c, std::ostream* os) { *os << c.name; }
};

// Why each row is what it is: the comment above tcp_kind() in
// bpf/connwatch.bpf.c, and docs/PROBES.md.
const FlagCase kFlagCases[] = {
    // What a real stack sends without ACK: a SYN, opening a connection ...
    {"Syn", kSyn, Kind::Attempt},
    {"SynEcnSetup", kSyn | kEce | kCwr, Kind::Attempt},
    {"SynPsh", kSyn | kPsh, Kind::Attempt}, // Linux accepts it as a connection request
    {"SynUrg", kSyn | kUrg, Kind::Attempt},
    // ... and an RST for a segment of a connection it does not know.
    {"Rst", kRst, Kind::Other},
    {"RstPsh", kRst | kPsh, Kind::Other},
    {"RstFin", kRst | kFin, Kind::Other}, // no stack answers an RST: it maps nothing
    // ACK set: traffic of a connection, or -sA/-sW/-sM, which look just like it.
    {"Ack", kAck, Kind::Other},
    {"PshAck", kPsh | kAck, Kind::Other},
    {"FinAck", kFin | kAck, Kind::Other},       // nmap -sM (Maimon)
    {"FinPshAck", kFin | kPsh | kAck, Kind::Other},
    {"RstAck", kRst | kAck, Kind::Other},
    {"SynAck", kSyn | kAck, Kind::Other},
    {"SynFinAck", kSyn | kFin | kAck, Kind::Other},
    {"UrgAck", kUrg | kAck, Kind::Other},
    {"AllFlags", 0xff, Kind::Other},
    // Probes: no SYN, RST or ACK ...
    {"Null", 0, Kind::Probe},                       // nmap -sN
    {"Fin", kFin, Kind::Probe},                     // nmap -sF
    {"Xmas", kFin | kPsh | kUrg, Kind::Probe},      // nmap -sX
    {"FinPsh", kFin | kPsh, Kind::Probe},
    {"FinUrg", kFin | kUrg, Kind::Probe},
    {"Psh", kPsh, Kind::Probe},
    {"Urg", kUrg, Kind::Probe},
    {"EceCwr", kEce | kCwr, Kind::Probe},
    {"FinEce", kFin | kEce, Kind::Probe},
    // ... and a SYN that also closes or aborts.
    {"SynFin", kSyn | kFin, Kind::Probe},
    {"SynRst", kSyn | kRst, Kind::Probe},
    {"SynFinRst", kSyn | kFin | kRst, Kind::Probe},
    {"SynFinPshUrg", kSyn | kFin | kPsh | kUrg, Kind::Probe},
};

StatDelta probe_counted()
{
    return {{CW_STAT_PASS_PROBE, 1}, {CW_STAT_PROBE, 1}};
}

StatDelta expected_delta(Kind k)
{
    switch (k) {
    case Kind::Attempt: return syn_reported();
    case Kind::Probe: return probe_counted();
    case Kind::Other: break;
    }
    return verdict(CW_STAT_PASS_TCP_OTHER);
}

class Flags : public XdpTest, public ::testing::WithParamInterface<FlagCase> {};

TEST_P(Flags, AttemptProbeOrNeither)
{
    const FlagCase& c = GetParam();
    for (const char* src : {"192.0.2.10", "2001:db8:1::10"}) {
        SCOPED_TRACE(src);
        Bytes frame = tcp_from(src, 40000, 80, c.flags).build();
        RunResult r = run(frame);
        EXPECT_EQ(r.action, XDP_PASS);
        EXPECT_EQ(r.delta, expected_delta(c.kind));
        EXPECT_EQ(r.out, frame);
        if (c.kind == Kind::Other) {
            EXPECT_TRUE(r.events.empty()) << describe(r.events);
            continue;
        }
        ASSERT_EQ(r.events.size(), 1u) << describe(r.events);
        const cw_event& e = r.events[0];
        SCOPED_TRACE(describe(e));
        EXPECT_EQ(e.type, c.kind == Kind::Probe ? CW_EV_PROBE : CW_EV_NEW_CONN);
        EXPECT_EQ(Address(e.saddr), addr(src));
        EXPECT_EQ(Address(e.daddr), addr(dst_for(src)));
        EXPECT_EQ(e.sport, 40000);
        EXPECT_EQ(e.dport, 80);
        EXPECT_EQ(e.tcp_flags, c.flags);
        EXPECT_EQ(e.ifindex, static_cast<uint32_t>(lo_ifindex_));
        EXPECT_EQ(e.ts_ns, now());
        EXPECT_EQ(e.nports, 0);
        EXPECT_EQ(e.action, 0);
    }
}

INSTANTIATE_TEST_SUITE_P(Tcp, Flags, ::testing::ValuesIn(kFlagCases),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- scans made of probes ------------------------------------------------------

class Probe : public XdpTest {
protected:
    // A probe that is counted and nothing more.
    void expect_probe_only(const RunResult& r)
    {
        EXPECT_EQ(r.action, XDP_PASS);
        EXPECT_EQ(r.delta, probe_counted());
        ASSERT_EQ(r.events.size(), 1u) << describe(r.events);
        EXPECT_EQ(r.events[0].type, CW_EV_PROBE);
    }
    // The segment that completes a scan: its own event first, then the scan.
    cw_event expect_scan(const RunResult& r, const StatDelta& delta, cw_event_type first)
    {
        EXPECT_EQ(r.action, XDP_PASS);
        EXPECT_EQ(r.delta, delta);
        if (r.events.size() != 2) {
            ADD_FAILURE() << "expected " << first << " and a scan: " << describe(r.events);
            return {};
        }
        EXPECT_EQ(r.events[0].type, first);
        EXPECT_EQ(r.events[1].type, CW_EV_SCAN);
        return r.events[1];
    }
    void expect_dropped(const RunResult& r)
    {
        EXPECT_EQ(r.action, XDP_DROP);
        EXPECT_EQ(r.delta, verdict(CW_STAT_DROP_BLOCKED));
        EXPECT_TRUE(r.events.empty()) << describe(r.events);
    }
};

StatDelta probe_scan(cw_stat outcome)
{
    return {{CW_STAT_PASS_PROBE, 1}, {CW_STAT_PROBE, 1}, {CW_STAT_SCAN, 1}, {outcome, 1}};
}

TEST_F(Probe, FinScanOfFourPortsIsBlockedAtTheFourth)
{
    for (uint16_t port : {22, 80, 443}) {
        SCOPED_TRACE(port);
        expect_probe_only(tcp(kScanner, port, kFin));
        advance(kSec);
    }
    RunResult r = run(tcp_from(kScanner, 51234, 8080, kFin));
    cw_event scan = expect_scan(r, probe_scan(CW_STAT_BLOCK_ADDED), CW_EV_PROBE);
    SCOPED_TRACE(describe(scan));
    EXPECT_EQ(Address(scan.saddr), addr(kScanner));
    EXPECT_EQ(Address(scan.daddr), addr(kDst4));
    EXPECT_EQ(scan.sport, 51234);
    EXPECT_EQ(scan.dport, 8080);
    EXPECT_EQ(scan.tcp_flags, kFin); // what completed it
    EXPECT_EQ(scan.action, CW_ACT_BLOCKED);
    EXPECT_EQ(scan.expires_ns, now() + 3600 * kSec);
    EXPECT_EQ(ports_of(scan), (std::set<uint16_t>{22, 80, 443, 8080}));
    auto blocks = prog_->block_list();
    ASSERT_EQ(blocks.size(), 1u);
    EXPECT_EQ(blocks[0].first, addr(kScanner));
    EXPECT_EQ(blocks[0].second.origin, CW_ORIGIN_SCAN);

    // From the next packet on, probes and everything else are dropped.
    advance(kMs);
    expect_dropped(tcp(kScanner, 9999, kFin));
    expect_dropped(tcp(kScanner, 22, kAck));
    expect_dropped(syn(kScanner, 22));
}

TEST_F(Probe, SynAndProbePortsCountTogether)
{
    expect_attempt_only(syn(kScanner, 22));
    expect_probe_only(tcp(kScanner, 80, 0));                  // NULL
    expect_probe_only(tcp(kScanner, 443, kFin | kPsh | kUrg)); // Xmas
    // A SYN completes it as well as a probe would: ports are ports.
    cw_event scan = expect_scan(syn(kScanner, 8080),
                                {{CW_STAT_PASS_SYN, 1}, {CW_STAT_SYN, 1}, {CW_STAT_SCAN, 1},
                                 {CW_STAT_BLOCK_ADDED, 1}},
                                CW_EV_NEW_CONN);
    EXPECT_EQ(ports_of(scan), (std::set<uint16_t>{22, 80, 443, 8080}));
    EXPECT_EQ(scan.tcp_flags, kSyn);
}

TEST_F(Probe, ProbeAndSynToTheSamePortAreOnePort)
{
    for (uint16_t port : {22, 80, 443}) {
        expect_attempt_only(syn(kScanner, port));
        expect_probe_only(tcp(kScanner, port, kFin));
        expect_probe_only(tcp(kScanner, port, kSyn | kFin));
    }
    EXPECT_TRUE(prog_->block_list().empty());
}

TEST_F(Probe, Ipv6XmasScanIsBlocked)
{
    const std::string scanner = "2001:db8:bad::66";
    const uint8_t xmas = kFin | kPsh | kUrg;
    for (uint16_t port : {22, 80, 443})
        expect_probe_only(tcp(scanner, port, xmas));
    cw_event scan =
        expect_scan(tcp(scanner, 8443, xmas), probe_scan(CW_STAT_BLOCK_ADDED), CW_EV_PROBE);
    EXPECT_EQ(Address(scan.saddr), addr(scanner));
    EXPECT_EQ(Address(scan.daddr), addr(kDst6));
    EXPECT_EQ(scan.action, CW_ACT_BLOCKED);
    EXPECT_EQ(ports_of(scan), (std::set<uint16_t>{22, 80, 443, 8443}));
    expect_dropped(tcp(scanner, 3389, xmas));
}

TEST_F(Probe, MonitorOnlyReportsAProbeScanAndNeverBlocks)
{
    cw_config cfg = default_config();
    cfg.monitor_only = 1;
    prog_->set_config(cfg);
    for (uint16_t port : {22, 80, 443})
        expect_probe_only(tcp(kScanner, port, 0));
    cw_event scan =
        expect_scan(tcp(kScanner, 8080, 0), probe_scan(CW_STAT_BLOCK_MONITOR), CW_EV_PROBE);
    EXPECT_EQ(scan.action, CW_ACT_MONITOR_ONLY);
    EXPECT_EQ(scan.expires_ns, 0u);
    EXPECT_TRUE(prog_->block_list().empty());
    // Once per window, as for SYNs.
    for (uint16_t port = 9000; port < 9005; port++)
        expect_probe_only(tcp(kScanner, port, 0));
    EXPECT_TRUE(prog_->block_list().empty());
}

TEST_F(Probe, AllowlistedProbeScannerIsReportedNotBlocked)
{
    prog_->allow_add(Cidr(addr("192.0.2.0"), 24));
    for (uint16_t port : {22, 80, 443})
        expect_probe_only(tcp(kScanner, port, kSyn | kRst));
    cw_event scan = expect_scan(tcp(kScanner, 8080, kSyn | kRst),
                                probe_scan(CW_STAT_BLOCK_ALLOWED), CW_EV_PROBE);
    EXPECT_EQ(scan.action, CW_ACT_ALLOWLISTED);
    EXPECT_TRUE(prog_->block_list().empty());
    EXPECT_EQ(tcp(kScanner, 22, kAck).delta, verdict(CW_STAT_PASS_TCP_OTHER));
}

TEST_F(Probe, ResetsAndAckScansAreNoPorts)
{
    // Three real ports, then what -sA/-sW/-sM and a stream of RSTs send: none
    // of it is a port, so no scan.
    for (uint16_t port : {22, 80, 443})
        expect_attempt_only(syn(kScanner, port));
    for (uint16_t port = 1000; port < 1020; port++) {
        SCOPED_TRACE(port);
        for (uint8_t flags : {uint8_t(kAck), uint8_t(kFin | kAck), uint8_t(kRst),
                              uint8_t(kRst | kAck)}) {
            RunResult r = tcp(kScanner, port, flags);
            EXPECT_EQ(r.delta, verdict(CW_STAT_PASS_TCP_OTHER));
            EXPECT_TRUE(r.events.empty());
        }
    }
    EXPECT_TRUE(prog_->block_list().empty());
}

// ---- retransmitted probes ----------------------------------------------------------

TEST_F(Probe, RetransmittedProbeIsCountedOnce)
{
    Packet p = tcp_from(kScanner, 50000, 22, kFin);
    expect_probe_only(run(p));
    const StatDelta retransmit{{CW_STAT_PASS_PROBE, 1}, {CW_STAT_PROBE_RETRANSMIT, 1}};
    for (uint64_t gap : {1, 2, 4}) {
        SCOPED_TRACE(gap);
        advance(gap * kSec);
        RunResult r = run(p);
        EXPECT_EQ(r.action, XDP_PASS);
        EXPECT_EQ(r.delta, retransmit);
        EXPECT_TRUE(r.events.empty());
    }
    // The key is the 4-tuple, not the flags: a NULL after a FIN of the same
    // 4-tuple within dedup is not a new probe either.
    EXPECT_EQ(run(tcp_from(kScanner, 50000, 22, 0)).delta, retransmit);
    // Longer than dedup after the last one: reported again (the port is the
    // same, so it adds nothing to the scan state).
    advance(5 * kSec);
    expect_probe_only(run(p));
}

TEST_F(Probe, ProbesAndSynsOfOneFourTupleAreDeduplicatedApart)
{
    // A probe must not make a SYN of the same 4-tuple look like a
    // retransmission (it would go unreported), nor the other way round.
    Packet fin = tcp_from(kScanner, 50000, 22, kFin);
    Packet syn_pkt = tcp_from(kScanner, 50000, 22, kSyn);
    expect_probe_only(run(fin));
    expect_new_conn(run(syn_pkt), kScanner, kDst4, 50000, 22);
    advance(kSec);
    EXPECT_EQ(run(syn_pkt).delta, StatDelta({{CW_STAT_PASS_SYN, 1}, {CW_STAT_SYN_RETRANSMIT, 1}}));
    EXPECT_EQ(run(fin).delta,
              StatDelta({{CW_STAT_PASS_PROBE, 1}, {CW_STAT_PROBE_RETRANSMIT, 1}}));
}

TEST_F(Probe, RetransmittedProbesDoNotAddPorts)
{
    Packet p = tcp_from(kScanner, 50000, 22, 0);
    expect_probe_only(run(p));
    for (int i = 0; i < 3; i++) {
        advance(kSec);
        EXPECT_EQ(run(p).delta,
                  StatDelta({{CW_STAT_PASS_PROBE, 1}, {CW_STAT_PROBE_RETRANSMIT, 1}}));
    }
    expect_probe_only(tcp(kScanner, 23, 0));
    expect_probe_only(tcp(kScanner, 24, 0));
    EXPECT_TRUE(prog_->block_list().empty());
}

// ---- a full blocklist -------------------------------------------------------------

class ProbeSmallBlocklist : public Probe {
protected:
    LoadSettings load_settings() const override
    {
        LoadSettings s = Probe::load_settings();
        s.max_blocks = 2;
        return s;
    }
};

TEST_F(ProbeSmallBlocklist, ProbeScanIsReportedWhenTheBlocklistIsFull)
{
    cw_block manual{};
    manual.created_ns = now();
    manual.origin = CW_ORIGIN_MANUAL;
    ASSERT_TRUE(prog_->block_add(addr("10.0.0.1"), manual));
    ASSERT_TRUE(prog_->block_add(addr("10.0.0.2"), manual));
    for (uint16_t port : {22, 80, 443})
        expect_probe_only(tcp(kScanner, port, kFin));
    cw_event scan =
        expect_scan(tcp(kScanner, 8080, kFin), probe_scan(CW_STAT_BLOCK_FULL), CW_EV_PROBE);
    EXPECT_EQ(scan.action, CW_ACT_BLOCKLIST_FULL);
    EXPECT_EQ(prog_->block_list().size(), 2u);
    expect_probe_only(tcp(kScanner, 9000, kFin));
}

} // namespace
} // namespace connwatch::test
