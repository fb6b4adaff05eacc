// SPDX-License-Identifier: GPL-2.0-only
// The control protocol's answers: every response type's exact wire keys (scripts
// read `connwatchctl --json`), its round trip through to_json/from_json, and
// dispatch(): each command reaches its Handler method, and a Refusal or an
// exception becomes {"ok":false,"error":...}.
#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <string>

#include "base/error.h"
#include "protocol/wire.h"

using namespace connwatch;
using namespace connwatch::protocol;
using nlohmann::json;

namespace {

Cidr cidr(const char* text)
{
    return Cidr::parse(text).value();
}

std::set<std::string> keys(const json& j)
{
    std::set<std::string> out;
    for (const auto& [k, v] : j.items())
        out.insert(k);
    return out;
}

StatusResponse sample_status()
{
    StatusResponse s;
    s.version = "0.1.0";
    s.pid = 4242;
    s.interfaces = {{"eth0", "native"}, {"veth1", "generic"}};
    s.missing_interfaces = {"veth2"};
    s.threshold = 3;
    s.window = "1m";
    s.block_duration = "10m";
    s.monitor_only = true;
    s.max_blocks = 65536;
    s.blocks = 7;
    s.allow = 3;
    s.counters = {{"drop_blocked", 12}, {"pass_syn", 1ull << 40}}; // by name, as JSON orders them
    return s;
}

ListResponse sample_list()
{
    ListResponse l;
    l.blocks = {{cidr("10.231.1.2"), BlockOrigin::Scan, "Port scan detected: x", 1795578065,
                 1795581665, 3599},
                {cidr("203.0.113.0/24"), BlockOrigin::Manual, "", 1795578000, 0, -1}};
    l.allow = {{cidr("127.0.0.0/8"), AllowSource::OwnAddress},
               {cidr("10.0.0.0/8"), AllowSource::Configuration},
               {cidr("2001:db8::/32"), AllowSource::Connwatchctl}};
    return l;
}

} // namespace

TEST(ProtocolResponse, StatusHasTodaysKeysAndRoundTrips)
{
    json j = sample_status();
    EXPECT_EQ(keys(j), (std::set<std::string>{"version", "pid", "interfaces",
                                              "missing_interfaces", "threshold", "window",
                                              "block_duration", "monitor_only", "max_blocks",
                                              "blocks", "allow", "counters"}));
    EXPECT_EQ(j["missing_interfaces"], json::parse(R"(["veth2"])"));
    EXPECT_EQ(j["interfaces"], json::parse(R"([{"name":"eth0","xdp_mode":"native"},
                                                {"name":"veth1","xdp_mode":"generic"}])"));
    EXPECT_EQ(j["counters"], json::parse(R"({"drop_blocked":12,"pass_syn":1099511627776})"));
    EXPECT_EQ(j["window"], "1m");
    EXPECT_EQ(j["monitor_only"], true);

    auto back = j.get<StatusResponse>();
    EXPECT_EQ(back.version, "0.1.0");
    EXPECT_EQ(back.pid, 4242);
    ASSERT_EQ(back.interfaces.size(), 2u);
    EXPECT_EQ(back.interfaces[1].name, "veth1");
    EXPECT_EQ(back.interfaces[1].xdp_mode, "generic");
    EXPECT_EQ(back.missing_interfaces, std::vector<std::string>{"veth2"});
    EXPECT_EQ(back.threshold, 3u);
    EXPECT_EQ(back.window, "1m");
    EXPECT_EQ(back.block_duration, "10m");
    EXPECT_TRUE(back.monitor_only);
    EXPECT_EQ(back.max_blocks, 65536u);
    EXPECT_EQ(back.blocks, 7u);
    EXPECT_EQ(back.allow, 3u);
    EXPECT_EQ(back.counters, sample_status().counters);
    EXPECT_EQ(json(back), j);

    // A connwatchd from before the field: no missing interfaces, not an error.
    j.erase("missing_interfaces");
    EXPECT_TRUE(j.get<StatusResponse>().missing_interfaces.empty());
    EXPECT_FALSE(j.get<StatusResponse>().crowdsec) << "no CrowdSec: no key";
}

