// SPDX-License-Identifier: GPL-2.0-only
// BlockTable's policy without root, against FakeMaps (block_table_fixture.h).
// The real maps are covered by the bpf and integration tests. The refusals of
// dangerous blocks and the scan state's reset are in block_policy_test.cpp.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "block_table_fixture.h"

using namespace connwatch;
using namespace connwatch::test;
using namespace std::chrono_literals;

TEST_F(BlockTableTest, BlocksAnAddressOrAPrefixInTheRightList)
{
    std::time_t before = std::time(nullptr);
    auto r = must_block("192.0.2.7", 1h, "abuse");
    EXPECT_EQ(r.origin, BlockOrigin::Manual);
    EXPECT_EQ(r.reason, "abuse");
    // Wall-clock seconds, truncated: the deadline may read one second early
    // when the clock crosses a second between the two readings.
    EXPECT_GE(r.expires, before + 3600 - 1);
    EXPECT_LE(r.expires, std::time(nullptr) + 3600);
    must_block("203.0.113.0/24");
    must_block("2001:db8::/32", 0s);
    EXPECT_EQ(maps_.hosts.size(), 1u);
    EXPECT_EQ(maps_.cidrs.size(), 2u);
    EXPECT_EQ(maps_.hosts.begin()->second.origin, CW_ORIGIN_MANUAL);
    EXPECT_NE(maps_.hosts.begin()->second.expires_ns, 0u);
    EXPECT_EQ(maps_.cidrs.at(P("203.0.113.0/24")).expires_ns, 0u) << "no duration: until removed";
    EXPECT_EQ(maps_.cidrs.at(P("2001:db8::/32")).expires_ns, 0u) << "0: until removed";
    EXPECT_EQ(table_->manual_added(), 3u);
    EXPECT_EQ(table_->counts().manual, 3u);
}

TEST_F(BlockTableTest, RefusesABlockAnAllowEntryCovers)
{
    ASSERT_EQ(table_->set_allow_sources({P("10.0.0.0/8")}, {P("127.0.0.0/8")}).error, "");
    EXPECT_EQ(refusal("10.1.2.3"),
              "10.1.2.3/32 is covered by the allow entry 10.0.0.0/8: remove that first "
              "(connwatchctl disallow) if you really mean to block it");
    EXPECT_NE(refusal("10.9.0.0/16").find("covered by the allow entry 10.0.0.0/8"),
              std::string::npos);
    EXPECT_NE(refusal("127.0.0.1").find("127.0.0.0/8"), std::string::npos) << "own address";
    // Wider than the allow entry: not covered (the kernel's allow wins inside it);
    // wider than /8 too, hence forced (block_policy_test.cpp).
    must_block("10.0.0.0/7", {}, "", true);
    // The other family is never covered by an IPv4 entry.
    must_block("::a00:1");
    EXPECT_TRUE(maps_.hosts.count(P("::a00:1")));
}

TEST_F(BlockTableTest, RefusesWhenAListIsFullAndSaysWhich)
{
    for (const char* a : {"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"})
        must_block(a);
    EXPECT_EQ(refusal("192.0.2.5"),
              "the blocklist is full (max-blocks 4): unblock entries or raise max-blocks");
    must_block("192.0.2.4", 1h); // already there: an update, not a new entry
    must_block("198.51.100.0/24");
    must_block("198.51.101.0/24");
    EXPECT_EQ(refusal("198.51.102.0/24"),
              "the CIDR blocklist is full (max-cidr-blocks 2): unblock entries or raise "
              "max-cidr-blocks");
    EXPECT_EQ(table_->manual_added(), 7u);
}

TEST_F(BlockTableTest, UnblockRemovesOnlyWhatIsBlocked)
{
    must_block("192.0.2.1");
    EXPECT_TRUE(table_->unblock(P("192.0.2.1")));
    EXPECT_FALSE(table_->unblock(P("192.0.2.1")));
    EXPECT_FALSE(table_->unblock(P("192.0.2.0/24")));
    EXPECT_TRUE(maps_.hosts.empty());
    EXPECT_EQ(table_->removed(RemovalReason::Unblocked), 1u);
    EXPECT_TRUE(listed().empty());
}

