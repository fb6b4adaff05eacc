// SPDX-License-Identifier: GPL-2.0-only
// Sources counted and blocked per prefix (ipv6-prefix, ipv4-prefix): an IPv6
// scanner owns a /64 and rotates addresses inside it. The scan state and the
// automatic block are keyed by the masked source; the drop path looks the
// masked source up after the exact lookup missed; a prefix holding an
// allowlisted or own address (allow_inside) stays per address; 0, 32 and 128
// mean per address, as before the fields existed.
// Config throughout: window 60 s, threshold 3, block 3600 s, dedup 5 s.
#include "blocks/block_table.h"
#include "blocks/kernel_maps.h"
#include "xdp_fixture.h"

namespace connwatch::test {
namespace {

class Prefix : public XdpTest {
protected:
    void prefixes(unsigned v4, unsigned v6)
    {
        cw_config c = default_config();
        c.ipv4_prefix = static_cast<uint8_t>(v4);
        c.ipv6_prefix = static_cast<uint8_t>(v6);
        prog_->set_config(c);
    }

    // SYNs from srcs[i] to ports[i]; all but the last must be attempts only;
    // returns the last run.
    RunResult rotate(const std::vector<std::string>& srcs, const std::vector<uint16_t>& ports)
    {
        RunResult r;
        for (size_t i = 0; i < srcs.size(); i++) {
            SCOPED_TRACE(srcs[i] + " port " + std::to_string(ports[i]));
            r = syn(srcs[i], ports[i]);
            if (i + 1 < srcs.size())
                expect_attempt_only(r);
        }
        return r;
    }

    void expect_dropped(const std::string& src, cw_stat reason)
    {
        SCOPED_TRACE(src);
        for (RunResult r : {syn(src, 22), tcp(src, 22, kAck)}) {
            EXPECT_EQ(r.action, XDP_DROP);
            EXPECT_EQ(r.delta, verdict(reason));
            EXPECT_TRUE(r.events.empty()) << describe(r.events);
        }
    }

    const cw_event* scan_of(const RunResult& r)
    {
        auto scans = events_of(r, CW_EV_SCAN);
        EXPECT_EQ(scans.size(), 1u) << describe(r.events);
        if (scans.size() != 1)
            return nullptr;
        last_scan_ = scans[0];
        return &last_scan_;
    }