TEST(ProtocolResponse, StatusCarriesTheCrowdsecLinkWhenConfigured)
{
    StatusResponse s = sample_status();
    CrowdsecStatus cs;
    cs.bouncer = CrowdsecStatus::Bouncer{"https://lapi:8080/", 1795578065, 42, 0, 0};
    s.crowdsec = cs;
    json j = s;
    EXPECT_EQ(j["crowdsec"], json::parse(R"({"bouncer":{"lapi_url":"https://lapi:8080/",
        "last_pull":1795578065,"decisions":42,"failing_since":0,"failed_pulls":0}})"));
    auto back = j.get<StatusResponse>();
    ASSERT_TRUE(back.crowdsec && back.crowdsec->bouncer);
    EXPECT_FALSE(back.crowdsec->watcher);
    EXPECT_EQ(back.crowdsec->bouncer->decisions, 42u);
    EXPECT_EQ(json(back), j);

    cs.watcher = CrowdsecStatus::Watcher{"http://lapi:8080/", "h1", 5, 2, 1, 1795578000};
    s.crowdsec = cs;
    j = s;
    EXPECT_EQ(j["crowdsec"]["watcher"], json::parse(R"({"url":"http://lapi:8080/","login":"h1",
        "alerts_sent":5,"alerts_queued":2,"alerts_dropped":1,"failing_since":1795578000})"));
    EXPECT_EQ(json(j.get<StatusResponse>()), j);
}

TEST(ProtocolResponse, StatusCarriesTheRpFilterMode)
{
    StatusResponse s = sample_status();
    s.rp_filter = RpFilterStatus{"auto", true, {{"veth1", "off"}, {"eth0", "strict"}}};
    json j = s;
    // Only added: the keys of before are all there, unchanged.
    auto before = keys(json(sample_status()));
    before.insert("rp_filter");
    EXPECT_EQ(keys(j), before);
    EXPECT_EQ(j["rp_filter"], json::parse(R"({"mode":"auto","active":true,
        "interfaces":{"eth0":"strict","veth1":"off"}})"));
    auto back = j.get<StatusResponse>();
    ASSERT_TRUE(back.rp_filter);
    EXPECT_EQ(back.rp_filter->mode, "auto");
    EXPECT_TRUE(back.rp_filter->active);
    EXPECT_EQ(json(back), j);

    s.rp_filter = RpFilterStatus{"strict", false, {}};
    j = s;
    EXPECT_EQ(j["rp_filter"],
              json::parse(R"({"mode":"strict","active":false,"interfaces":{}})"));
    EXPECT_EQ(json(j.get<StatusResponse>()), j);

    // A connwatchd from before the field: none, not an error.
    j.erase("rp_filter");
    EXPECT_FALSE(j.get<StatusResponse>().rp_filter);
}

TEST(ProtocolResponse, RpFilterInWords)
{
    // connwatchctl status's "Rp-filter:" line.
    EXPECT_EQ(describe(RpFilterStatus{"auto", true, {{"eth0", "strict"}, {"eth1", "off"}}}),
              "auto (eth0 strict, eth1 off)");
    EXPECT_EQ(describe(RpFilterStatus{"auto", true, {}}), "auto");
    EXPECT_EQ(describe(RpFilterStatus{"strict", true, {}}), "strict");
    EXPECT_EQ(describe(RpFilterStatus{"loose", true, {}}), "loose");
    EXPECT_EQ(describe(RpFilterStatus{"off", false, {}}), "off");
    EXPECT_EQ(describe(RpFilterStatus{"auto", false, {{"eth0", "strict"}}}),
              "auto, not checking: no route mirror (the log says why)");
}