TEST_F(BlockTableTest, FlushRemovesEveryBlockAndCountsThem)
{
    must_block("192.0.2.1");
    must_block("2001:db8::1");
    must_block("198.51.100.0/24");
    maps_.hosts[P("192.0.2.9")] = kernel_block(BlockOrigin::Scan, 0); // the kernel's own
    auto removed = table_->flush();
    EXPECT_EQ(removed.total(), 4u);
    EXPECT_EQ(removed.manual, 3u);
    EXPECT_EQ(removed.scan, 1u);
    EXPECT_TRUE(maps_.hosts.empty() && maps_.cidrs.empty());
    EXPECT_EQ(table_->removed(RemovalReason::Flushed), 4u);
    EXPECT_EQ(table_->counts().total(), 0u);
    EXPECT_EQ(table_->flush().total(), 0u);
}

TEST_F(BlockTableTest, AllowLiftsTheBlocksItCoversAndSaysWhereEachEntryComesFrom)
{
    ASSERT_EQ(table_->set_allow_sources({P("198.51.100.0/24")}, {P("127.0.0.0/8")}).error, "");
    must_block("192.0.2.1");
    must_block("192.0.2.128/25");
    must_block("203.0.113.5");
    auto u = table_->allow(P("192.0.2.0/24"));
    EXPECT_EQ(u.error, "");
    std::set<Cidr> lifted(u.lifted.begin(), u.lifted.end());
    EXPECT_EQ(lifted, (std::set<Cidr>{P("192.0.2.1"), P("192.0.2.128/25")}));
    EXPECT_EQ(listed(), std::vector<std::string>{"203.0.113.5/32"});
    EXPECT_EQ(table_->removed(RemovalReason::Allowlisted), 2u);
    EXPECT_TRUE(maps_.allows.count(P("192.0.2.0/24")));

    std::map<std::string, AllowSource> src;
    for (const auto& [c, s] : table_->allow_entries())
        src[c.str()] = s;
    EXPECT_EQ(src, (std::map<std::string, AllowSource>{
                       {"192.0.2.0/24", AllowSource::Connwatchctl},
                       {"198.51.100.0/24", AllowSource::Configuration},
                       {"127.0.0.0/8", AllowSource::OwnAddress}}));
    // Allowing it again changes nothing and is not an error.
    EXPECT_EQ(table_->allow(P("192.0.2.0/24")).error, "");
    EXPECT_EQ(table_->allow_size(), 3u);
}

TEST_F(BlockTableTest, AllowRefusedWhenTheTrieIsFullChangesNothing)
{
    ASSERT_EQ(table_->set_allow_sources({P("10.0.0.0/8"), P("10.1.0.0/16")},
                                        {P("127.0.0.0/8"), P("::1/128")})
                  .error,
              "");
    must_block("192.0.2.1");
    auto u = table_->allow(P("192.0.2.0/24"));
    EXPECT_EQ(u.error, "5 allow entries (configured, added with connwatchctl, and this host's "
                       "own addresses) do not fit the allowlist, which holds at most 4: remove "
                       "some");
    EXPECT_TRUE(u.lifted.empty());
    EXPECT_EQ(maps_.allows.size(), 4u);
    EXPECT_FALSE(maps_.allows.count(P("192.0.2.0/24")));
    EXPECT_EQ(listed(), std::vector<std::string>{"192.0.2.1/32"}) << "the block stays";
    EXPECT_EQ(table_->allow_size(), 4u);
}

TEST_F(BlockTableTest, DisallowRemovesOnlyRuntimeEntries)
{
    ASSERT_EQ(table_->set_allow_sources({P("10.0.0.0/8")}, {}).error, "");
    ASSERT_EQ(table_->allow(P("192.0.2.0/24")).error, "");
    EXPECT_EQ(table_->disallow(P("10.0.0.0/8")).error,
              "10.0.0.0/8 is allowed by the configuration file: remove it there and reload");
    EXPECT_EQ(table_->disallow(P("203.0.113.0/24")).error,
              "203.0.113.0/24 was not allowed with connwatchctl allow");
    EXPECT_EQ(table_->disallow(P("192.0.2.0/24")).error, "");
    EXPECT_EQ(maps_.allows, (std::set<Cidr>{P("10.0.0.0/8")}));
    must_block("192.0.2.1"); // no longer covered
    EXPECT_NE(table_->disallow(P("192.0.2.0/24")).error, "") << "already gone";
}

