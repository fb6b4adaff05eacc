// SPDX-License-Identifier: GPL-2.0-only
#include <gtest/gtest.h>

#include <grp.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "control/server.h"

using namespace connwatch;

namespace {

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

} // namespace

TEST(ControlProtocol, ParsesEveryCommand)
{
    for (const char* c : {"status", "list", "flush", "reload"})
        EXPECT_EQ(ok(std::string(R"({"command":")") + c + "\"}").command, c);
    auto b = ok(R"({"command":"block","prefix":"192.0.2.0/24","duration":"1h","reason":"abuse"})");
    EXPECT_EQ(b.command, "block");
    ASSERT_TRUE(b.prefix);
    EXPECT_EQ(b.prefix->str(), "192.0.2.0/24");
    EXPECT_EQ(b.duration, std::chrono::seconds(3600));
    EXPECT_EQ(b.reason, "abuse");
    EXPECT_EQ(ok(R"({"command":"unblock","prefix":"2001:db8::1"})").prefix->str(),
              "2001:db8::1/128");
    EXPECT_TRUE(ok(R"({"command":"allow","prefix":"10.0.0.0/8"})").prefix);
    EXPECT_TRUE(ok(R"({"command":"disallow","prefix":"10.0.0.0/8"})").prefix);
}

TEST(ControlProtocol, RoundTripsThroughTheClientEncoding)
{
    Request r{"block", Cidr::parse("203.0.113.0/24"), std::chrono::seconds(600), "why"};
    auto back = ok(request_json(r).dump());
    EXPECT_EQ(back.command, r.command);
    EXPECT_EQ(back.prefix, r.prefix);
    EXPECT_EQ(back.duration, r.duration);
    EXPECT_EQ(back.reason, r.reason);
}

TEST(ControlProtocol, RejectsMalformedRequests)
{
    EXPECT_NE(err("").find("malformed"), std::string::npos);
    EXPECT_NE(err("not json").find("malformed"), std::string::npos);
    EXPECT_NE(err("[1,2]").find("expected one JSON object"), std::string::npos);
    EXPECT_NE(err("{}").find("\"command\""), std::string::npos);
    EXPECT_NE(err(R"({"command":42})").find("\"command\""), std::string::npos);
    EXPECT_NE(err(R"({"command":"shutdown"})").find("unknown command 'shutdown'"),
              std::string::npos);
    EXPECT_NE(err(R"({"command":"list","extra":1})").find("unknown field \"extra\""),
              std::string::npos);
    EXPECT_NE(err(R"({"command":"block"})").find("needs an address"), std::string::npos);
    EXPECT_NE(err(R"({"command":"block","prefix":7})").find("must be a string"),
              std::string::npos);
    EXPECT_NE(err(R"({"command":"block","prefix":"10.0.0.1/8"})").find("did you mean"),
              std::string::npos);
    EXPECT_NE(err(R"({"command":"block","prefix":"1.2.3.4","duration":"soon"})")
                  .find("not a duration"),
              std::string::npos);
    EXPECT_NE(err(R"({"command":"block","prefix":"1.2.3.4","duration":60})")
                  .find("must be a string"),
              std::string::npos);
    EXPECT_NE(err(R"({"command":"status","prefix":"1.2.3.4"})").find("takes no prefix"),
              std::string::npos);
    EXPECT_NE(err(R"({"command":"unblock","prefix":"1.2.3.4","duration":"1h"})")
                  .find("takes no duration"),
              std::string::npos);
    EXPECT_NE(err(R"({"command":"block","prefix":"1.2.3.4","reason":"a\nb"})")
                  .find("control characters"),
              std::string::npos);
    EXPECT_NE(err(R"({"command":"block","prefix":"1.2.3.4","reason":")" + std::string(300, 'x') +
                  "\"}")
                  .find("reason too long"),
              std::string::npos);
}