TEST(ProtocolResponse, ListHasTodaysKeysAndRoundTrips)
{
    json j = sample_list();
    EXPECT_EQ(keys(j), (std::set<std::string>{"blocks", "allow"}));
    EXPECT_EQ(j["blocks"][0], json::parse(R"({"prefix":"10.231.1.2/32","origin":"scan",
        "reason":"Port scan detected: x","created":1795578065,"expires":1795581665,
        "expires_in":3599,"offence":0})"));
    EXPECT_EQ(j["blocks"][1]["expires"], 0);
    EXPECT_EQ(j["blocks"][1]["expires_in"], -1);
    EXPECT_EQ(j["blocks"][1]["origin"], "manual");
    EXPECT_EQ(j["allow"], json::parse(R"([{"prefix":"127.0.0.0/8","source":"own-address"},
        {"prefix":"10.0.0.0/8","source":"configuration"},
        {"prefix":"2001:db8::/32","source":"connwatchctl"}])"));

    auto back = j.get<ListResponse>();
    ASSERT_EQ(back.blocks.size(), 2u);
    EXPECT_EQ(back.blocks[0].prefix, cidr("10.231.1.2"));
    EXPECT_EQ(back.blocks[0].origin, BlockOrigin::Scan);
    EXPECT_EQ(back.blocks[0].reason, "Port scan detected: x");
    EXPECT_EQ(back.blocks[0].created, 1795578065);
    EXPECT_EQ(back.blocks[0].expires, 1795581665);
    EXPECT_EQ(back.blocks[0].expires_in, 3599);
    EXPECT_EQ(back.blocks[1].origin, BlockOrigin::Manual);
    EXPECT_EQ(back.blocks[1].expires_in, -1);
    ASSERT_EQ(back.allow.size(), 3u);
    EXPECT_EQ(back.allow[0].source, AllowSource::OwnAddress);
    EXPECT_EQ(back.allow[2].prefix, cidr("2001:db8::/32"));
    EXPECT_EQ(back.allow[2].source, AllowSource::Connwatchctl);
    EXPECT_EQ(json(back), j);

    // A connwatchd from before repeat offenders: no offence, read as 0.
    j["blocks"][0]["offence"] = 3;
    EXPECT_EQ(j.get<ListResponse>().blocks[0].offence, 3u);
    j["blocks"][0].erase("offence");
    EXPECT_EQ(j.get<ListResponse>().blocks[0].offence, 0u);

    // Empty lists are arrays, as scripts iterate them.
    EXPECT_EQ(json(ListResponse{}).dump(), R"({"allow":[],"blocks":[]})");
}

TEST(ProtocolResponse, SmallResponsesHaveTodaysKeysAndRoundTrip)
{
    json b = BlockResponse{cidr("203.0.113.0/24"), 1795664462};
    EXPECT_EQ(b.dump(), R"({"expires":1795664462,"prefix":"203.0.113.0/24"})");
    auto bb = b.get<BlockResponse>();
    EXPECT_EQ(bb.prefix, cidr("203.0.113.0/24"));
    EXPECT_EQ(bb.expires, 1795664462);

    json p = PrefixResponse{cidr("2001:db8::1")};
    EXPECT_EQ(p.dump(), R"({"prefix":"2001:db8::1/128"})");
    EXPECT_EQ(p.get<PrefixResponse>().prefix, cidr("2001:db8::1"));

    json f = FlushResponse{12};
    EXPECT_EQ(f.dump(), R"({"removed":12})");
    EXPECT_EQ(f.get<FlushResponse>().removed, 12u);

    json r = ReloadResponse{};
    EXPECT_EQ(r.dump(), "{}");
    EXPECT_NO_THROW(r.get<ReloadResponse>());
}