TEST_F(BlockTableTest, AReloadWithMoreAllowEntriesThanTheTrieHoldsKeepsTheOldList)
{
    ASSERT_EQ(table_->set_allow_sources({P("10.0.0.0/8")}, {P("127.0.0.0/8")}).error, "");
    must_block("192.0.2.1");
    std::vector<Cidr> many;
    for (int i = 0; i < 5; i++)
        many.push_back(P(("192.0." + std::to_string(i) + ".0/24").c_str()));
    auto u = table_->set_allow_sources(many, {P("127.0.0.0/8")});
    EXPECT_NE(u.error.find("6 allow entries"), std::string::npos) << u.error;
    EXPECT_NE(u.error.find("holds at most 4"), std::string::npos) << u.error;
    EXPECT_EQ(maps_.allows, (std::set<Cidr>{P("10.0.0.0/8"), P("127.0.0.0/8")}));
    EXPECT_EQ(listed(), std::vector<std::string>{"192.0.2.1/32"}) << "nothing lifted";
    // The running sources are still the old ones: a refusal cites them.
    EXPECT_NE(table_->disallow(P("10.0.0.0/8")).error.find("configuration file"),
              std::string::npos);
}

TEST_F(BlockTableTest, AKernelRefusalHalfwayRollsTheAllowlistBack)
{
    ASSERT_EQ(table_->set_allow_sources({P("10.0.0.0/8"), P("10.1.0.0/16")}, {}).error, "");
    maps_.fail_allow_after = 2; // the second new entry fails
    auto u = table_->set_allow_sources({P("192.0.2.0/24"), P("198.51.100.0/24")}, {});
    EXPECT_NE(u.error.find("Input/output error"), std::string::npos) << u.error;
    EXPECT_EQ(maps_.allows, (std::set<Cidr>{P("10.0.0.0/8"), P("10.1.0.0/16")}));
    EXPECT_NE(refusal("10.1.2.3").find("covered"), std::string::npos);
}

TEST_F(BlockTableTest, SweepRemovesWhatIsDueAndCountsTheRest)
{
    uint64_t now = monotonic_now_ns();
    maps_.hosts[P("192.0.2.1")] = kernel_block(BlockOrigin::Scan, now - 1);
    maps_.hosts[P("192.0.2.2")] = kernel_block(BlockOrigin::Scan, now + 60 * kNsPerSec);
    maps_.hosts[P("192.0.2.3")] = kernel_block(BlockOrigin::Scan, 0);
    maps_.cidrs[P("198.51.100.0/24")] = kernel_block(BlockOrigin::Manual, now);
    maps_.cidrs[P("203.0.113.0/24")] = kernel_block(BlockOrigin::Manual, 0);
    // As at a start: the one walk finds them all (exact blocks made behind the
    // table's back later are found by the reconciliation; prefix blocks are
    // only ever made through the table).
    table_->restore();
    auto s = table_->sweep_expired(now);
    std::set<Cidr> expired;
    for (const auto& e : s.expired)
        expired.insert(e.prefix);
    EXPECT_EQ(expired, (std::set<Cidr>{P("192.0.2.1"), P("198.51.100.0/24")}));
    EXPECT_EQ(s.left.scan, 2u);
    EXPECT_EQ(s.left.manual, 1u);
    EXPECT_EQ(table_->removed(RemovalReason::Expired), 2u);
    EXPECT_TRUE(table_->sweep_expired(now).expired.empty());
}