TEST(ControlProtocol, RejectsOversizedRequests)
{
    std::string big = R"({"command":"block","prefix":"1.2.3.4","reason":")" +
                      std::string(kMaxRequestBytes, 'x') + "\"}";
    EXPECT_NE(err(big).find("request too large"), std::string::npos);
}

namespace {

// A scratch directory for a control socket, removed afterwards.
struct SocketDir {
    std::string dir;
    SocketDir()
    {
        char tmpl[] = "/tmp/cw-control-test.XXXXXX";
        const char* d = mkdtemp(tmpl);
        dir = d ? d : "";
    }
    ~SocketDir() { std::filesystem::remove_all(dir); }
    std::string sock() const { return dir + "/control.sock"; }
};

unsigned mode_of(const std::string& path)
{
    struct stat st{};
    return stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

// Refuses everything: these tests never send a request.
struct NoHandler final : protocol::Handler {
    protocol::Refusal no() const { return {"no"}; }
    protocol::Answer<protocol::StatusResponse> status(const Peer&) override { return no(); }
    protocol::Answer<protocol::ListResponse> list(const Peer&) override { return no(); }
    protocol::Answer<protocol::BlockResponse> block(const protocol::BlockRequest&,
                                                    const Peer&) override { return no(); }
    protocol::Answer<protocol::PrefixResponse> unblock(const protocol::UnblockRequest&,
                                                       const Peer&) override { return no(); }
    protocol::Answer<protocol::PrefixResponse> allow(const protocol::AllowRequest&,
                                                     const Peer&) override { return no(); }
    protocol::Answer<protocol::PrefixResponse> disallow(const protocol::DisallowRequest&,
                                                        const Peer&) override { return no(); }
    protocol::Answer<protocol::FlushResponse> flush(const Peer&) override { return no(); }
    protocol::Answer<protocol::ReloadResponse> reload(const Peer&) override { return no(); }
} no_handler;

} // namespace

TEST(ControlServer, HandsTheSocketToAGroupItBelongsTo)
{
    SocketDir d;
    ASSERT_FALSE(d.dir.empty());
    const struct group* g = getgrgid(getegid()); // its own group: no CAP_CHOWN needed
    ASSERT_NE(g, nullptr);
    ControlServer server(d.sock(), g->gr_name, no_handler);
    EXPECT_EQ(server.warning(), "");
    EXPECT_EQ(mode_of(d.sock()), 0660u);
    struct stat st{};
    ASSERT_EQ(stat(d.sock().c_str(), &st), 0);
    EXPECT_EQ(st.st_gid, getegid());
}

TEST(ControlServer, SaysWhenTheGroupDoesNotExist)
{
    SocketDir d;
    ASSERT_FALSE(d.dir.empty());
    ControlServer server(d.sock(), "cw-no-such-group", no_handler);
    EXPECT_NE(server.warning().find("Group 'cw-no-such-group' does not exist"), std::string::npos)
        << server.warning();
    EXPECT_EQ(mode_of(d.sock()), 0600u); // only its owner (root, in production)
}

// Constructs a server whose group this process is not a member of (root's group,
// as a user): the chown is refused. True when it says so and keeps the socket 0600.
bool refused_chown_is_reported()
{
    const struct group* g = getgrgid(0);
    if (!g || getegid() == 0)
        return false;
    SocketDir d;
    if (d.dir.empty())
        return false;
    ControlServer server(d.sock(), g->gr_name, no_handler);
    return server.warning().find("Cannot give the control socket") != std::string::npos &&
           mode_of(d.sock()) == 0600u;
}

TEST(ControlServer, SaysWhenTheSocketCannotBeGivenToTheGroup)
{
    if (geteuid() != 0) {
        EXPECT_TRUE(refused_chown_is_reported());
        return;
    }
    // As root (CAP_CHOWN), the refusal cannot happen: check it as nobody, in a child.
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        bool ok = setgroups(0, nullptr) == 0 && setgid(65534) == 0 && setuid(65534) == 0 &&
                  refused_chown_is_reported();
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}