    cw_event last_scan_{};
};

const std::vector<std::string> kRotating6 = {"2001:db8:1:2::a", "2001:db8:1:2::b",
                                             "2001:db8:1:2:ffff::c", "2001:db8:1:2:1:2:3:4"};
const std::vector<uint16_t> kPorts = {22, 80, 443, 8080};

const StatDelta kPrefixBlocked{{CW_STAT_PASS_SYN, 1},
                               {CW_STAT_SYN, 1},
                               {CW_STAT_SCAN, 1},
                               {CW_STAT_BLOCK_ADDED, 1},
                               {CW_STAT_BLOCK_PREFIX_ADDED, 1}};

TEST_F(Prefix, RotatingAddressesInOneSlash64AreOneScanAndOneBlock)
{
    prefixes(32, 64);
    RunResult r = rotate(kRotating6, kPorts);
    EXPECT_EQ(r.action, XDP_PASS); // the block applies from the next packet
    EXPECT_EQ(r.delta, kPrefixBlocked);
    const cw_event* scan = scan_of(r);
    ASSERT_NE(scan, nullptr);
    SCOPED_TRACE(describe(*scan));
    EXPECT_EQ(scan->action, CW_ACT_BLOCKED);
    EXPECT_EQ(scan->prefix_len, 64);
    EXPECT_EQ(scan->block_prefix_len, 64);
    EXPECT_EQ(Address(scan->saddr), addr(kRotating6.back())); // who completed it
    EXPECT_EQ(ports_of(*scan), (std::set<uint16_t>{22, 80, 443, 8080}));
    EXPECT_EQ(scan->expires_ns, now() + 3600 * kSec);

    // One entry, under the masked address, saying it is a /64.
    auto blocks = prog_->block_list();
    ASSERT_EQ(blocks.size(), 1u);
    EXPECT_EQ(blocks[0].first, addr("2001:db8:1:2::"));
    EXPECT_EQ(blocks[0].second.prefix_len, 64);
    EXPECT_EQ(blocks[0].second.origin, CW_ORIGIN_SCAN);

    // Every address of the /64 is dropped, those that never sent a thing too.
    for (const char* inside : {"2001:db8:1:2::a", "2001:db8:1:2::1", "2001:db8:1:2::",
                               "2001:db8:1:2:ffff:ffff:ffff:ffff"})
        expect_dropped(inside, CW_STAT_DROP_BLOCKED_PREFIX);
    // The neighbouring /64s are untouched.
    for (const char* outside : {"2001:db8:1:3::a", "2001:db8:1:1:ffff:ffff:ffff:ffff"}) {
        SCOPED_TRACE(outside);
        expect_attempt_only(syn(outside, 22));
    }
}

TEST_F(Prefix, AnotherSlash64CountsOnItsOwn)
{
    prefixes(32, 64);
    // Two ports from each of two /64s: four ports, but two sources of two.
    expect_attempt_only(syn("2001:db8:1:2::a", 22));
    expect_attempt_only(syn("2001:db8:1:3::a", 80));
    expect_attempt_only(syn("2001:db8:1:2::b", 443));
    expect_attempt_only(syn("2001:db8:1:3::b", 8080));
    EXPECT_TRUE(prog_->block_list().empty());
}

TEST_F(Prefix, PerAddressAt128AndAtZero)
{
    for (unsigned v6 : {128u, 0u}) {
        SCOPED_TRACE("ipv6_prefix " + std::to_string(v6));
        prefixes(32, v6);
        advance(120 * kSec); // a fresh window for each round
        std::vector<std::string> srcs;
        for (const auto& s : kRotating6)
            srcs.push_back(s + (v6 ? "" : "0")); // other addresses each round
        for (size_t i = 0; i < srcs.size(); i++)
            expect_attempt_only(syn(srcs[i], kPorts[i]));
        EXPECT_TRUE(prog_->block_list().empty());
        // One address, four ports: a scan and a block of that address alone.
        // (Its first port was 22.)
        RunResult r = rotate({srcs[0], srcs[0], srcs[0]}, {1, 2, 3});
        const cw_event* scan = scan_of(r);
        ASSERT_NE(scan, nullptr);
        EXPECT_EQ(scan->prefix_len, 0);
        EXPECT_EQ(scan->block_prefix_len, 0);
        EXPECT_EQ(r.delta, StatDelta({{CW_STAT_PASS_SYN, 1},
                                      {CW_STAT_SYN, 1},
                                      {CW_STAT_SCAN, 1},
                                      {CW_STAT_BLOCK_ADDED, 1}}));
        auto blocks = prog_->block_list();
        ASSERT_EQ(blocks.size(), 1u);
        EXPECT_EQ(blocks[0].first, addr(srcs[0]));
        EXPECT_EQ(blocks[0].second.prefix_len, 0);
        expect_dropped(srcs[0], CW_STAT_DROP_BLOCKED);
        expect_attempt_only(syn(srcs[1], 9));
        ASSERT_TRUE(prog_->block_remove(addr(srcs[0])));
    }
}

TEST_F(Prefix, Ipv4Slash24)
{
    prefixes(24, 128);
    RunResult r = rotate({"203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"}, kPorts);
    EXPECT_EQ(r.delta, kPrefixBlocked);
    const cw_event* scan = scan_of(r);
    ASSERT_NE(scan, nullptr);
    EXPECT_EQ(scan->prefix_len, 96 + 24);
    EXPECT_EQ(scan->block_prefix_len, 96 + 24);
    auto blocks = prog_->block_list();
    ASSERT_EQ(blocks.size(), 1u);
    EXPECT_EQ(blocks[0].first, addr("203.0.113.0"));
    EXPECT_EQ(blocks[0].second.prefix_len, 96 + 24);
    expect_dropped("203.0.113.200", CW_STAT_DROP_BLOCKED_PREFIX);
    expect_attempt_only(syn("203.0.112.200", 22));
    expect_attempt_only(syn("203.0.114.1", 22));
    // IPv6 stays per address meanwhile.
    for (size_t i = 0; i < kRotating6.size(); i++)
        expect_attempt_only(syn(kRotating6[i], kPorts[i]));
}

TEST_F(Prefix, PrefixHoldingAnAllowedAddressStaysPerAddress)
{
    prefixes(32, 64);
    // What connwatchd writes for an own address 2001:db8:1:2::5 (allowlisted).
    prog_->allow_add(Cidr(addr("2001:db8:1:2::5"), 128));
    prog_->set_allow_inside(
        prefixes_holding({Cidr(addr("2001:db8:1:2::5"), 128)}, 32, 64));
    EXPECT_EQ(prog_->allow_inside(), (std::set<Address>{addr("2001:db8:1:2::")}));

    for (size_t i = 0; i < kRotating6.size(); i++)
        expect_attempt_only(syn(kRotating6[i], kPorts[i]));
    EXPECT_TRUE(prog_->block_list().empty());

    // A scanner there is blocked alone; its neighbours, the own address
    // among them, are not.
    RunResult r = rotate({"2001:db8:1:2::66", "2001:db8:1:2::66", "2001:db8:1:2::66",
                          "2001:db8:1:2::66"},
                         kPorts);
    const cw_event* scan = scan_of(r);
    ASSERT_NE(scan, nullptr);
    EXPECT_EQ(scan->action, CW_ACT_BLOCKED);
    EXPECT_EQ(scan->prefix_len, 0);
    EXPECT_EQ(scan->block_prefix_len, 0);
    auto blocks = prog_->block_list();
    ASSERT_EQ(blocks.size(), 1u);
    EXPECT_EQ(blocks[0].first, addr("2001:db8:1:2::66"));
    expect_dropped("2001:db8:1:2::66", CW_STAT_DROP_BLOCKED);
    expect_attempt_only(syn("2001:db8:1:2::5", 22));
    expect_attempt_only(syn("2001:db8:1:2::67", 22));

    // Another /64 is still counted as one.
    r = rotate({"2001:db8:9:9::1", "2001:db8:9:9::2", "2001:db8:9:9::3", "2001:db8:9:9::4"},
               kPorts);
    EXPECT_EQ(r.delta, kPrefixBlocked);
}

TEST_F(Prefix, AllowEntryCoveringThePrefixIsReportedNotBlocked)
{
    prefixes(32, 64);
    prog_->allow_add(Cidr(addr("2001:db8:1::"), 48));
    // No row needed in allow_inside: the entry covers every source.
    EXPECT_TRUE(prefixes_holding({Cidr(addr("2001:db8:1::"), 48)}, 32, 64).empty());
    RunResult r = rotate(kRotating6, kPorts);
    const cw_event* scan = scan_of(r);
    ASSERT_NE(scan, nullptr);
    EXPECT_EQ(scan->action, CW_ACT_ALLOWLISTED);
    EXPECT_EQ(scan->prefix_len, 64);
    EXPECT_TRUE(prog_->block_list().empty());
}

TEST_F(Prefix, PrefixBlockEndsAtItsDeadlineAndIsRenewedByTheNextScan)
{
    prefixes(32, 64);
    rotate(kRotating6, kPorts);
    const uint64_t deadline = now() + 3600 * kSec;
    set_now(deadline - 1);
    expect_dropped("2001:db8:1:2::77", CW_STAT_DROP_BLOCKED_PREFIX);
    set_now(deadline);
    expect_attempt_only(syn("2001:db8:1:2::77", 22));
    // The expired entry is still there (userspace sweeps it); a new scan
    // from the prefix, judged afresh, renews it in place.
    RunResult r = rotate({"2001:db8:1:2::78", "2001:db8:1:2::79", "2001:db8:1:2::7a"},
                         {80, 443, 8080});
    EXPECT_EQ(r.delta, kPrefixBlocked);
    auto blocks = prog_->block_list();
    ASSERT_EQ(blocks.size(), 1u);
    EXPECT_EQ(blocks[0].second.expires_ns, now() + 3600 * kSec);
    expect_dropped("2001:db8:1:2::77", CW_STAT_DROP_BLOCKED_PREFIX);
}

// The masked key 2001:db8:1:2:: is also an address: its exact block is that
// address's alone, never the prefix's, and is never overwritten by a prefix
// block.
TEST_F(Prefix, ExactBlockOfThePrefixAddressIsNeitherAPrefixNorReplaced)
{
    prefixes(32, 64);
    cw_block manual{.created_ns = now(), .expires_ns = 0, .origin = CW_ORIGIN_MANUAL,
                    .v6_prefix = 0, .prefix_len = 0, .pad = {}};
    ASSERT_TRUE(prog_->block_add(addr("2001:db8:1:2::"), manual));
    expect_dropped("2001:db8:1:2::", CW_STAT_DROP_BLOCKED);
    expect_attempt_only(syn("2001:db8:1:2::1", 22));

    advance(120 * kSec);
    RunResult r = rotate(kRotating6, kPorts);
    const cw_event* scan = scan_of(r);
    ASSERT_NE(scan, nullptr);
    EXPECT_EQ(scan->action, CW_ACT_BLOCKED);
    EXPECT_EQ(scan->prefix_len, 64);
    EXPECT_EQ(scan->block_prefix_len, 0); // the scanner alone
    auto b = prog_->block_get(addr("2001:db8:1:2::"));
    ASSERT_TRUE(b);
    EXPECT_EQ(b->origin, CW_ORIGIN_MANUAL);
    EXPECT_EQ(b->expires_ns, 0u);
    expect_dropped(kRotating6.back(), CW_STAT_DROP_BLOCKED);
}

// Repeat offenders with prefixes: the history is kept under the key blocked,
// the masked source, so a scanner that comes back from other addresses of its
// /64 is the same offender and its block grows.
TEST_F(Prefix, RotatingSlash64EscalatesAsOneOffender)
{
    cw_config c = default_config();
    c.ipv6_prefix = 64;
    c.block_ns = 10 * kSec;
    c.escalation_window_ns = 100 * kSec;
    c.escalation_factor_milli = 2000;
    c.max_block_ns = 35 * kSec;
    c.block_every_ns = 0;
    prog_->set_config(c);

    uint64_t at = now();
    RunResult r = rotate(kRotating6, kPorts);
    const cw_event* scan = scan_of(r);
    ASSERT_NE(scan, nullptr);
    EXPECT_EQ(scan->block_prefix_len, 64);
    EXPECT_EQ(scan->offence, 1u);
    EXPECT_EQ(scan->expires_ns, at + 10 * kSec);
    auto o = prog_->offender(addr("2001:db8:1:2::").to_abi());
    ASSERT_TRUE(o.has_value()) << "the history is not under the masked key";
    EXPECT_EQ(o->offences, 1u);
    EXPECT_FALSE(prog_->offender(addr(kRotating6.back()).to_abi()));

    // The block ends; the same /64 scans again from addresses never seen.
    advance(10 * kSec);
    at = now();
    r = rotate({"2001:db8:1:2::100", "2001:db8:1:2::101", "2001:db8:1:2::102",
                "2001:db8:1:2::103"},
               kPorts);
    scan = scan_of(r);
    ASSERT_NE(scan, nullptr);
    EXPECT_EQ(scan->action, CW_ACT_BLOCKED);
    EXPECT_EQ(scan->block_prefix_len, 64);
    EXPECT_EQ(scan->offence, 2u);
    EXPECT_EQ(scan->expires_ns, at + 20 * kSec);
    expect_dropped("2001:db8:1:2::abcd", CW_STAT_DROP_BLOCKED_PREFIX);

    // An operator's unblock of the /64 forgives it (the masked key's history).
    KernelMaps maps(*prog_);
    BlockTable table(maps, "/nonexistent/connwatch-test/state.json");
    table.sweep_expired(now()); // its reconciliation learns the prefix block from the kernel
    ASSERT_TRUE(table.unblock(*Cidr::parse("2001:db8:1:2::/64")));
    EXPECT_FALSE(prog_->offender(addr("2001:db8:1:2::").to_abi())) << "unblock kept the history";
    advance(kSec);
    at = now();
    r = rotate({"2001:db8:1:2::200", "2001:db8:1:2::201", "2001:db8:1:2::202",
                "2001:db8:1:2::203"},
               kPorts);
    scan = scan_of(r);
    ASSERT_NE(scan, nullptr);
    EXPECT_EQ(scan->offence, 1u);
    EXPECT_EQ(scan->expires_ns, at + 10 * kSec);
}

// rp-filter checks the address the packet really came from, not the masked
// key: a /64 routed back through the interface, one address of which is
// routed elsewhere (a decoy naming it), and a masked key routed elsewhere.
TEST_F(Prefix, ReversePathCheckUsesTheRealSource)
{
    auto route = [&](const char* prefix, uint32_t oif) {
        cw_route v{};
        v.kind = CW_ROUTE_UNICAST;
        v.v6 = 1;
        v.ifindex[v.nhops++] = oif;
        prog_->route_set(*Cidr::parse(prefix), v);
    };
    const uint32_t here = static_cast<uint32_t>(ingress_ifindex_);
    route("2001:db8:1:2::/64", here);
    route("2001:db8:1:2:1:2:3:4/128", 7); // kRotating6.back(): leaves by another interface
    route("2001:db8:1:3::/64", here);
    route("2001:db8:1:3::/128", 7); // the masked key of the second /64
    cw_config c = default_config();
    c.ipv6_prefix = 64;
    c.rp_filter = CW_RP_STRICT;
    prog_->set_config(c);

    RunResult r = rotate(kRotating6, kPorts);
    const cw_event* scan = scan_of(r);
    ASSERT_NE(scan, nullptr);
    EXPECT_EQ(scan->action, CW_ACT_SPOOFED) << "the real source fails strict rp-filter";
    EXPECT_EQ(scan->prefix_len, 64);
    EXPECT_EQ(scan->block_prefix_len, 0);
    EXPECT_TRUE(prog_->block_list().empty());

    r = rotate({"2001:db8:1:3::a", "2001:db8:1:3::b", "2001:db8:1:3::c", "2001:db8:1:3::d"},
               kPorts);
    scan = scan_of(r);
    ASSERT_NE(scan, nullptr);
    EXPECT_EQ(scan->action, CW_ACT_BLOCKED) << "the masked key's route was checked";
    EXPECT_EQ(scan->block_prefix_len, 64);
}

// The masked key is also an address: unblocking that address, alone or in a
// bulk request (unblock --file, one delete batch), never lifts the /64; an
// exact block of it moves the /64 to the trie, both then in force.
TEST_F(Prefix, TheFirstAddressIsNotThePrefix)
{
    prefixes(32, 64);
    rotate(kRotating6, kPorts);
    KernelMaps maps(*prog_);
    BlockTable table(maps, "/nonexistent/connwatch-test/state.json");
    table.sweep_expired(now()); // its reconciliation learns the prefix block
    const Cidr first = Cidr::host(addr("2001:db8:1:2::"));
    const Cidr slash64 = *Cidr::parse("2001:db8:1:2::/64");

    EXPECT_FALSE(table.unblock(first));
    auto bulk = table.unblock_many({first, Cidr::host(addr("2001:db8:1:2::a"))});
    EXPECT_TRUE(bulk.removed.empty());
    EXPECT_EQ(bulk.absent, 2u);
    // The kernel's batch path on its own too (what expiry and withdrawals use).
    EXPECT_EQ(maps.remove_blocks({first}), std::vector<bool>{false});
    expect_dropped("2001:db8:1:2::", CW_STAT_DROP_BLOCKED_PREFIX);
    expect_dropped("2001:db8:1:2::a", CW_STAT_DROP_BLOCKED_PREFIX);

    // An operator blocks the first address: the /64 moves to the trie.
    auto made = table.block(first, std::nullopt, "x", false);
    ASSERT_TRUE(std::holds_alternative<BlockRecord>(made)) << std::get<std::string>(made);
    auto b = prog_->block_get(addr("2001:db8:1:2::"));
    ASSERT_TRUE(b);
    EXPECT_EQ(b->origin, CW_ORIGIN_MANUAL);
    EXPECT_EQ(b->prefix_len, 0);
    expect_dropped("2001:db8:1:2::", CW_STAT_DROP_BLOCKED);
    expect_dropped("2001:db8:1:2::a", CW_STAT_DROP_BLOCKED_CIDR);
    // Unblocking the address now lifts the address alone; then the /64.
    EXPECT_TRUE(table.unblock(first));
    expect_dropped("2001:db8:1:2::", CW_STAT_DROP_BLOCKED_CIDR);
    EXPECT_TRUE(table.unblock(slash64));
    expect_attempt_only(syn("2001:db8:1:2::a", 9));
}

} // namespace
} // namespace connwatch::test
