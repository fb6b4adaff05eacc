// SPDX-License-Identifier: GPL-2.0-only
// The control protocol's requests: every command parsed, every refusal word for
// word (scripts and docs/CONTROL.md quote them), and the client's encoding read
// back by the daemon's parser.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/duration.h"
#include "protocol/wire.h"

using namespace connwatch;
using namespace connwatch::protocol;

namespace {

Cidr cidr(const char* text)
{
    return Cidr::parse(text).value();
}

// Requests have no operator== (they need none in production): compare their
// wire form, which holds every field.
std::string show(const Request& r)
{
    return request_json(r).dump();
}

Request ok(const std::string& line)
{
    auto r = parse_request(line);
    if (auto* err = std::get_if<std::string>(&r)) {
        ADD_FAILURE() << line << " -> " << *err;
        return {};
    }
    return std::get<Request>(r);
}

std::string err(const std::string& line)
{
    auto r = parse_request(line);
    if (auto* e = std::get_if<std::string>(&r))
        return *e;
    ADD_FAILURE() << line << " was accepted";
    return "";
}

// One sample of every command, with every field it takes set.
std::vector<Request> samples()
{
    return {StatusRequest{},
            ListRequest{},
            BlockRequest{cidr("203.0.113.0/24"), std::chrono::seconds(600), "abuse report 1234"},
            BlockRequest{cidr("2001:db8::1"), std::nullopt, ""},
            BlockRequest{cidr("192.0.2.7"), std::chrono::seconds(0), ""},
            UnblockRequest{cidr("2001:db8::/32")},
            AllowRequest{cidr("10.0.0.0/8")},
            DisallowRequest{cidr("10.0.0.0/8")},
            FlushRequest{},
            ReloadRequest{},
            BlockRequest{cidr("0.0.0.0/0"), std::nullopt, "", true},
            ListRequest{BlockOrigin::Manual, cidr("10.0.0.0/8"), 20},
            BlockManyRequest{{{cidr("192.0.2.1"), std::nullopt, ""},
                              {cidr("198.51.100.0/24"), std::chrono::seconds(3600), "list x"}},
                             false},
            BlockManyRequest{{{cidr("0.0.0.0/0"), std::nullopt, ""}}, true},
            UnblockManyRequest{{cidr("192.0.2.1"), cidr("2001:db8::/32")}}};
}

} // namespace

TEST(ProtocolCommand, NamesRoundTrip)
{
    std::vector<std::string> names;
    for (Command c : kCommands) {
        names.emplace_back(to_string(c));
        EXPECT_EQ(command_from(to_string(c)), c);
        EXPECT_EQ(command_of(make_request(c, cidr("192.0.2.1"))), c);
    }
    EXPECT_EQ(names, (std::vector<std::string>{"status", "list", "block", "unblock", "allow",
                                               "disallow", "flush", "reload", "block-many",
                                               "unblock-many"}));
    EXPECT_EQ(command_from("Status"), std::nullopt);
    EXPECT_EQ(command_from(""), std::nullopt);
}

TEST(ProtocolCommand, MakeRequestNeedsAPrefixWhereTheCommandTakesOne)
{
    EXPECT_THROW(make_request(Command::Block), std::invalid_argument);
    EXPECT_THROW(make_request(Command::Unblock), std::invalid_argument);
    EXPECT_THROW(make_request(Command::Allow), std::invalid_argument);
    EXPECT_THROW(make_request(Command::Disallow), std::invalid_argument);
    EXPECT_NO_THROW(make_request(Command::Flush));
}

TEST(ProtocolRequest, ParsesEveryCommand)
{
    for (const char* c : {"status", "list", "flush", "reload"})
        EXPECT_EQ(to_string(command_of(ok(std::string(R"({"command":")") + c + "\"}"))), c);

    auto b = ok(R"({"command":"block","prefix":"192.0.2.0/24","duration":"1h","reason":"abuse"})");
    ASSERT_TRUE(std::holds_alternative<BlockRequest>(b));
    const auto& block = std::get<BlockRequest>(b);
    EXPECT_EQ(block.prefix.str(), "192.0.2.0/24");
    EXPECT_EQ(block.duration, std::chrono::seconds(3600));
    EXPECT_EQ(block.reason, "abuse");

    auto bare = std::get<BlockRequest>(ok(R"({"command":"block","prefix":"192.0.2.1"})"));
    EXPECT_EQ(bare.prefix.str(), "192.0.2.1/32");
    EXPECT_EQ(bare.duration, std::nullopt); // until removed
    EXPECT_EQ(bare.reason, "");

    auto u = ok(R"({"command":"unblock","prefix":"2001:db8::1"})");
    ASSERT_TRUE(std::holds_alternative<UnblockRequest>(u));
    EXPECT_EQ(std::get<UnblockRequest>(u).prefix.str(), "2001:db8::1/128");
    auto a = ok(R"({"command":"allow","prefix":"10.0.0.0/8"})");
    ASSERT_TRUE(std::holds_alternative<AllowRequest>(a));
    EXPECT_EQ(std::get<AllowRequest>(a).prefix.str(), "10.0.0.0/8");
    auto d = ok(R"({"command":"disallow","prefix":"10.0.0.0/8"})");
    ASSERT_TRUE(std::holds_alternative<DisallowRequest>(d));
    EXPECT_EQ(std::get<DisallowRequest>(d).prefix.str(), "10.0.0.0/8");
}