TEST_F(BlockTableTest, ListsEveryBlockAndExplainsScanBlocks)
{
    uint64_t now = monotonic_now_ns();
    must_block("192.0.2.1", 2h);
    must_block("192.0.2.2");
    must_block("192.0.2.3", 1h);
    maps_.hosts[P("192.0.2.4")] = kernel_block(BlockOrigin::Scan, now + 30 * kNsPerSec);
    table_->record_scan_block(P("192.0.2.4").address(), "Port scan detected: ...", 1, 2);
    auto all = listed();
    EXPECT_EQ(std::set<std::string>(all.begin(), all.end()),
              (std::set<std::string>{"192.0.2.4/32", "192.0.2.3/32", "192.0.2.1/32",
                                     "192.0.2.2/32"}));
    auto scan = table_->record(P("192.0.2.4"));
    ASSERT_TRUE(scan);
    EXPECT_EQ(scan->origin, BlockOrigin::Scan);
    EXPECT_EQ(scan->reason, "Port scan detected: ...");
    // A kernel entry nobody recorded (a crash before the state was written) is
    // listed from what the entry says.
    maps_.hosts[P("192.0.2.5")] = kernel_block(BlockOrigin::Scan, 0);
    auto rows = every_block(*table_);
    auto it = std::find_if(rows.begin(), rows.end(),
                           [](const BlockRecord& r) { return r.prefix == P("192.0.2.5"); });
    ASSERT_NE(it, rows.end());
    EXPECT_EQ(it->origin, BlockOrigin::Scan);
    EXPECT_EQ(it->expires, 0);
    EXPECT_NEAR(static_cast<double>(it->created), static_cast<double>(std::time(nullptr)), 2.0);
}

TEST_F(BlockTableTest, RestartKeepsRecordsOfPinnedBlocksAndRuntimeAllows)
{
    ASSERT_EQ(table_->set_allow_sources({}, {}).error, "");
    must_block("192.0.2.1", 1h, "why");
    ASSERT_EQ(table_->allow(P("10.0.0.0/8")).error, "");
    EXPECT_EQ(table_->save_if_dirty().error, "");
    EXPECT_EQ(table_->save_if_dirty().error, "") << "nothing new: no write";

    // A restart: the pinned maps are as they were, a new table reads the state.
    BlockTable next(maps_, state());
    auto r = next.restore();
    EXPECT_EQ(r.kept, 1u);
    EXPECT_EQ(r.restored, 0u);
    EXPECT_EQ(r.warning, "");
    ASSERT_EQ(every_block(next).size(), 1u);
    EXPECT_EQ(every_block(next)[0].reason, "why");
    ASSERT_EQ(next.set_allow_sources({}, {}).error, "");
    EXPECT_EQ(next.allow_entries(),
              (std::vector<std::pair<Cidr, AllowSource>>{{P("10.0.0.0/8"), AllowSource::Connwatchctl}}));
}

TEST_F(BlockTableTest, RebootRestoresManualBlocksOnly)
{
    must_block("192.0.2.1", 1h, "manual one");
    must_block("198.51.100.0/24");
    maps_.hosts[P("192.0.2.9")] = kernel_block(BlockOrigin::Scan, 0);
    table_->record_scan_block(P("192.0.2.9").address(), "scan", 1, 0);
    ASSERT_EQ(table_->save_if_dirty().error, "");

    FakeMaps empty; // bpffs is gone after a reboot
    BlockTable next(empty, state());
    auto r = next.restore();
    EXPECT_EQ(r.kept, 0u);
    EXPECT_EQ(r.restored, 2u);
    EXPECT_EQ(empty.hosts.size(), 1u);
    EXPECT_EQ(empty.cidrs.size(), 1u);
    EXPECT_FALSE(empty.hosts.count(P("192.0.2.9"))) << "scan blocks end with the pins";
    uint64_t left = empty.hosts.at(P("192.0.2.1")).expires_ns - monotonic_now_ns();
    EXPECT_GT(left, 3590 * kNsPerSec);
    EXPECT_LE(left, 3600 * kNsPerSec);
    EXPECT_EQ(empty.cidrs.at(P("198.51.100.0/24")).expires_ns, 0u);
}

TEST_F(BlockTableTest, AnUnreadableStateFileIsMovedAsideNotFatal)
{
    std::ofstream(state()) << "{ not json";
    auto r = table_->restore();
    EXPECT_NE(r.warning.find("could not be read"), std::string::npos) << r.warning;
    EXPECT_TRUE(std::filesystem::exists(state() + ".corrupt"));
    EXPECT_EQ(r.restored, 0u);
}

TEST_F(BlockTableTest, AnEmptyStateFileIsMovedAsideNotFatal)
{
    std::ofstream{state()};
    auto r = table_->restore();
    EXPECT_NE(r.warning.find("could not be read (not JSON)"), std::string::npos) << r.warning;
    EXPECT_TRUE(std::filesystem::exists(state() + ".corrupt"));
}

