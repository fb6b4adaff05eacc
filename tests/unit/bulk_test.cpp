// SPDX-License-Identifier: GPL-2.0-only
// Issue 10's control-plane pieces that need no daemon: the new requests on the
// wire, the block file's lines, BlockTable's bulk and paged-list methods, the
// list answer written in pieces, and the state journal (torn tail, bad lines,
// compaction, old state.json files).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "block_table_fixture.h"
#include "blocks/state.h"
#include "protocol/block_file.h"
#include "protocol/wire.h"

namespace connwatch::test {

using namespace protocol;
using std::chrono::seconds;

namespace {

Request parsed(const std::string& line)
{
    auto r = parse_request(line);
    if (auto* e = std::get_if<std::string>(&r)) {
        ADD_FAILURE() << line << ": " << *e;
        return StatusRequest{};
    }
    return std::get<Request>(r);
}

std::string refused(const std::string& line)
{
    auto r = parse_request(line);
    return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : "(accepted)";
}

std::string read(const std::string& path)
{
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

} // namespace

// ---- the requests -------------------------------------------------------------------------

TEST(BulkProtocol, ListTakesOriginMatchAndLimit)
{
    EXPECT_EQ(std::get<ListRequest>(parsed(R"({"command":"list"})")), ListRequest{});
    auto l = std::get<ListRequest>(
        parsed(R"({"command":"list","origin":"manual","match":"10.0.0.0/8","limit":5})"));
    EXPECT_EQ(l.origin, BlockOrigin::Manual);
    EXPECT_EQ(l.match, P("10.0.0.0/8"));
    EXPECT_EQ(l.limit, 5u);
    EXPECT_EQ(refused(R"({"command":"list","origin":"crowd"})"),
              "unknown origin 'crowd' (known: scan, manual, crowdsec)");
    EXPECT_EQ(refused(R"({"command":"list","limit":-1})"),
              "malformed request: \"limit\" must be a whole number, 0 or more");
    EXPECT_EQ(refused(R"({"command":"list","match":7})"),
              "malformed request: \"match\" must be a string");
    EXPECT_EQ(refused(R"({"command":"status","limit":1})"), "'status' takes no limit");
    EXPECT_EQ(refused(R"({"command":"block","prefix":"192.0.2.1","origin":"scan"})"),
              "'block' takes no origin");
    // A plain list is sent as it always was: an older connwatchd takes it.
    EXPECT_EQ(request_json(ListRequest{}).dump(), R"({"command":"list"})");
}

TEST(BulkProtocol, BlockManyAndUnblockMany)
{
    auto b = std::get<BlockManyRequest>(parsed(
        R"({"command":"block-many","entries":[{"prefix":"192.0.2.1"},)"
        R"({"prefix":"198.51.100.0/24","duration":"1d","reason":"x"}],"force":true})"));
    ASSERT_EQ(b.entries.size(), 2u);
    EXPECT_TRUE(b.force);
    EXPECT_EQ(b.entries[1], (BulkBlock{P("198.51.100.0/24"), seconds(86400), "x"}));
    EXPECT_EQ(refused(R"({"command":"block-many"})"),
              "malformed request: 'block-many' needs \"entries\", a list");
    EXPECT_EQ(refused(R"({"command":"block-many","entries":[{"prefix":"192.0.2.1"},{"prefix":"x"}]})")
                  .rfind("entries[1]: ", 0),
              0u);
    EXPECT_EQ(refused(R"({"command":"block-many","entries":[{"prefix":"192.0.2.1","force":true}]})"),
              "entries[0]: malformed request: unknown field \"force\"");
    std::string many = R"({"command":"unblock-many","prefixes":[)";
    for (size_t i = 0; i <= kMaxBulkEntries; i++)
        many += (i ? ",\"" : "\"") + std::string("192.0.2.1\"");
    EXPECT_EQ(refused(many + "]}"),
              "too many prefixes in one request (at most 4096): send them in several");
    auto u = std::get<UnblockManyRequest>(
        parsed(R"({"command":"unblock-many","prefixes":["192.0.2.1","2001:db8::/32"]})"));
    EXPECT_EQ(u.prefixes, (std::vector<Cidr>{P("192.0.2.1"), P("2001:db8::/32")}));
    EXPECT_EQ(refused(R"({"command":"unblock-many","prefixes":["192.0.2.1",3]})"),
              "prefixes[1]: malformed request: \"prefix\" must be a string");
}

// The bulk requests' lines are written by hand (request_line): the daemon
// reads them back as what was sent, a reason that needs escaping included.
TEST(BulkProtocol, HandWrittenLinesAreTheRequests)
{
    BlockManyRequest b;
    b.force = true;
    b.entries = {{P("192.0.2.1"), std::nullopt, ""},
                 {P("198.51.100.0/24"), seconds(86400), "say \"hi\" \\ caf\xc3\xa9"},
                 {P("2001:db8::/48"), seconds(90), "plain"}};
    std::string line = request_line(b);
    ASSERT_EQ(line.back(), '\n');
    EXPECT_EQ(nlohmann::json::parse(line), request_json(b));
    auto back = std::get<BlockManyRequest>(parsed(line.substr(0, line.size() - 1)));
    EXPECT_TRUE(back.force);
    EXPECT_EQ(back.entries, b.entries);
    UnblockManyRequest u;
    u.prefixes = {P("192.0.2.1"), P("2001:db8::/32")};
    line = request_line(u);
    EXPECT_EQ(nlohmann::json::parse(line), request_json(u));
    EXPECT_EQ(std::get<UnblockManyRequest>(parsed(line.substr(0, line.size() - 1))).prefixes,
              u.prefixes);
    EXPECT_EQ(request_line(StatusRequest{}), request_json(StatusRequest{}).dump() + "\n");
}

TEST(BulkProtocol, AnswersRoundTrip)
{
    nlohmann::json j = BlockManyResponse{3, 1, {{2, "why"}}};
    EXPECT_EQ(j.dump(), R"({"added":3,"present":1,"refused":[{"error":"why","index":2}]})");
    auto b = j.get<BlockManyResponse>();
    EXPECT_EQ(b.added, 3u);
    EXPECT_EQ(b.refused, (std::vector<BulkRefusal>{{2, "why"}}));
    nlohmann::json u = UnblockManyResponse{4, 2};
    EXPECT_EQ(u.dump(), R"({"absent":2,"removed":4})");
}

// ---- the file's lines ---------------------------------------------------------------------

TEST(BlockFile, LinesWithDurationReasonAndComments)
{
    EXPECT_TRUE(std::holds_alternative<std::monostate>(parse_block_line("")));
    EXPECT_TRUE(std::holds_alternative<std::monostate>(parse_block_line("   # only a comment\r\n")));
    EXPECT_EQ(std::get<BulkBlock>(parse_block_line("192.0.2.7\n")),
              (BulkBlock{P("192.0.2.7"), std::nullopt, ""}));
    EXPECT_EQ(std::get<BulkBlock>(parse_block_line("198.51.100.0/24\t1d  abuse report 12 # x\r\n")),
              (BulkBlock{P("198.51.100.0/24"), seconds(86400), "abuse report 12"}));
    EXPECT_EQ(std::get<BulkBlock>(parse_block_line("2001:db8::/48 - no duration")),
              (BulkBlock{P("2001:db8::/48"), std::nullopt, "no duration"}));
    EXPECT_EQ(std::get<BulkBlock>(parse_block_line("  10.1.2.3   0  ")),
              (BulkBlock{P("10.1.2.3"), seconds(0), ""}));
    std::string why;
    ASSERT_FALSE(Cidr::parse("300.1.1.1", &why));
    EXPECT_EQ(std::get<std::string>(parse_block_line("300.1.1.1 1h")), why);
    EXPECT_NE(std::get<std::string>(parse_block_line("192.0.2.1 soon x")).find("use - for none"),
              std::string::npos);
    EXPECT_EQ(std::get<std::string>(parse_block_line("192.0.2.1 1h " + std::string(257, 'r'))),
              "reason too long (at most 256 bytes)");
}

// ---- BlockTable's bulk methods ------------------------------------------------------------

TEST_F(BlockTableTest, BlockManyAppliesThePolicyPerEntry)
{
    maps_.host_cap = 3;
    table_->set_allow_sources({P("10.0.0.0/8")}, {P("192.0.2.100")});
    must_block("192.0.2.1");
    std::vector<BlockTable::BulkItem> items = {
        {P("192.0.2.1"), seconds(60), "again"},     // 0: present
        {P("192.0.2.2"), seconds(60), "new"},       // 1: added
        {P("10.1.2.3"), std::nullopt, ""},          // 2: allowlisted
        {P("192.0.2.0/24"), std::nullopt, ""},      // 3: covers an own address
        {P("192.0.2.2"), std::nullopt, ""},         // 4: twice in the list
        {P("192.0.2.3"), std::nullopt, ""},         // 5: added (the third)
        {P("192.0.2.4"), std::nullopt, ""},         // 6: full
    };
    auto r = table_->block_many(items, false);
    EXPECT_EQ(r.added.size(), 2u);
    EXPECT_EQ(r.present, 2u);
    ASSERT_EQ(r.refused.size(), 3u);
    EXPECT_EQ(r.refused[0].first, 2u);
    EXPECT_NE(r.refused[0].second.find("allow entry 10.0.0.0/8"), std::string::npos);
    EXPECT_EQ(r.refused[1].first, 3u);
    EXPECT_NE(r.refused[1].second.find("--force"), std::string::npos);
    EXPECT_EQ(r.refused[2].first, 6u);
    EXPECT_NE(r.refused[2].second.find("blocklist is full"), std::string::npos);
    EXPECT_EQ(table_->manual_added(), 3u);
    // The existing block kept its reason; the new one has its own.
    auto page = table_->list_page({}, {}, 10, 100);
    ASSERT_EQ(page.records.size(), 3u);
    EXPECT_EQ(page.records[0].reason, "");
    EXPECT_EQ(page.records[1].reason, "new");
    // force lets the wide one through, the allowlisted one still not.
    maps_.cidr_cap = 4;
    auto forced = table_->block_many({{P("192.0.2.0/24"), {}, ""}, {P("10.0.0.0/16"), {}, ""}}, true);
    EXPECT_EQ(forced.added.size(), 1u);
    EXPECT_EQ(forced.refused.size(), 1u);
}

TEST_F(BlockTableTest, UnblockManyRemovesWhatIsThere)
{
    must_block("192.0.2.1");
    must_block("198.51.100.0/24");
    auto r = table_->unblock_many({P("192.0.2.1"), P("192.0.2.9"), P("198.51.100.0/24")});
    EXPECT_EQ(r.removed, (std::vector<Cidr>{P("192.0.2.1"), P("198.51.100.0/24")}));
    EXPECT_EQ(r.absent, 1u);
    EXPECT_TRUE(maps_.hosts.empty() && maps_.cidrs.empty());
    EXPECT_EQ(table_->removed(RemovalReason::Unblocked), 2u);
}

TEST_F(BlockTableTest, ListPagesPrefixesThenAddressesEachOnceAndFilters)
{
    maps_.host_cap = 100;
    maps_.cidr_cap = 10;
    for (int i = 1; i <= 20; i++)
        must_block(("192.0.2." + std::to_string(i)).c_str());
    must_block("198.51.100.0/24");
    must_block("203.0.113.0/24");
    maps_.hosts[P("192.0.2.50")] = kernel_block(BlockOrigin::Scan, 0);
    table_->record_scan_block(*Address::parse("192.0.2.50"), "scan", 1, 2);
    // Pages of at most 7 with a budget of 5 entries looked at: every block once,
    // the prefix blocks first, in address order.
    std::vector<std::string> all;
    BlockTable::ListCursor at;
    for (int guard = 0; guard < 100; guard++) {
        auto page = table_->list_page({}, at, 7, 5);
        for (const auto& r : page.records)
            all.push_back(r.prefix.str());
        at = page.next;
        if (page.end)
            break;
    }
    ASSERT_EQ(all.size(), 23u);
    EXPECT_EQ(all[0], "198.51.100.0/24");
    EXPECT_EQ(all[1], "203.0.113.0/24");
    std::set<std::string> once(all.begin(), all.end());
    EXPECT_EQ(once.size(), all.size()) << "none twice";
    EXPECT_TRUE(once.count("192.0.2.1/32") && once.count("192.0.2.20/32") && once.count("192.0.2.50/32"));

    auto only = [&](BlockTable::ListFilter f) {
        std::vector<std::string> out;
        for (const auto& r : table_->list_page(f, {}, 100, 1000).records)
            out.push_back(r.prefix.str());
        return out;
    };
    EXPECT_EQ(only({BlockOrigin::Scan, {}}), std::vector<std::string>{"192.0.2.50/32"});
    EXPECT_EQ(only({{}, P("198.51.100.7")}), std::vector<std::string>{"198.51.100.0/24"})
        << "a block covering the address matches";
    EXPECT_EQ(only({{}, P("192.0.2.16/30")}).size(), 4u) << "the blocks inside the prefix";
    EXPECT_EQ(only({BlockOrigin::Manual, P("192.0.2.48/28")}), std::vector<std::string>{})
        << "the one inside is a scan block";
}

// ---- the list answer in pieces ------------------------------------------------------------

namespace {

class ListOnly : public Handler {
public:
    ListResponse whole;
    Answer<StatusResponse> status(const Peer&) override { return Refusal{"no"}; }
    Answer<ListStream> list(const ListRequest&, const Peer&) override { return list_stream(whole); }
    Answer<BlockResponse> block(const BlockRequest&, const Peer&) override { return Refusal{"no"}; }
    Answer<PrefixResponse> unblock(const UnblockRequest&, const Peer&) override
    {
        return Refusal{"no"};
    }
    Answer<PrefixResponse> allow(const AllowRequest&, const Peer&) override { return Refusal{"no"}; }
    Answer<PrefixResponse> disallow(const DisallowRequest&, const Peer&) override
    {
        return Refusal{"no"};
    }
    Answer<FlushResponse> flush(const Peer&) override { return Refusal{"no"}; }
    Answer<ReloadResponse> reload(const Peer&) override { return Refusal{"no"}; }
    Answer<BlockManyResponse> block_many(const BlockManyRequest&, const Peer&) override
    {
        return Refusal{"no"};
    }
    Answer<UnblockManyResponse> unblock_many(const UnblockManyRequest&, const Peer&) override
    {
        return Refusal{"no"};
    }
};

} // namespace

// The line written in pieces is the line the whole answer made before.
TEST(ListAnswer, PiecesMakeTheWholeAnswersLine)
{
    ListOnly h;
    for (size_t n : {0u, 1u, 2u, 1000u}) {
        h.whole = {};
        for (size_t i = 0; i < n; i++)
            h.whole.blocks.push_back({Cidr::host(*Address::parse("10.0." + std::to_string(i / 256) +
                                                                 "." + std::to_string(i % 256))),
                                      BlockOrigin::Manual, "r\"" + std::to_string(i), 1, 2, 3});
        h.whole.allow = {{P("127.0.0.0/8"), AllowSource::OwnAddress}};
        nlohmann::json expected = h.whole;
        expected["ok"] = true;
        auto a = answer(h, ListRequest{}, Peer{});
        std::string text;
        size_t pieces = 0;
        while (a->more(text, 1024))
            pieces++;
        EXPECT_EQ(text, compact(expected) + "\n") << n;
        if (n == 1000) {
            EXPECT_GE(pieces, 1000u / 256) << "made a page at a time";
        }
        // A limit cuts the blocks, nothing else.
        auto limited = dispatch(h, ListRequest{{}, {}, 1}, Peer{});
        EXPECT_EQ(limited["blocks"].size(), std::min<size_t>(n, 1));
        EXPECT_EQ(limited["ok"], true);
    }
}

// A cursor whose pages often match nothing (a rare filter): the answer comes
// back to the caller between them, and is whole at the end.
TEST(ListAnswer, EmptyPagesReturnToTheCaller)
{
    class Sparse final : public BlockCursor {
    public:
        int calls = 0;
        bool next(std::vector<BlockEntry>& out, size_t) override
        {
            if (++calls % 3 == 0)
                out.push_back({Cidr::host(*Address::parse("10.0.0." + std::to_string(calls))),
                               BlockOrigin::Scan, "", 1, 2, 3});
            return calls < 30;
        }
    };
    ListStream s;
    auto sparse = std::make_unique<Sparse>();
    auto* cursor = sparse.get();
    s.blocks = std::move(sparse);
    class One final : public ListOnly {
    public:
        ListStream* s;
        Answer<ListStream> list(const ListRequest&, const Peer&) override { return std::move(*s); }
    } h;
    h.s = &s;
    auto a = answer(h, ListRequest{}, Peer{});
    std::string text;
    int rounds = 0;
    while (a->more(text, 1 << 20))
        rounds++;
    EXPECT_GE(rounds, 10) << "each empty page ends a round";
    EXPECT_EQ(cursor->calls, 30);
    auto j = nlohmann::json::parse(text);
    EXPECT_EQ(j["blocks"].size(), 10u);
    EXPECT_EQ(j["ok"], true);
}

// ---- the journal --------------------------------------------------------------------------

TEST(StateJournal, RecordsReplayInOrderAndATornTailIsIgnored)
{
    State st;
    BlockRecord a{P("192.0.2.1"), BlockOrigin::Manual, "a", 10, 0};
    BlockRecord b{P("198.51.100.0/24"), BlockOrigin::Scan, "b", 11, 20};
    std::string text = journal_add(a) + journal_add(b) + journal_remove(a.prefix) +
                       journal_allow({P("10.0.0.0/8")}) + journal_add(a);
    std::vector<std::string> problems;
    apply_journal(text + R"({"add":{"prefix":"192.0.2.9","ori)", st, &problems);
    EXPECT_TRUE(problems.empty()) << problems.front();
    EXPECT_EQ(st.blocks, (std::vector<BlockRecord>{a, b}));
    EXPECT_EQ(st.allow, std::vector<Cidr>{P("10.0.0.0/8")});
    // Replayed over a state that already holds it: the same state.
    State again = st;
    apply_journal(text, again, &problems);
    EXPECT_EQ(again, st);
}

TEST(StateJournal, ABadLineCostsOnlyItself)
{
    State st;
    std::vector<std::string> problems;
    apply_journal("{\"add\":{\"prefix\":\"192.0.2.1\",\"origin\":\"manual\",\"created\":1,"
                  "\"expires\":0}}\n"
                  "garbage\n"
                  "{\"remove\":\"300.0.0.1\"}\n"
                  "{\"frob\":1}\n"
                  "{\"add\":{\"prefix\":\"192.0.2.2\",\"origin\":\"manual\",\"created\":1,"
                  "\"expires\":0}}\n",
                  st, &problems);
    EXPECT_EQ(st.blocks.size(), 2u);
    ASSERT_EQ(problems.size(), 3u);
    EXPECT_EQ(problems[0], "journal line 2: not a journal record");
    EXPECT_EQ(problems[1].rfind("journal line 3: ", 0), 0u) << problems[1];
    EXPECT_EQ(problems[2], "journal line 4: unknown record \"frob\"");
}

// A change is a line appended, not a rewrite of every block; the snapshot is
// rewritten once the journal outgrows it, and a restart reads both.
TEST_F(BlockTableTest, ChangesGoToTheJournalAndAreCompacted)
{
    maps_.host_cap = 10000;
    table_->restore();
    ASSERT_EQ(table_->save_if_dirty().error, "");
    const auto snapshot = std::filesystem::last_write_time(state());
    must_block("192.0.2.1", seconds(3600), "one");
    ASSERT_EQ(table_->save_if_dirty().error, "");
    EXPECT_EQ(std::filesystem::last_write_time(state()), snapshot) << "not rewritten";
    EXPECT_NE(read(state() + ".journal").find("\"one\""), std::string::npos);
    must_block("192.0.2.2");
    ASSERT_TRUE(table_->unblock(P("192.0.2.1")));
    ASSERT_EQ(table_->save_if_dirty().error, "");
    {
        BlockTable next(maps_, state());
        auto r = next.restore();
        EXPECT_EQ(r.warning, "");
        auto page = next.list_page({}, {}, 10, 100);
        ASSERT_EQ(page.records.size(), 1u);
        EXPECT_EQ(page.records[0].prefix, P("192.0.2.2"));
        EXPECT_EQ(page.records[0].origin, BlockOrigin::Manual) << "its record, from the journal";
    }
    // Enough changes and the journal is folded into a new snapshot.
    for (int i = 0; i < 5000; i++) {
        must_block("192.0.2.3");
        ASSERT_TRUE(table_->unblock(P("192.0.2.3")));
        ASSERT_EQ(table_->save_if_dirty().error, "");
    }
    EXPECT_LT(std::filesystem::file_size(state() + ".journal"), 4096u * 120u);
    std::vector<std::string> problems;
    State st = parse_state(read(state()), &problems);
    EXPECT_TRUE(problems.empty());
}

TEST_F(BlockTableTest, ATornJournalTailIsCutAndTheRestKept)
{
    maps_.host_cap = 10;
    must_block("192.0.2.1", std::nullopt, "kept");
    ASSERT_EQ(table_->save_if_dirty().error, "");
    std::ofstream(state() + ".journal", std::ios::app) << R"({"add":{"prefix":"192.0.2.)";
    maps_.hosts.clear(); // a reboot: the pins are gone
    BlockTable next(maps_, state());
    auto r = next.restore();
    EXPECT_EQ(r.warning, "");
    EXPECT_EQ(r.restored, 1u);
    std::string journal = read(state() + ".journal");
    EXPECT_TRUE(journal.empty() || journal.back() == '\n') << "the torn line is gone";
}

// state.json files written before the journal load as they are.
TEST_F(BlockTableTest, AnOldStateFileStillLoads)
{
    std::ofstream(state()) << R"({"version": 1, "blocks": [
        {"prefix": "192.0.2.1", "origin": "manual", "reason": "old", "created": 1, "expires": 0}],
        "allow": ["10.0.0.0/8"]})";
    auto r = table_->restore();
    EXPECT_EQ(r.warning, "");
    EXPECT_EQ(r.restored, 1u);
    EXPECT_FALSE(std::filesystem::exists(state() + ".journal")) << "nothing to replay";
    ASSERT_EQ(table_->save_if_dirty().error, "");
    std::vector<std::string> problems;
    EXPECT_EQ(parse_state(read(state()), &problems).blocks.at(0).reason, "old");
}

} // namespace connwatch::test