TEST(ProtocolRequest, AcceptsTheLineWithItsNewlineAndAnyKeyOrder)
{
    auto r = ok("{\"reason\":\"x\",\"prefix\":\"192.0.2.1\",\"command\":\"block\"}\n");
    EXPECT_EQ(std::get<BlockRequest>(r).reason, "x");
}

TEST(ProtocolRequest, RefusesMalformedRequestsWordForWord)
{
    const std::string malformed = "malformed request: expected one JSON object";
    EXPECT_EQ(err(""), malformed);
    EXPECT_EQ(err("not json"), malformed);
    EXPECT_EQ(err("[1,2]"), malformed);
    EXPECT_EQ(err("\"status\""), malformed);
    EXPECT_EQ(err("{}"), "malformed request: \"command\" (a string) is missing");
    EXPECT_EQ(err(R"({"command":42})"), "malformed request: \"command\" (a string) is missing");
    EXPECT_EQ(err(R"({"command":"shutdown"})"),
              "unknown command 'shutdown' (known: status, list, block, unblock, allow, "
              "disallow, flush, reload, block-many, unblock-many)");
    EXPECT_EQ(err(R"({"command":"list","extra":1})"), "malformed request: unknown field \"extra\"");
    // An unknown field is refused before a known field's value is looked at.
    EXPECT_EQ(err(R"({"command":"block","prefix":7,"zzz":1})"),
              "malformed request: unknown field \"zzz\"");
}

TEST(ProtocolRequest, RefusesFieldsACommandDoesNotTake)
{
    for (const char* c : {"status", "list", "flush", "reload"}) {
        std::string cmd = c;
        EXPECT_EQ(err(R"({"command":")" + cmd + R"(","prefix":"1.2.3.4"})"),
                  "'" + cmd + "' takes no prefix");
        EXPECT_EQ(err(R"({"command":")" + cmd + R"(","duration":"1h"})"),
                  "'" + cmd + "' takes no duration");
        EXPECT_EQ(err(R"({"command":")" + cmd + R"(","reason":"x"})"),
                  "'" + cmd + "' takes no reason");
    }
    for (const char* c : {"unblock", "allow", "disallow"}) {
        std::string cmd = c;
        EXPECT_EQ(err(R"({"command":")" + cmd + R"(","prefix":"1.2.3.4","duration":"1h"})"),
                  "'" + cmd + "' takes no duration");
        EXPECT_EQ(err(R"({"command":")" + cmd + R"(","prefix":"1.2.3.4","reason":"x"})"),
                  "'" + cmd + "' takes no reason");
    }
}

TEST(ProtocolRequest, RefusesBadPrefixesWordForWord)
{
    for (const char* c : {"block", "unblock", "allow", "disallow"}) {
        std::string cmd = c;
        EXPECT_EQ(err(R"({"command":")" + cmd + "\"}"), "'" + cmd + "' needs an address or prefix");
        EXPECT_EQ(err(R"({"command":")" + cmd + R"(","prefix":7})"),
                  "malformed request: \"prefix\" must be a string");
        for (const char* bad : {"10.0.0.1/8", "300.1.1.1", "10.0.0.0/33", ""}) {
            std::string why;
            ASSERT_FALSE(Cidr::parse(bad, &why));
            EXPECT_EQ(err(R"({"command":")" + cmd + R"(","prefix":")" + bad + "\"}"), why);
        }
    }
    EXPECT_NE(err(R"({"command":"block","prefix":"10.0.0.1/8"})").find("did you mean"),
              std::string::npos);
}

TEST(ProtocolRequest, RefusesBadDurationsAndReasonsWordForWord)
{
    const std::string block = R"({"command":"block","prefix":"1.2.3.4",)";
    std::string why;
    ASSERT_FALSE(parse_duration("soon", &why));
    EXPECT_EQ(err(block + R"("duration":"soon"})"), why);
    EXPECT_NE(why.find("not a duration"), std::string::npos);
    EXPECT_EQ(err(block + R"("duration":60})"),
              "malformed request: \"duration\" must be a string like \"1h\"");
    EXPECT_EQ(err(block + R"("reason":5})"), "malformed request: \"reason\" must be a string");
    EXPECT_EQ(err(block + R"("reason":"a\nb"})"), "reason must not contain control characters");
    EXPECT_EQ(err(block + R"("reason":"a\u007fb"})"),
              "reason must not contain control characters");
    EXPECT_EQ(err(block + R"("reason":")" + std::string(257, 'x') + "\"}"),
              "reason too long (at most 256 bytes)");
    EXPECT_EQ(std::get<BlockRequest>(ok(block + R"("reason":")" + std::string(256, 'x') + "\"}"))
                  .reason.size(),
              256u);
}