TEST_F(BlockTableTest, AFailedWriteIsReportedAndRetried)
{
    BlockTable t(maps_, dir_ + "/missing-dir/\x01/nope/state.json");
    std::filesystem::create_directories(dir_ + "/missing-dir");
    std::ofstream(dir_ + "/missing-dir/\x01"); // a file where a directory must be
    auto made = t.block(P("192.0.2.1"), std::nullopt, "", false);
    ASSERT_TRUE(std::holds_alternative<BlockRecord>(made));
    auto first = t.save_if_dirty();
    EXPECT_NE(first.error.find("Failed to write"), std::string::npos) << first.error;
    EXPECT_TRUE(first.say);
    auto again = t.save_if_dirty();
    EXPECT_EQ(again.error, first.error) << "still dirty: retried";
    EXPECT_FALSE(again.say) << "the same failure is said once, not every second";
}

// The hostile review: a state file that cannot be written was warned about at
// every tick of the loop, once a second, for as long as it lasted.
TEST_F(BlockTableTest, AFailingWriteIsSaidOncePerChangeAndItsRecoveryOnce)
{
    std::string blocker = dir_ + "/sub";
    std::ofstream{blocker}; // a file where the state directory must be
    BlockTable t(maps_, blocker + "/state.json");
    ASSERT_TRUE(std::holds_alternative<BlockRecord>(t.block(P("192.0.2.1"), std::nullopt, "", false)));
    EXPECT_TRUE(t.save_if_dirty().say);
    for (int tick = 0; tick < 5; tick++)
        EXPECT_FALSE(t.save_if_dirty().say) << tick;
    // Another change that cannot be saved either: said once more.
    ASSERT_TRUE(std::holds_alternative<BlockRecord>(t.block(P("192.0.2.2"), std::nullopt, "", false)));
    EXPECT_TRUE(t.save_if_dirty().say);
    EXPECT_FALSE(t.save_if_dirty().say);
    // The disk is writable again: one notice, then silence.
    std::filesystem::remove(blocker);
    auto ok = t.save_if_dirty();
    EXPECT_EQ(ok.error, "");
    EXPECT_TRUE(ok.say && ok.recovered);
    EXPECT_TRUE(std::filesystem::exists(blocker + "/state.json"));
    auto quiet = t.save_if_dirty();
    EXPECT_FALSE(quiet.say || quiet.recovered);
}

// The hostile review: one record that did not parse threw the whole file away,
// every manual block and runtime allow entry with it.
TEST_F(BlockTableTest, ABadRecordCostsOnlyItself)
{
    std::ofstream(state()) << R"({"version": 1, "blocks": [
        {"prefix": "192.0.2.1", "origin": "manual", "reason": "keep", "created": 1, "expires": 0},
        {"prefix": "192.0.2.300", "origin": "manual", "created": 1, "expires": 0},
        {"prefix": "198.51.100.0/24", "origin": "martian", "created": 1, "expires": 0},
        {"prefix": "203.0.113.5", "origin": "manual", "created": 1e300, "expires": 0}],
      "allow": ["10.0.0.0/8", 42, "2001:db8::/32"]})";
    auto r = table_->restore();
    EXPECT_EQ(r.restored, 1u);
    ASSERT_EQ(every_block(*table_).size(), 1u);
    EXPECT_EQ(every_block(*table_)[0].reason, "keep");
    ASSERT_EQ(table_->set_allow_sources({}, {}).error, "");
    EXPECT_EQ(table_->allow_size(), 2u);
    for (const char* said : {"4 unreadable records", "blocks[1]: '192.0.2.300'",
                             "blocks[2]: unknown block origin 'martian'",
                             "blocks[3]: \"created\" is not a time", "1 more",
                             "kept 1 blocks and 2 allow entries", ".corrupt"})
        EXPECT_NE(r.warning.find(said), std::string::npos) << said << " in: " << r.warning;
    // The file as it was is kept for the operator; the next save drops the bad ones.
    std::ifstream aside(state() + ".corrupt");
    std::string text((std::istreambuf_iterator<char>(aside)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("martian"), std::string::npos);
    ASSERT_EQ(table_->save_if_dirty().error, "");
    BlockTable next(maps_, state());
    EXPECT_EQ(next.restore().warning, "");
}