TEST(ProtocolResponse, ReadingRefusesAnswersThatAreNotOne)
{
    // A typed reader prints no made-up defaults: a missing or invalid field throws.
    EXPECT_THROW(json::parse(R"({"ok":true})").get<StatusResponse>(), json::exception);
    EXPECT_THROW(json::parse(R"({"ok":true,"expires":1})").get<BlockResponse>(), json::exception);
    EXPECT_THROW(json::parse(R"({"prefix":"10.0.0.1/8"})").get<PrefixResponse>(), Error);
    EXPECT_THROW(json::parse(R"({"removed":"many"})").get<FlushResponse>(), json::exception);
    json l = sample_list();
    l["blocks"][0]["origin"] = "magic";
    EXPECT_THROW(l.get<ListResponse>(), Error);
    l = sample_list();
    l["allow"][0]["source"] = "elsewhere";
    EXPECT_THROW(l.get<ListResponse>(), Error);
}

TEST(ProtocolResponse, AnswerFromTellsRefusalsFromResponses)
{
    auto refused = answer_from<FlushResponse>(json::parse(R"({"ok":false,"error":"no"})"));
    ASSERT_TRUE(std::holds_alternative<Refusal>(refused));
    EXPECT_EQ(std::get<Refusal>(refused).error, "no");
    auto done = answer_from<FlushResponse>(json::parse(R"({"ok":true,"removed":3})"));
    ASSERT_TRUE(std::holds_alternative<FlushResponse>(done));
    EXPECT_EQ(std::get<FlushResponse>(done).removed, 3u);
    // Anything but "ok": true is a refusal, never a success with defaults.
    for (const char* s :
         {R"({"removed":3})", R"({"ok":"true","removed":3})", R"({"ok":1})", "[]"})
        EXPECT_EQ(refusal_in(json::parse(s)).value_or(Refusal{"none"}).error, "unknown error") << s;
    EXPECT_FALSE(refusal_in(json::parse(R"({"ok":true})")));
}

// ---- dispatch ---------------------------------------------------------------------------

namespace {

// Records what reached it; answers, refuses or throws as told.
class FakeHandler : public Handler {
public:
    enum class Mode { Answer, Refuse, Throw, ThrowOther } mode = Mode::Answer;
    std::string called;
    Cidr prefix;
    Peer peer;
    bool forced = false; // the block request's force
    ListRequest listed;  // the list request's filters

    Answer<StatusResponse> status(const Peer& p) override
    {
        return act("status", {}, p, sample_status());
    }
    Answer<ListStream> list(const ListRequest& r, const Peer& p) override
    {
        listed = r;
        return act("list", {}, p, list_stream(sample_list()));
    }
    Answer<BlockManyResponse> block_many(const BlockManyRequest& r, const Peer& p) override
    {
        forced = r.force;
        return act("block-many", {}, p, BlockManyResponse{2, 1, {{2, "no"}}});
    }
    Answer<UnblockManyResponse> unblock_many(const UnblockManyRequest&, const Peer& p) override
    {
        return act("unblock-many", {}, p, UnblockManyResponse{4, 1});
    }
    Answer<BlockResponse> block(const BlockRequest& r, const Peer& p) override
    {
        forced = r.force;
        return act("block", r.prefix, p, BlockResponse{r.prefix, 1795664462});
    }
    Answer<PrefixResponse> unblock(const UnblockRequest& r, const Peer& p) override
    {
        return act("unblock", r.prefix, p, PrefixResponse{r.prefix});
    }
    Answer<PrefixResponse> allow(const AllowRequest& r, const Peer& p) override
    {
        return act("allow", r.prefix, p, PrefixResponse{r.prefix});
    }
    Answer<PrefixResponse> disallow(const DisallowRequest& r, const Peer& p) override
    {
        return act("disallow", r.prefix, p, PrefixResponse{r.prefix});
    }
    Answer<FlushResponse> flush(const Peer& p) override
    {
        return act("flush", {}, p, FlushResponse{5});
    }
    Answer<ReloadResponse> reload(const Peer& p) override
    {
        return act("reload", {}, p, ReloadResponse{});
    }

private:
    template <class T>
    Answer<T> act(const char* name, const Cidr& c, const Peer& p, T&& response)
    {
        called = name;
        prefix = c;
        peer = p;
        if (mode == Mode::Refuse)
            return Refusal{std::string(name) + " refused"};
        if (mode == Mode::Throw)
            throw std::runtime_error(std::string(name) + " broke");
        if (mode == Mode::ThrowOther)
            throw 42;
        return std::move(response);
    }
};

const Peer kPeer{1234, 1000, 1000};

Request sample(Command c)
{
    return make_request(c, cidr("198.51.100.0/24"), std::chrono::seconds(60), "r");
}

} // namespace