TEST(ProtocolRequest, ForceIsAnOptionalBooleanOfBlockOnly)
{
    const std::string block = R"({"command":"block","prefix":"0.0.0.0/0")";
    EXPECT_TRUE(std::get<BlockRequest>(ok(block + R"(,"force":true})")).force);
    EXPECT_FALSE(std::get<BlockRequest>(ok(block + R"(,"force":false})")).force);
    EXPECT_FALSE(std::get<BlockRequest>(ok(block + "}")).force) << "absent: not forced";
    for (const char* bad : {R"("true")", "1", "null"})
        EXPECT_EQ(err(block + R"(,"force":)" + bad + "}"),
                  "malformed request: \"force\" must be true or false");
    EXPECT_EQ(err(R"({"command":"unblock","prefix":"0.0.0.0/0","force":true})"),
              "'unblock' takes no force");
    EXPECT_EQ(err(R"({"command":"flush","force":true})"), "'flush' takes no force");
    // Sent only when true: a connwatchd from before the field refuses unknown
    // fields, and must keep taking every ordinary block.
    EXPECT_EQ(show(BlockRequest{cidr("0.0.0.0/0"), std::nullopt, "", true}),
              R"({"command":"block","force":true,"prefix":"0.0.0.0/0"})");
    EXPECT_EQ(show(BlockRequest{cidr("192.0.2.1"), std::nullopt, "", false}),
              R"({"command":"block","prefix":"192.0.2.1/32"})");
}

TEST(ProtocolRequest, RefusesOversizedRequests)
{
    std::string big = R"({"command":"block","prefix":"1.2.3.4","reason":")" +
                      std::string(kMaxRequestBytes, 'x') + "\"}";
    EXPECT_EQ(err(big), "request too large (at most 65536 bytes)");
}

TEST(ProtocolRequest, AcceptsTheVersionItSpeaksAndRefusesOthers)
{
    EXPECT_EQ(kVersion, 1);
    EXPECT_EQ(command_of(ok(R"({"command":"status","protocol":1})")), Command::Status);
    auto b = ok(R"({"protocol":1,"command":"block","prefix":"192.0.2.1","duration":"1m"})");
    EXPECT_EQ(std::get<BlockRequest>(b).duration, std::chrono::seconds(60));
    EXPECT_EQ(err(R"({"command":"status","protocol":2})"),
              "unsupported protocol version 2 (this connwatchd speaks 1)");
    EXPECT_EQ(err(R"({"command":"status","protocol":0})"),
              "unsupported protocol version 0 (this connwatchd speaks 1)");
    EXPECT_EQ(err(R"({"command":"status","protocol":-1})"),
              "unsupported protocol version -1 (this connwatchd speaks 1)");
    for (const char* bad : {R"("1")", "1.5", "null", "true"})
        EXPECT_EQ(err(std::string(R"({"command":"status","protocol":)") + bad + "}"),
                  "malformed request: \"protocol\" must be a whole number");
}

TEST(ProtocolRequest, EncodesAsTodaysClientsDo)
{
    // No "protocol" while it is 1: a connwatchd from before the field refuses
    // unknown fields, and must keep understanding a new connwatchctl.
    EXPECT_EQ(show(StatusRequest{}), R"({"command":"status"})");
    EXPECT_EQ(show(FlushRequest{}), R"({"command":"flush"})");
    EXPECT_EQ(show(BlockRequest{cidr("203.0.113.0/24"), std::chrono::seconds(86400), "why"}),
              R"({"command":"block","duration":"1d","prefix":"203.0.113.0/24","reason":"why"})");
    EXPECT_EQ(show(BlockRequest{cidr("192.0.2.1"), std::nullopt, ""}),
              R"({"command":"block","prefix":"192.0.2.1/32"})");
    EXPECT_EQ(show(UnblockRequest{cidr("2001:db8::/32")}),
              R"({"command":"unblock","prefix":"2001:db8::/32"})");
    EXPECT_EQ(show(AllowRequest{cidr("10.0.0.0/8")}),
              R"({"command":"allow","prefix":"10.0.0.0/8"})");
    EXPECT_EQ(show(DisallowRequest{cidr("10.0.0.0/8")}),
              R"({"command":"disallow","prefix":"10.0.0.0/8"})");
}

TEST(ProtocolRequest, EveryCommandRoundTripsThroughTheClientEncoding)
{
    std::vector<Command> seen;
    for (const auto& r : samples()) {
        auto back = ok(request_json(r).dump());
        EXPECT_EQ(back.index(), r.index()) << show(r);
        EXPECT_EQ(show(back), show(r));
        seen.push_back(command_of(back));
    }
    for (Command c : kCommands)
        EXPECT_NE(std::find(seen.begin(), seen.end(), c), seen.end()) << to_string(c);
    // The fields themselves, not only their text.
    auto b = std::get<BlockRequest>(ok(show(samples()[2])));
    EXPECT_EQ(b.prefix, cidr("203.0.113.0/24"));
    EXPECT_EQ(b.duration, std::chrono::seconds(600));
    EXPECT_EQ(b.reason, "abuse report 1234");
    EXPECT_EQ(std::get<BlockRequest>(ok(show(samples()[4]))).duration, std::chrono::seconds(0));
}