// An expiry centuries away would overflow the nanosecond deadline it becomes
// (u64 from boot) and wrap to an early one: refused as a bad record.
TEST_F(BlockTableTest, AnExpiryBeyondTheKernelClockIsABadRecord)
{
    std::ofstream(state()) << R"({"version": 1, "allow": [], "blocks": [
        {"prefix": "192.0.2.1", "origin": "manual", "created": 1, "expires": 100000000000000},
        {"prefix": "192.0.2.2", "origin": "manual", "created": 1, "expires": 8589934592}]})";
    auto r = table_->restore();
    EXPECT_EQ(r.restored, 1u);
    EXPECT_NE(r.warning.find("blocks[0]: \"expires\" is not a time"), std::string::npos) << r.warning;
    // The one at the limit (2242) is far enough: its deadline did not wrap.
    uint64_t left = maps_.hosts.at(P("192.0.2.2")).expires_ns - monotonic_now_ns();
    EXPECT_GT(left, 200ull * 365 * 86400 * kNsPerSec);
}

// ---- A full blocklist (issue 12; docs/SECURITY.md, "A full blocklist"): a
// new scanner's block takes the place of the oldest automatic one -- the
// earliest deadline -- never a manual, CrowdSec or escalated block.

namespace {

// A scan block the kernel made `mins` minutes from now, known to the table as
// its event would make it known.
void kernel_scan_block(FakeMaps& maps, BlockTable& table, const char* addr, int mins)
{
    uint64_t due = mins ? monotonic_now_ns() + uint64_t(mins) * 60 * kNsPerSec : 0;
    maps.hosts[P(addr)] = kernel_block(BlockOrigin::Scan, due);
    table.record_scan_block(P(addr).address(), std::string("scan of ") + addr, 1, 2);
}

cw_block new_scan_block()
{
    return kernel_block(BlockOrigin::Scan, monotonic_now_ns() + 3600 * kNsPerSec);
}

} // namespace

TEST_F(BlockTableTest, FullListReplacesTheOldestAutomaticBlockOnly)
{
    must_block("192.0.2.1", 1min, "manual, sooner than any scan block");
    must_block("192.0.2.2");
    kernel_scan_block(maps_, *table_, "192.0.2.3", 50);
    kernel_scan_block(maps_, *table_, "192.0.2.4", 20);
    ASSERT_EQ(maps_.hosts.size(), maps_.host_cap); // full
    ASSERT_FALSE(maps_.add_block(P("192.0.2.66"), new_scan_block())); // as the kernel found it

    auto r = table_->replace_oldest_scan_block(P("192.0.2.66"), new_scan_block(),
                                               "Port scan detected: new", 10, 20);
    ASSERT_TRUE(r.made);
    ASSERT_EQ(r.replaced, std::vector<Cidr>{P("192.0.2.4")}); // the earliest deadline
    EXPECT_TRUE(r.expired.empty());
    EXPECT_TRUE(maps_.hosts.count(P("192.0.2.66")));
    EXPECT_FALSE(maps_.hosts.count(P("192.0.2.4")));
    for (const char* kept : {"192.0.2.1", "192.0.2.2", "192.0.2.3"})
        EXPECT_TRUE(maps_.hosts.count(P(kept))) << kept;
    EXPECT_EQ(table_->removed(RemovalReason::Replaced), 1u);
    EXPECT_EQ(table_->counts().scan, 2u);
    EXPECT_EQ(table_->counts().manual, 2u);
    // The new block is listed with its scan's line.
    auto rec = table_->record(P("192.0.2.66"));
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->origin, BlockOrigin::Scan);
    EXPECT_EQ(rec->reason, "Port scan detected: new");
    EXPECT_FALSE(table_->record(P("192.0.2.4")));
    // The replaced source is judged afresh from its next port, but not
    // forgiven: an eviction is no operator's pardon.
    EXPECT_NE(std::find(maps_.scan_resets.begin(), maps_.scan_resets.end(),
                        P("192.0.2.4").address()),
              maps_.scan_resets.end());
    EXPECT_TRUE(maps_.forgiven.empty());

    // Again: 192.0.2.3 is now the oldest automatic block (192.0.2.66 ends later).
    r = table_->replace_oldest_scan_block(P("192.0.2.67"), new_scan_block(), "scan",
                                          10, 20);
    ASSERT_TRUE(r.made);
    EXPECT_EQ(r.replaced, std::vector<Cidr>{P("192.0.2.3")});
    EXPECT_EQ(table_->removed(RemovalReason::Replaced), 2u);
    EXPECT_TRUE(maps_.hosts.count(P("192.0.2.1")));
    EXPECT_TRUE(maps_.hosts.count(P("192.0.2.2")));
}

