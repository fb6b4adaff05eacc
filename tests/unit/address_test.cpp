// SPDX-License-Identifier: GPL-2.0-only
#include <gtest/gtest.h>

#include "common/address.h"

using connwatch::Address;
using connwatch::Cidr;
using connwatch::format_endpoint;

namespace {

Address addr(const char* s)
{
    auto a = Address::parse(s);
    EXPECT_TRUE(a) << s;
    return a.value_or(Address{});
}

} // namespace

TEST(Address, Ipv4IsStoredMapped)
{
    auto a = addr("192.0.2.56");
    EXPECT_TRUE(a.is_v4());
    const std::array<uint8_t, 16> want = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 56};
    EXPECT_EQ(a.bytes(), want);
    EXPECT_EQ(a.str(), "192.0.2.56");
}

TEST(Address, MappedIpv6TextIsTheSameAddressAsIpv4)
{
    EXPECT_EQ(addr("::ffff:192.0.2.56"), addr("192.0.2.56"));
    EXPECT_EQ(addr("::ffff:192.0.2.56").str(), "192.0.2.56");
}

TEST(Address, Ipv6RoundTripsInCanonicalForm)
{
    auto a = addr("2001:0db8:0000:0000:0000:0000:0000:0001");
    EXPECT_FALSE(a.is_v4());
    EXPECT_EQ(a.str(), "2001:db8::1");
    EXPECT_EQ(addr("::1").str(), "::1");
}

TEST(Address, AbiRoundTrip)
{
    auto a = addr("2001:db8::42");
    EXPECT_EQ(Address(a.to_abi()), a);
}

TEST(Address, RejectsGarbageWithAReason)
{
    for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "::g", "example.com",
                            "1.2.3.4/24", " 1.2.3.4", "2001:db8::1%eth0"}) {
        std::string err;
        EXPECT_FALSE(Address::parse(bad, &err)) << bad;
        EXPECT_NE(err.find("not an IPv4 or IPv6 address"), std::string::npos) << bad;
    }
    std::string err;
    EXPECT_FALSE(Address::parse(std::string(100, '1'), &err));
}

// Found by tests/fuzz/fuzz_address: inet_pton reads a C string, so the text up
// to an embedded NUL used to pass for the whole ("::\0...\xbc" was "::"). Such a
// text arrives as "\u0000" in a control request or in the state file.
TEST(Address, RejectsAnEmbeddedNul)
{
    using namespace std::string_literals;
    for (const std::string& bad : {"192.0.2.1\0junk"s, "::\0\0\xbc"s, "2001:db8::1\0"s}) {
        std::string err;
        EXPECT_FALSE(Address::parse(bad, &err)) << bad;
        EXPECT_FALSE(Cidr::parse(bad, &err)) << bad;
        EXPECT_FALSE(Cidr::parse(bad + "/24", &err)) << bad;
    }
}

TEST(Address, FormatsEndpointsWithBracketsForIpv6)
{
    EXPECT_EQ(format_endpoint(addr("192.0.2.56"), 5973), "192.0.2.56:5973");
    EXPECT_EQ(format_endpoint(addr("2001:db8::1"), 5973), "[2001:db8::1]:5973");
    EXPECT_EQ(format_endpoint(addr("10.0.0.5"), 0), "10.0.0.5:0");
    EXPECT_EQ(format_endpoint(addr("10.0.0.5"), 65535), "10.0.0.5:65535");
}

TEST(Cidr, ParsesBothFamiliesAndComputesLpmLength)
{
    auto v4 = Cidr::parse("10.1.0.0/16");
    ASSERT_TRUE(v4);
    EXPECT_EQ(v4->length(), 16u);
    EXPECT_EQ(v4->lpm_length(), 96u + 16u);
    EXPECT_EQ(v4->str(), "10.1.0.0/16");
    EXPECT_EQ(v4->to_lpm().prefixlen, 112u);

    auto v6 = Cidr::parse("2001:db8::/32");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->lpm_length(), 32u);
    EXPECT_EQ(v6->str(), "2001:db8::/32");
}

TEST(Cidr, BareAddressIsAHostPrefix)
{
    EXPECT_EQ(Cidr::parse("192.0.2.1")->length(), 32u);
    EXPECT_EQ(Cidr::parse("2001:db8::1")->length(), 128u);
}

TEST(Cidr, RejectsHostBitsSuggestingTheNetwork)
{
    std::string err;
    EXPECT_FALSE(Cidr::parse("10.0.0.1/8", &err));
    EXPECT_NE(err.find("did you mean '10.0.0.0/8'"), std::string::npos) << err;
}

TEST(Cidr, RejectsBadLengths)
{
    for (const char* bad : {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x",
                            "::/129", "10.0.0.0/ 8", "/8"}) {
        std::string err;
        EXPECT_FALSE(Cidr::parse(bad, &err)) << bad;
        EXPECT_FALSE(err.empty()) << bad;
    }
}

TEST(Cidr, ContainsRespectsFamilyAndPrefix)
{
    auto net = *Cidr::parse("192.0.2.0/24");
    EXPECT_TRUE(net.contains(addr("192.0.2.0")));
    EXPECT_TRUE(net.contains(addr("192.0.2.255")));
    EXPECT_FALSE(net.contains(addr("192.0.3.0")));
    EXPECT_FALSE(net.contains(addr("::c000:200"))); // same low bytes, not mapped

    auto all4 = *Cidr::parse("0.0.0.0/0");
    EXPECT_TRUE(all4.contains(addr("203.0.113.9")));
    EXPECT_FALSE(all4.contains(addr("2001:db8::1")));

    auto v6 = *Cidr::parse("2001:db8:1::/48");
    EXPECT_TRUE(v6.contains(addr("2001:db8:1:ffff::1")));
    EXPECT_FALSE(v6.contains(addr("2001:db8:2::1")));

    auto odd = *Cidr::parse("10.0.0.0/9"); // a length that is not a byte boundary
    EXPECT_TRUE(odd.contains(addr("10.127.255.255")));
    EXPECT_FALSE(odd.contains(addr("10.128.0.0")));
}

TEST(Cidr, ConstructorMasksHostBits)
{
    Cidr c(addr("10.1.2.3"), 8);
    EXPECT_EQ(c.str(), "10.0.0.0/8");
    Cidr h(addr("2001:db8::1"), 127);
    EXPECT_EQ(h.str(), "2001:db8::/127");
}
