// SPDX-License-Identifier: GPL-2.0-only
// connwatchctl's own refusal: a block that would cut off the operator's ssh
// session (SSH_CONNECTION) needs --force.
#include <gtest/gtest.h>

#include "common/ssh_session.h"

using namespace connwatch;

namespace {

Cidr P(const char* text)
{
    return *Cidr::parse(text);
}

} // namespace

TEST(SshSession, ReadsTheClientAddressAsSshdWritesIt)
{
    EXPECT_EQ(ssh_client_address("192.0.2.5 51234 198.51.100.1 22"), Address::parse("192.0.2.5"));
    EXPECT_EQ(ssh_client_address("2001:db8::5 51234 2001:db8::1 22"),
              Address::parse("2001:db8::5"));
    EXPECT_EQ(ssh_client_address("fe80::5%eth0 51234 fe80::1%eth0 22"), Address::parse("fe80::5"));
    // sshd listening on :: may show an IPv4 client mapped: it is that IPv4 host.
    EXPECT_EQ(ssh_client_address("::ffff:192.0.2.5 51234 ::ffff:198.51.100.1 22"),
              Address::parse("192.0.2.5"));
    for (const char* bad : {"", "192.0.2.5", "192.0.2.5 1 2", "nonsense 1 2 3"})
        EXPECT_FALSE(ssh_client_address(bad)) << bad;
    EXPECT_FALSE(ssh_client_address(nullptr)) << "not in an ssh session";
}

TEST(SshSession, ABlockCoveringTheClientIsAConflictThatNamesTheFix)
{
    const char* env = "192.0.2.5 51234 198.51.100.1 22";
    EXPECT_EQ(ssh_session_conflict(P("192.0.2.0/24"), env),
              "not blocking 192.0.2.0/24: it covers 192.0.2.5, where this ssh session comes from "
              "(SSH_CONNECTION), and would cut it off; repeat with --force if you really mean it");
    EXPECT_NE(ssh_session_conflict(P("192.0.2.5"), env), "");
    EXPECT_NE(ssh_session_conflict(P("0.0.0.0/0"), env), "");
    EXPECT_EQ(ssh_session_conflict(P("192.0.2.6"), env), "");
    EXPECT_EQ(ssh_session_conflict(P("192.0.3.0/24"), env), "");
    // An IPv6 prefix never covers IPv4, in the kernel as here.
    EXPECT_EQ(ssh_session_conflict(P("::/0"), env), "");
    EXPECT_EQ(ssh_session_conflict(P("192.0.2.0/24"), nullptr), "");
    const char* env6 = "2001:db8:1::5 40000 2001:db8::1 22";
    EXPECT_NE(ssh_session_conflict(P("2001:db8::/32"), env6), "");
    EXPECT_NE(ssh_session_conflict(P("::/0"), env6), "");
    EXPECT_EQ(ssh_session_conflict(P("2001:db8:2::/48"), env6), "");
    EXPECT_EQ(ssh_session_conflict(P("0.0.0.0/0"), env6), "");
}