// A scanner counted as its prefix (ipv6-prefix 64): its block is made as the
// kernel would have made it, the prefix's entry, listed by prefix; an exact
// automatic block made the room.
TEST_F(BlockTableTest, FullListReplacementBlocksAPrefixScannerAsItsPrefix)
{
    must_block("192.0.2.1", 1min);
    must_block("192.0.2.2");
    kernel_scan_block(maps_, *table_, "192.0.2.3", 50);
    kernel_scan_block(maps_, *table_, "192.0.2.4", 20);
    ASSERT_EQ(maps_.hosts.size(), maps_.host_cap);

    auto r = table_->replace_oldest_scan_block(P("2001:db8:1:2::/64"), new_scan_block(),
                                               "Port scan detected: 2001:db8:1:2::/64", 10, 20);
    ASSERT_TRUE(r.made);
    EXPECT_EQ(r.replaced, std::vector<Cidr>{P("192.0.2.4")});
    ASSERT_TRUE(maps_.find_prefix_block(P("2001:db8:1:2::/64")));
    EXPECT_FALSE(maps_.hosts.count(P("2001:db8:1:2::")));
    auto rec = table_->record(P("2001:db8:1:2::/64"));
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->origin, BlockOrigin::Scan);
    // Made already (another event of the same scan): nothing replaced.
    r = table_->replace_oldest_scan_block(P("2001:db8:1:2::/64"), new_scan_block(), "again",
                                          10, 20);
    EXPECT_FALSE(r.made);
    EXPECT_TRUE(r.replaced.empty());
    EXPECT_TRUE(maps_.hosts.count(P("192.0.2.3")));
}

TEST_F(BlockTableTest, FullListOfManualBlocksRefusesAsBefore)
{
    for (const char* m : {"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"})
        must_block(m, 1min);
    auto r = table_->replace_oldest_scan_block(P("192.0.2.66"), new_scan_block(),
                                               "scan", 10, 20);
    EXPECT_FALSE(r.made);
    EXPECT_TRUE(r.replaced.empty());
    EXPECT_EQ(maps_.hosts.size(), 4u);
    EXPECT_FALSE(maps_.hosts.count(P("192.0.2.66")));
    EXPECT_EQ(table_->removed(RemovalReason::Replaced), 0u);
}

TEST_F(BlockTableTest, FullListNeverReplacesCrowdsecEscalatedOrPermanentBlocks)
{
    ASSERT_EQ(table_->mirror(P("192.0.2.1"), 60s, "crowdsec: ssh-bf").outcome,
              BlockTable::Mirror::Outcome::Added);
    kernel_scan_block(maps_, *table_, "192.0.2.2", 0); // block-duration 0: until removed
    kernel_scan_block(maps_, *table_, "192.0.2.3", 5); // the second offence of its source
    kernel_scan_block(maps_, *table_, "192.0.2.4", 30);
    maps_.offenders[P("192.0.2.3")] =
        cw_offender{maps_.hosts.at(P("192.0.2.3")).expires_ns, 7200 * kNsPerSec, 2, 0};
    // A history from an earlier chain (it ended with another block) says
    // nothing about this one: 192.0.2.4 is a first offence, replaceable.
    maps_.offenders[P("192.0.2.4")] = cw_offender{12345, 3600 * kNsPerSec, 3, 0};

    auto r = table_->replace_oldest_scan_block(P("192.0.2.66"), new_scan_block(),
                                               "scan", 10, 20);
    ASSERT_TRUE(r.made);
    EXPECT_EQ(r.replaced, std::vector<Cidr>{P("192.0.2.4")});
    // Now only 192.0.2.66 is replaceable; then nothing is.
    r = table_->replace_oldest_scan_block(P("192.0.2.67"), new_scan_block(), "scan",
                                          10, 20);
    ASSERT_TRUE(r.made);
    EXPECT_EQ(r.replaced, std::vector<Cidr>{P("192.0.2.66")});
    maps_.offenders[P("192.0.2.67")] =
        cw_offender{maps_.hosts.at(P("192.0.2.67")).expires_ns, 7200 * kNsPerSec, 2, 0};
    r = table_->replace_oldest_scan_block(P("192.0.2.68"), new_scan_block(), "scan",
                                          10, 20);
    EXPECT_FALSE(r.made);
    EXPECT_TRUE(r.replaced.empty());
    for (const char* kept : {"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.67"})
        EXPECT_TRUE(maps_.hosts.count(P(kept))) << kept;
}

