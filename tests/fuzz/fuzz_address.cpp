// SPDX-License-Identifier: GPL-2.0-only
// Address, Cidr, duration and listen-address parsing (src/common): every text an
// operator, the control socket or the state file can hand them. What parses must
// print in a form that parses back to the same value.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/address.h"
#include "common/duration.h"
#include "fuzz_check.h"

using namespace connwatch;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size)
{
    std::string_view text(reinterpret_cast<const char*>(data), size);
    // What was accepted: a NUL inside would mean the parser read a C string and
    // judged only its beginning.
    auto accepted = [&] { return "accepted '" + std::string(text) + "'"; };

    std::string error;
    if (auto a = Address::parse(text, &error)) {
        FUZZ_CHECK(text.find('\0') == std::string_view::npos, accepted());
        auto again = Address::parse(a->str());
        FUZZ_CHECK(again && *again == *a, a->str());
        FUZZ_CHECK(Address(a->to_abi()) == *a, a->str());
    } else {
        FUZZ_CHECK(!error.empty(), "no reason for refusing '" + std::string(text) + "'");
    }

    error.clear();
    if (auto c = Cidr::parse(text, &error)) {
        FUZZ_CHECK(text.find('\0') == std::string_view::npos, accepted());
        auto again = Cidr::parse(c->str());
        FUZZ_CHECK(again && *again == *c, c->str());
        FUZZ_CHECK(c->length() <= (c->address().is_v4() ? 32u : 128u), c->str());
        FUZZ_CHECK(c->lpm_length() <= 128, c->str());
        FUZZ_CHECK(c->covers(*c) && c->contains(c->address()), c->str());
        FUZZ_CHECK(c->is_host() == (Cidr::host(c->address()) == *c), c->str());
    } else {
        FUZZ_CHECK(!error.empty(), "no reason for refusing '" + std::string(text) + "'");
    }

    error.clear();
    if (auto d = parse_duration(text, &error)) {
        FUZZ_CHECK(d->count() >= 0, accepted());
        auto shown = format_duration(*d);
        auto again = parse_duration(shown);
        FUZZ_CHECK(again && *again == *d, shown);
    } else {
        FUZZ_CHECK(!error.empty(), "no reason for refusing '" + std::string(text) + "'");
    }

    // Only that it does not crash, and accepts no NUL (the text becomes a
    // civetweb listening address, a C string).
    if (check_listen_address(std::string(text)).empty())
        FUZZ_CHECK(text.find('\0') == std::string_view::npos, accepted());
    return 0;
}
