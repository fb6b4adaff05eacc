// SPDX-License-Identifier: GPL-2.0-only
// The CrowdSec LAPI protocol without the network (src/crowdsec/lapi_protocol.h):
// Go durations, the decision stream (scopes, families, garbage), the ledger of
// decisions per prefix, alerts, credentials and secret files; and the
// BlockTable's mirrored blocks. The real LAPI: tests/integration/crowdsec_test.sh.
#include <sys/stat.h>

#include <fstream>

#include "block_table_fixture.h"
#include "crowdsec/client.h"
#include "crowdsec/lapi_protocol.h"

using namespace connwatch;
using namespace connwatch::crowdsec;
using namespace connwatch::test;
using namespace std::chrono_literals;
using std::chrono::nanoseconds;

TEST(GoDuration, ParsesWhatTheLapiWrites)
{
    EXPECT_EQ(parse_go_duration("59m58.67s"), nanoseconds(59 * 60'000'000'000LL + 58'670'000'000LL));
    EXPECT_EQ(parse_go_duration("3h59m58.6s"),
              nanoseconds(3 * 3600'000'000'000LL + 59 * 60'000'000'000LL + 58'600'000'000LL));
    EXPECT_EQ(parse_go_duration("-68.7ms"), nanoseconds(-68'700'000));
    EXPECT_EQ(parse_go_duration("0"), nanoseconds(0));
    EXPECT_EQ(parse_go_duration("0s"), nanoseconds(0));
    EXPECT_EQ(parse_go_duration("1h"), nanoseconds(3600'000'000'000LL));
    EXPECT_EQ(parse_go_duration("167h59m59.999999999s"),
              nanoseconds(168 * 3600'000'000'000LL - 1));
    EXPECT_EQ(parse_go_duration("1.5h"), nanoseconds(5400'000'000'000LL));
    EXPECT_EQ(parse_go_duration(".5s"), nanoseconds(500'000'000));
    EXPECT_EQ(parse_go_duration("3.5\xC2\xB5s"), nanoseconds(3500));
    EXPECT_EQ(parse_go_duration("3\xCE\xBCs"), nanoseconds(3000));
    EXPECT_EQ(parse_go_duration("12us"), nanoseconds(12'000));
    EXPECT_EQ(parse_go_duration("7ns"), nanoseconds(7));
    EXPECT_EQ(parse_go_duration("+2m"), nanoseconds(120'000'000'000LL));
    EXPECT_EQ(parse_go_duration("1m1ms"), nanoseconds(60'001'000'000LL));
    // Finer than a nanosecond: dropped, as Go does.
    EXPECT_EQ(parse_go_duration("1.0000000009s"), nanoseconds(1'000'000'000));
    // The extremes of int64 nanoseconds (about 292 years).
    EXPECT_EQ(parse_go_duration("2562047h47m16.854775807s"), nanoseconds(INT64_MAX));
    EXPECT_EQ(parse_go_duration("-2562047h47m16.854775808s"), nanoseconds(INT64_MIN));
}

TEST(GoDuration, RefusesWhatIsNotOne)
{
    for (const char* bad :
         {"", "-", "+", "s", "1", "10", "1d", "1 h", " 1h", "1h ", "1H", "h1", ".s", "1..5s",
          "1.5", "--1s", "1s-1s", "0x10s", "1e3s", "2562047h47m16.854775808s",
          "99999999999999999999999h", "\xC2s", "1\xCEs"})
        EXPECT_FALSE(parse_go_duration(bad)) << "'" << bad << "'";
}

TEST(GoDuration, FormatsWholeSeconds)
{
    EXPECT_EQ(go_duration(3600s), "3600s");
    EXPECT_EQ(parse_go_duration(go_duration(600s)), nanoseconds(600'000'000'000LL));
}

TEST(Stream, DecodesIpAndRangeBansOfBothFamilies)
{
    auto b = decode_stream(R"({"deleted":null,"new":[
      {"duration":"59m58.67s","id":1,"origin":"cscli","scenario":"manual 'ban' from 'm1'","scope":"Ip","type":"ban","value":"192.0.2.7"},
      {"duration":"3h59m58.6s","id":2,"origin":"cscli","scenario":"x","scope":"Range","type":"ban","value":"198.51.100.0/24"},
      {"duration":"1h","id":3,"origin":"CAPI","scenario":"y","scope":"Ip","type":"ban","value":"2001:db8::5"},
      {"duration":"1h","id":4,"origin":"lists","scenario":"z","scope":"range","type":"ban","value":"2001:db8:1::/48"}]})");
    ASSERT_EQ(b.added.size(), 4u);
    EXPECT_TRUE(b.deleted.empty());
    EXPECT_EQ(b.added[0].prefix, P("192.0.2.7"));
    EXPECT_EQ(b.added[0].id, 1);
    EXPECT_EQ(b.added[0].origin, "cscli");
    EXPECT_EQ(b.added[0].remaining, nanoseconds(3598'670'000'000LL));
    EXPECT_EQ(b.added[1].prefix, P("198.51.100.0/24"));
    EXPECT_EQ(b.added[2].prefix, P("2001:db8::5"));
    EXPECT_EQ(b.added[3].prefix, P("2001:db8:1::/48"));
    EXPECT_EQ(b.ignored, 0u);
    EXPECT_EQ(b.bad, 0u);
    EXPECT_EQ(block_reason(b.added[0]), "crowdsec manual 'ban' from 'm1' (cscli, decision 1)");
}

TEST(Stream, DecodesDeletedWithTheirNegativeDurations)
{
    auto b = decode_stream(R"({"new":null,"deleted":[
      {"duration":"-68.7ms","id":9,"origin":"cscli","scenario":"x","scope":"Ip","type":"ban","value":"192.0.2.7"}]})");
    ASSERT_EQ(b.deleted.size(), 1u);
    EXPECT_EQ(b.deleted[0].remaining, nanoseconds(-68'700'000));
    EXPECT_EQ(b.deleted[0].id, 9);
    EXPECT_TRUE(b.added.empty());
    EXPECT_TRUE(decode_stream(R"({"new":null,"deleted":null})").added.empty());
    EXPECT_TRUE(decode_stream(R"({"new":[],"deleted":[]})").added.empty());
}

TEST(Stream, IgnoresOtherTypesAndScopesAndCountsThem)
{
    auto b = decode_stream(R"({"new":[
      {"duration":"1h","id":1,"scope":"Ip","type":"captcha","value":"192.0.2.1"},
      {"duration":"1h","id":2,"scope":"Country","type":"ban","value":"FR"},
      {"duration":"1h","id":3,"scope":"AS","type":"ban","value":"64496"},
      {"duration":"1h","id":4,"scope":"Ip","type":"throttle","value":"192.0.2.2"},
      {"duration":"1h","id":5,"scope":"Ip","type":"BAN","value":"192.0.2.3"}]})");
    EXPECT_EQ(b.ignored, 4u);
    ASSERT_EQ(b.added.size(), 1u);
    EXPECT_EQ(b.added[0].prefix, P("192.0.2.3"));
}

TEST(Stream, OneBadDecisionCostsOnlyItself)
{
    auto b = decode_stream(R"({"new":[
      {"duration":"1h","scope":"Ip","type":"ban","value":"192.0.2.300"},
      {"duration":"soon","scope":"Ip","type":"ban","value":"192.0.2.4"},
      {"scope":"Ip","type":"ban","value":"192.0.2.5"},
      {"duration":"1h","scope":"Range","type":"ban","value":"10.0.0.0/33"},
      {"duration":"1h","scope":"Range","type":"ban","value":"10.0.0.0"},
      {"duration":"1h","scope":"Range","type":"ban","value":"10.0.0.0/-1"},
      {"duration":"1h","scope":"Ip","type":"ban"},
      {"duration":1,"scope":"Ip","type":"ban","value":"192.0.2.6"},
      42, null, "x",
      {"duration":"1h","scope":"Range","type":"ban","value":"203.0.113.9/24"},
      {"duration":"1h","id":7,"scope":"Ip","type":"ban","value":"192.0.2.8"}]})");
    EXPECT_EQ(b.bad, 11u);
    EXPECT_EQ(b.problems.size(), 5u) << "only the first few are described";
    ASSERT_EQ(b.added.size(), 2u);
    EXPECT_EQ(b.added[0].prefix, P("203.0.113.0/24")) << "host bits of a range are masked";
    EXPECT_EQ(b.added[1].prefix, P("192.0.2.8"));
}

TEST(Stream, RefusesWhatIsNotAStreamAtAll)
{
    for (const char* bad : {"", "<html>502 Bad Gateway</html>", "[]", "null", "42", "{}",
                            R"({"new":{}})", R"({"new":"x"})", R"({"deleted":5})",
                            R"({"new":[)"})
        EXPECT_THROW(decode_stream(bad), std::runtime_error) << bad;
    EXPECT_THROW(decode_stream(std::string_view("{\"new\":[]}\0junk", 15)), std::runtime_error)
        << "a NUL and more after the document";
}

TEST(Ledger, BlocksForTheLongestDecisionAndLiftsWhenTheLastGoes)
{
    DecisionLedger l;
    StreamBatch b;
    b.added = {{1, P("192.0.2.7"), 100s, "", ""}, {2, P("192.0.2.7"), 300s, "", ""},
               {3, P("198.51.100.0/24"), 50s, "", ""}};
    auto c = l.apply(b, true, 1000);
    ASSERT_EQ(c.size(), 2u);
    EXPECT_EQ(c[0].prefix, P("192.0.2.7"));
    EXPECT_EQ(c[0].remaining, 300s);
    EXPECT_EQ(c[1].remaining, 50s);

    // The longer decision deleted: the other still holds, for its own time.
    StreamBatch d;
    d.deleted = {{2, P("192.0.2.7"), -1s, "", ""}};
    c = l.apply(d, false, 1010);
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].remaining, 90s);
    EXPECT_TRUE(l.holds(P("192.0.2.7")));

    d.deleted = {{1, P("192.0.2.7"), -1s, "", ""}};
    c = l.apply(d, false, 1020);
    ASSERT_EQ(c.size(), 1u);
    EXPECT_FALSE(c[0].remaining) << "the last decision gone: lifted";
    EXPECT_FALSE(l.holds(P("192.0.2.7")));

    // A deletion of what the ledger never held changes nothing.
    d.deleted = {{5, P("203.0.113.1"), -1s, "", ""}};
    EXPECT_TRUE(l.apply(d, false, 1030).empty());
}

TEST(Ledger, AStartupBatchReplacesEverything)
{
    DecisionLedger l;
    StreamBatch b;
    b.added = {{1, P("192.0.2.7"), 100s, "", ""}, {2, P("192.0.2.8"), 100s, "", ""}};
    l.apply(b, true, 0);
    b.added = {{2, P("192.0.2.8"), 90s, "", ""}};
    auto c = l.apply(b, true, 10);
    ASSERT_EQ(c.size(), 2u);
    EXPECT_EQ(c[0].prefix, P("192.0.2.7"));
    EXPECT_FALSE(c[0].remaining) << "not in the full pull: lifted";
    EXPECT_EQ(c[1].remaining, 90s);
    EXPECT_EQ(l.prefixes(), 1u);
}

TEST(Ledger, RoundsUpAndSkipsWhatIsOver)
{
    DecisionLedger l;
    StreamBatch b;
    b.added = {{1, P("192.0.2.7"), nanoseconds(400'000'000), "", ""},
               {2, P("192.0.2.8"), -2s, "", ""}, {3, P("192.0.2.9"), 0s, "", ""}};
    auto c = l.apply(b, false, 0);
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].remaining, 1s);
}

TEST(Alert, CarriesTheScanAndABanOfTheBlocksDuration)
{
    ScanAlert a;
    a.when = 1'800'000'000; // 2027-01-15T08:00:00Z
    a.src = *Address::parse("192.0.2.7");
    a.dst = *Address::parse("10.0.0.1");
    a.ports = {22, 80, 443, 8080};
    a.ifname = "eth0";
    a.threshold = 3;
    a.window = 60s;
    a.ban = 3600s;
    auto j = make_alert(a);
    EXPECT_EQ(j["scenario"], "connwatch/port-scan");
    EXPECT_EQ(j["start_at"], "2027-01-15T08:00:00Z");
    EXPECT_EQ(j["source"]["value"], "192.0.2.7");
    EXPECT_EQ(j["source"]["scope"], "Ip");
    EXPECT_EQ(j["events_count"], 4);
    EXPECT_EQ(j["remediation"], true);
    bool ports = false;
    for (const auto& m : j["events"][0]["meta"])
        ports |= m["key"] == "ports" && m["value"] == "22,80,443,8080";
    EXPECT_TRUE(ports) << j.dump();
    ASSERT_EQ(j["decisions"].size(), 1u);
    EXPECT_EQ(j["decisions"][0]["type"], "ban");
    EXPECT_EQ(j["decisions"][0]["duration"], "3600s");
    EXPECT_EQ(j["decisions"][0]["value"], "192.0.2.7");

    a.src = *Address::parse("2001:db8::5");
    a.ban.reset(); // monitor-only
    j = make_alert(a);
    EXPECT_EQ(j["source"]["ip"], "2001:db8::5");
    EXPECT_TRUE(j["decisions"].empty());
    EXPECT_EQ(j["remediation"], false) << "no profile may ban on a monitor-only report";
}

TEST(Alert, APrefixBlockIsSentAsARangeDecision)
{
    // ipv6-prefix: the scan was counted and blocked as the /64; the fleet is
    // told the /64 (scope Range), not the one address that crossed the line.
    ScanAlert a;
    a.when = 1'800'000'000;
    a.src = *Address::parse("2001:db8:1:2::5");
    a.dst = *Address::parse("2001:db8:9::1");
    a.ports = {22, 80, 443, 8080};
    a.ifname = "eth0";
    a.threshold = 3;
    a.window = std::chrono::seconds(60);
    a.ban = std::chrono::seconds(3600);
    a.range = *Cidr::parse("2001:db8:1:2::/64");
    auto j = make_alert(a);
    EXPECT_EQ(j["source"]["scope"], "Range");
    EXPECT_EQ(j["source"]["value"], "2001:db8:1:2::/64");
    EXPECT_EQ(j["source"]["range"], "2001:db8:1:2::/64");
    EXPECT_EQ(j["source"]["ip"], "2001:db8:1:2::5");
    ASSERT_EQ(j["decisions"].size(), 1u);
    EXPECT_EQ(j["decisions"][0]["scope"], "Range");
    EXPECT_EQ(j["decisions"][0]["value"], "2001:db8:1:2::/64");
    EXPECT_NE(j["message"].get<std::string>().find("2001:db8:1:2::/64"), std::string::npos)
        << j["message"];

    a.range.reset(); // per address, as before
    j = make_alert(a);
    EXPECT_EQ(j["source"]["scope"], "Ip");
    EXPECT_FALSE(j["source"].contains("range"));
    EXPECT_EQ(j["decisions"][0]["scope"], "Ip");
    EXPECT_EQ(j["decisions"][0]["value"], "2001:db8:1:2::5");
}

TEST(Credentials, ReadsTheFileCscliWrites)
{
    auto c = parse_machine_credentials(
        "url: http://127.0.0.1:8080/\nlogin: m1\npassword: 'p:w d'\n");
    EXPECT_EQ(c.url, "http://127.0.0.1:8080/");
    EXPECT_EQ(c.login, "m1");
    EXPECT_EQ(c.password, "p:w d");
    c = parse_machine_credentials("# x\n---\r\nlogin: \"m2\"\r\npassword: s\r\nurl: https://lapi:8080\r\n"
                                  "ca_cert_path: /x\n");
    EXPECT_EQ(c.login, "m2");
    EXPECT_EQ(c.url, "https://lapi:8080");
    for (const char* bad : {"", "url: http://x/\nlogin: m\n", "url: ftp://x/\nlogin: m\npassword: p\n",
                            "url http://x/\n", "login: m\npassword: p\n"})
        EXPECT_THROW(parse_machine_credentials(bad), std::runtime_error) << bad;
}

TEST(Credentials, TakesTheBouncerKeyAloneOnItsLine)
{
    EXPECT_EQ(parse_bouncer_key("  abc123DEF\n"), "abc123DEF");
    for (const char* bad : {"", "\n  \n", "two words\n", "a\nb\n"})
        EXPECT_THROW(parse_bouncer_key(bad), std::runtime_error) << bad;
}

TEST(Credentials, RefusesASecretEveryUserMayRead)
{
    TempDir tmp;
    ASSERT_FALSE(tmp.path.empty());
    std::string f = tmp / "key";
    std::ofstream(f) << "k3y\n";
    ASSERT_EQ(chmod(f.c_str(), 0644), 0);
    try {
        read_secret_file(f);
        ADD_FAILURE() << "a world-readable key was read";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("chmod o-r " + f), std::string::npos) << e.what();
    }
    ASSERT_EQ(chmod(f.c_str(), 0640), 0);
    EXPECT_EQ(read_secret_file(f), "k3y\n");
    EXPECT_THROW(read_secret_file(tmp / "absent"), std::runtime_error);
    EXPECT_THROW(read_secret_file(tmp.path), std::runtime_error) << "a directory";
}

TEST(Url, JoinsWithOneSlash)
{
    EXPECT_EQ(join_url("http://h:1/", "v1/alerts"), "http://h:1/v1/alerts");
    EXPECT_EQ(join_url("http://h:1", "/v1/alerts"), "http://h:1/v1/alerts");
}

TEST(Backoff, DoublesUpToAMinuteOrTheInterval)
{
    EXPECT_EQ(backoff(10s, 1), 10s);
    EXPECT_EQ(backoff(10s, 2), 20s);
    EXPECT_EQ(backoff(10s, 3), 40s);
    EXPECT_EQ(backoff(10s, 4), 60s);
    EXPECT_EQ(backoff(10s, 100), 60s);
    EXPECT_EQ(backoff(1s, 7), 60s);
    EXPECT_EQ(backoff(300s, 5), 300s);
}

// ---- the BlockTable's mirrored blocks

TEST_F(BlockTableTest, MirrorsADecisionAndWithdrawsOnlyItsOwn)
{
    auto m = table_->mirror(P("192.0.2.7"), 3600s, "crowdsec x");
    EXPECT_EQ(m.outcome, BlockTable::Mirror::Outcome::Added) << m.why;
    EXPECT_EQ(maps_.hosts.at(P("192.0.2.7")).origin, CW_ORIGIN_CROWDSEC);
    EXPECT_EQ(table_->counts().crowdsec, 1u);
    EXPECT_EQ(every_block(*table_).at(0).origin, BlockOrigin::Crowdsec);
    EXPECT_EQ(table_->mirror(P("192.0.2.7"), 7200s, "crowdsec y").outcome,
              BlockTable::Mirror::Outcome::Updated);

    // A manual block of the same prefix is the operator's: kept, never withdrawn.
    must_block("198.51.100.0/24", 60s);
    EXPECT_EQ(table_->mirror(P("198.51.100.0/24"), 3600s, "c").outcome,
              BlockTable::Mirror::Outcome::Kept);
    EXPECT_FALSE(table_->withdraw(P("198.51.100.0/24")));
    EXPECT_EQ(maps_.cidrs.at(P("198.51.100.0/24")).origin, CW_ORIGIN_MANUAL);

    EXPECT_EQ(table_->mirrored(), std::vector<Cidr>{P("192.0.2.7")});
    EXPECT_TRUE(table_->withdraw(P("192.0.2.7")));
    EXPECT_FALSE(maps_.hosts.count(P("192.0.2.7")));
    EXPECT_EQ(table_->removed(RemovalReason::Withdrawn), 1u);
    EXPECT_FALSE(table_->withdraw(P("192.0.2.7")));
}

TEST_F(BlockTableTest, AScanBlockStaysUnlessTheDecisionOutlastsIt)
{
    maps_.hosts[P("192.0.2.9")] = kernel_block(BlockOrigin::Scan, monotonic_now_ns() + 600 * kNsPerSec);
    table_->record_scan_block(*Address::parse("192.0.2.9"), "scan", std::time(nullptr),
                              std::time(nullptr) + 600);
    EXPECT_EQ(table_->mirror(P("192.0.2.9"), 590s, "c").outcome, BlockTable::Mirror::Outcome::Kept)
        << "the fleet's copy of this host's own scan";
    EXPECT_EQ(maps_.hosts.at(P("192.0.2.9")).origin, CW_ORIGIN_SCAN);
    EXPECT_EQ(table_->mirror(P("192.0.2.9"), 86400s, "c").outcome,
              BlockTable::Mirror::Outcome::Updated);
    EXPECT_EQ(maps_.hosts.at(P("192.0.2.9")).origin, CW_ORIGIN_CROWDSEC);
}

TEST_F(BlockTableTest, RefusesDecisionsTheAllowlistCoversOrTooWide)
{
    ASSERT_TRUE(table_->set_allow_sources({P("192.0.2.0/24")}, {P("10.1.2.3")}).error.empty());
    auto m = table_->mirror(P("192.0.2.7"), 3600s, "c");
    EXPECT_EQ(m.outcome, BlockTable::Mirror::Outcome::Refused);
    EXPECT_NE(m.why.find("192.0.2.0/24"), std::string::npos) << m.why;
    m = table_->mirror(P("0.0.0.0/0"), 3600s, "c");
    EXPECT_EQ(m.outcome, BlockTable::Mirror::Outcome::Refused) << "never forced";
    m = table_->mirror(P("10.1.2.0/24"), 3600s, "c");
    EXPECT_EQ(m.outcome, BlockTable::Mirror::Outcome::Refused) << "covers an own address";
    EXPECT_TRUE(maps_.hosts.empty());
    EXPECT_TRUE(maps_.cidrs.empty());
}

// A pull's decisions applied at once: mirror()'s policy item by item (the same
// path), one call to the maps for the batch.
TEST_F(BlockTableTest, MirrorsManyAtOnceWithMirrorsPolicy)
{
    ASSERT_TRUE(table_->set_allow_sources({P("192.0.2.0/24")}, {P("10.1.2.3")}).error.empty());
    must_block("198.51.100.7", 60s);
    auto done = table_->mirror_many({{P("203.0.113.1"), 3600s, "a"},
                                     {P("192.0.2.7"), 3600s, "allowlisted"},
                                     {P("198.51.100.7"), 3600s, "manual there"},
                                     {P("0.0.0.0/0"), 3600s, "too wide"},
                                     {P("203.0.113.1"), 60s, "twice"},
                                     {P("203.0.113.2"), 3600s, "b"},
                                     {P("203.0.113.3"), 3600s, "c"},
                                     {P("203.0.113.4"), 3600s, "full"},
                                     {P("2001:db8::/48"), 3600s, "range"}});
    using O = BlockTable::Mirror::Outcome;
    ASSERT_EQ(done.size(), 9u);
    EXPECT_EQ(done[0].outcome, O::Added);
    EXPECT_EQ(done[1].outcome, O::Refused);
    EXPECT_EQ(done[1].why, "covered by the allow entry 192.0.2.0/24");
    EXPECT_EQ(done[2].outcome, O::Kept);
    EXPECT_EQ(done[3].outcome, O::Refused);
    EXPECT_EQ(done[3].why.rfind("it is wider than /8", 0), 0u) << done[3].why;
    EXPECT_EQ(done[4].outcome, O::Kept) << "the first of a prefix counts";
    EXPECT_EQ(done[5].outcome, O::Added);
    EXPECT_EQ(done[6].outcome, O::Added);
    // max-blocks 4 in the fake: the manual block and three decisions.
    EXPECT_EQ(done[7].outcome, O::Refused);
    EXPECT_EQ(done[7].why, "the blocklist is full (max-blocks 4): unblock entries or raise max-blocks");
    EXPECT_EQ(done[8].outcome, O::Added) << done[8].why;
    EXPECT_EQ(table_->counts().crowdsec, 4u);
    EXPECT_EQ(maps_.hosts.at(P("203.0.113.1")).origin, CW_ORIGIN_CROWDSEC);
    EXPECT_EQ(maps_.hosts.at(P("198.51.100.7")).origin, CW_ORIGIN_MANUAL);

    // Updated in bulk too.
    done = table_->mirror_many({{P("203.0.113.1"), 7200s, "a again"}});
    EXPECT_EQ(done.at(0).outcome, O::Updated);

    // Withdrawn in bulk: only mirrored blocks, each once.
    auto lifted = table_->withdraw_many({P("203.0.113.1"), P("198.51.100.7"), P("203.0.113.2"),
                                         P("203.0.113.1"), P("192.0.2.99"), P("2001:db8::/48")});
    EXPECT_EQ(lifted, (std::vector<Cidr>{P("203.0.113.1"), P("203.0.113.2"), P("2001:db8::/48")}));
    EXPECT_EQ(table_->mirrored(), std::vector<Cidr>{P("203.0.113.3")});
    EXPECT_TRUE(maps_.hosts.count(P("198.51.100.7"))) << "the manual block stays";
    EXPECT_EQ(table_->removed(RemovalReason::Withdrawn), 3u);
}

// Refusals read the same whichever door a prefix comes through: the manual
// block's text names the fix, the decision's the reason alone.
TEST_F(BlockTableTest, ManualAndMirroredRefusalsShareTheirPolicy)
{
    ASSERT_TRUE(table_->set_allow_sources({P("192.0.2.0/24")}, {}).error.empty());
    auto manual = std::get<std::string>(table_->block(P("192.0.2.7"), 60s, "", false));
    auto mirrored = table_->mirror(P("192.0.2.7"), 60s, "").why;
    EXPECT_NE(manual.find(mirrored), std::string::npos) << manual << " / " << mirrored;
    EXPECT_NE(manual.find("connwatchctl disallow"), std::string::npos) << manual;
    manual = std::get<std::string>(table_->block(P("10.0.0.0/7"), 60s, "", false));
    mirrored = table_->mirror(P("10.0.0.0/7"), 60s, "").why;
    EXPECT_NE(manual.find(mirrored), std::string::npos) << manual << " / " << mirrored;
    EXPECT_NE(manual.find("--force"), std::string::npos) << manual;
}

TEST(TokenRefresh, AMinuteBeforeExpiryAtMostHalfAnHour)
{
    const std::time_t now = 1795578065; // 2026-11-25T03:41:05Z
    EXPECT_EQ(token_refresh_in("2026-11-25T04:41:05Z", now), 1800s) << "an hour: at most 30 min";
    EXPECT_EQ(token_refresh_in("2026-11-25T03:51:05Z", now), 540s) << "ten minutes: one before";
    EXPECT_EQ(token_refresh_in("2026-11-25T03:51:05.123456789Z", now), 540s) << "fractions";
    EXPECT_EQ(token_refresh_in("2026-11-25T03:41:35Z", now), 0s) << "nearly expired: now";
    EXPECT_EQ(token_refresh_in("2026-11-25T02:00:00Z", now), 0s) << "expired: now";
    EXPECT_EQ(token_refresh_in("", now), 1800s) << "unreadable: 30 minutes";
    EXPECT_EQ(token_refresh_in("tomorrow", now), 1800s);
}

TEST_F(BlockTableTest, MirroredBlocksOutliveARebootUntilThePullSaysOtherwise)
{
    table_->mirror(P("192.0.2.7"), 3600s, "crowdsec x");
    table_->mirror(P("2001:db8::/48"), 3600s, "crowdsec y");
    ASSERT_TRUE(table_->save_if_dirty().error.empty());
    // A reboot: the pinned maps are gone, the state file is not.
    FakeMaps fresh;
    BlockTable after(fresh, state());
    auto r = after.restore();
    EXPECT_EQ(r.restored_crowdsec, 2u) << r.warning;
    EXPECT_EQ(fresh.hosts.at(P("192.0.2.7")).origin, CW_ORIGIN_CROWDSEC);
    EXPECT_EQ(after.mirrored().size(), 2u);
}