TEST(ProtocolDispatch, EveryCommandReachesItsMethod)
{
    for (Command c : kCommands) {
        FakeHandler h;
        json answer = dispatch(h, sample(c), kPeer);
        EXPECT_EQ(h.called, to_string(c));
        EXPECT_EQ(h.peer.pid, 1234);
        EXPECT_EQ(h.peer.uid, 1000u);
        EXPECT_EQ(answer["ok"], true) << answer;
        bool takes_prefix = c == Command::Block || c == Command::Unblock ||
                            c == Command::Allow || c == Command::Disallow;
        EXPECT_EQ(h.prefix, takes_prefix ? cidr("198.51.100.0/24") : Cidr{}) << to_string(c);
    }
}

TEST(ProtocolDispatch, AnswersAreTodaysWireLines)
{
    FakeHandler h;
    EXPECT_EQ(dispatch(h, sample(Command::Block), kPeer).dump(),
              R"({"expires":1795664462,"ok":true,"prefix":"198.51.100.0/24"})");
    EXPECT_EQ(dispatch(h, sample(Command::Unblock), kPeer).dump(),
              R"({"ok":true,"prefix":"198.51.100.0/24"})");
    EXPECT_EQ(dispatch(h, sample(Command::Flush), kPeer).dump(), R"({"ok":true,"removed":5})");
    EXPECT_EQ(dispatch(h, sample(Command::Reload), kPeer).dump(), R"({"ok":true})");
    json status = dispatch(h, sample(Command::Status), kPeer);
    EXPECT_EQ(status["threshold"], 3);
    EXPECT_EQ(status.size(), 13u); // the twelve fields and "ok"
    json list = dispatch(h, sample(Command::List), kPeer);
    EXPECT_EQ(keys(list), (std::set<std::string>{"ok", "blocks", "allow"}));
    EXPECT_EQ(list["blocks"].size(), 2u);
}

TEST(ProtocolDispatch, ForceReachesTheHandlerAsSent)
{
    for (bool force : {false, true}) {
        FakeHandler h;
        std::string line = R"({"command":"block","prefix":"0.0.0.0/0")";
        line += force ? R"(,"force":true})" : "}";
        auto req = parse_request(line);
        ASSERT_TRUE(std::holds_alternative<Request>(req)) << line;
        EXPECT_EQ(dispatch(h, std::get<Request>(req), kPeer)["ok"], true);
        EXPECT_EQ(h.forced, force) << line;
    }
}

TEST(ProtocolDispatch, ARefusalBecomesOkFalse)
{
    for (Command c : kCommands) {
        FakeHandler h;
        h.mode = FakeHandler::Mode::Refuse;
        EXPECT_EQ(dispatch(h, sample(c), kPeer),
                  json({{"ok", false}, {"error", std::string(to_string(c)) + " refused"}}));
    }
}

TEST(ProtocolDispatch, AnExceptionBecomesAnErrorAnswer)
{
    for (Command c : kCommands) {
        FakeHandler h;
        h.mode = FakeHandler::Mode::Throw;
        json answer;
        ASSERT_NO_THROW(answer = dispatch(h, sample(c), kPeer));
        EXPECT_EQ(answer, json({{"ok", false}, {"error", std::string(to_string(c)) + " broke"}}));
        h.mode = FakeHandler::Mode::ThrowOther;
        ASSERT_NO_THROW(answer = dispatch(h, sample(c), kPeer));
        EXPECT_EQ(answer["ok"], false);
        EXPECT_EQ(answer["error"], "internal error: the request failed");
    }
}