// The table's index may be behind the kernel: the oldest block it knows may
// be gone (expired and swept by nobody yet, unblocked by another path) or
// renewed (a new block of the same source, a later deadline).
TEST_F(BlockTableTest, FullListFollowsTheKernelWhenTheIndexIsBehind)
{
    must_block("192.0.2.1");
    kernel_scan_block(maps_, *table_, "192.0.2.2", 10);
    kernel_scan_block(maps_, *table_, "192.0.2.3", 20);
    kernel_scan_block(maps_, *table_, "192.0.2.4", 30);
    // 192.0.2.2 vanished from the kernel; 192.0.2.3 was renewed for 2 hours.
    maps_.hosts.erase(P("192.0.2.2"));
    maps_.hosts[P("192.0.2.3")].expires_ns = monotonic_now_ns() + 120 * 60 * kNsPerSec;
    kernel_scan_block(maps_, *table_, "192.0.2.5", 40); // full again

    auto r = table_->replace_oldest_scan_block(P("192.0.2.66"), new_scan_block(),
                                               "scan", 10, 20);
    ASSERT_TRUE(r.made);
    EXPECT_EQ(r.replaced, std::vector<Cidr>{P("192.0.2.4")});
    EXPECT_TRUE(maps_.hosts.count(P("192.0.2.3")));
    EXPECT_EQ(table_->counts().scan, 3u); // .3, .5, .66: .2 forgotten
    // A block already due when found is removed as expired, not replaced.
    maps_.hosts[P("192.0.2.5")].expires_ns = monotonic_now_ns() - 1;
    maps_.hosts.erase(P("192.0.2.66"));
    table_->record_scan_block(P("192.0.2.5").address(), "scan", 1, 2); // the index learns it
    kernel_scan_block(maps_, *table_, "192.0.2.70", 50);              // full again
    r = table_->replace_oldest_scan_block(P("192.0.2.67"), new_scan_block(), "scan",
                                          10, 20);
    ASSERT_TRUE(r.made);
    EXPECT_TRUE(r.replaced.empty());
    EXPECT_EQ(r.expired, std::vector<Cidr>{P("192.0.2.5")});
    EXPECT_EQ(table_->removed(RemovalReason::Expired), 1u);
}

// Between the removal and the insert the kernel may fill the room with
// another scanner's block: a further automatic block is tried, a bounded
// number of times.
TEST_F(BlockTableTest, FullListRetriesWhenTheKernelTakesTheRoom)
{
    for (int i = 1; i <= 4; i++)
        kernel_scan_block(maps_, *table_, ("192.0.2." + std::to_string(i)).c_str(), 10 * i);
    int stolen = 0;
    maps_.after_remove = [&] {
        if (stolen++ < 1)
            maps_.hosts[P("198.51.100.9")] = new_scan_block();
    };
    auto r = table_->replace_oldest_scan_block(P("192.0.2.66"), new_scan_block(),
                                               "scan", 10, 20);
    ASSERT_TRUE(r.made);
    EXPECT_EQ(r.replaced, (std::vector<Cidr>{P("192.0.2.1"), P("192.0.2.2")}));
    EXPECT_TRUE(maps_.hosts.count(P("192.0.2.66")));
    EXPECT_TRUE(maps_.hosts.count(P("198.51.100.9")));

    // A kernel that always takes the room first: the tries are bounded.
    maps_.after_remove = [&] {
        maps_.hosts[P(("198.51.100." + std::to_string(100 + stolen++)).c_str())] =
            new_scan_block();
    };
    r = table_->replace_oldest_scan_block(P("192.0.2.67"), new_scan_block(), "scan",
                                          10, 20);
    EXPECT_FALSE(r.made);
    EXPECT_EQ(r.replaced.size(), size_t(BlockTable::kMaxReplaceTries));
    EXPECT_FALSE(maps_.hosts.count(P("192.0.2.67")));
}
