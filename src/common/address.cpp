// SPDX-License-Identifier: GPL-2.0-only
#include "common/address.h"

#include <arpa/inet.h>

#include <cctype>
#include <charconv>
#include <cstring>

namespace connwatch {

namespace {

constexpr std::array<uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

// Clears every bit after the first `bits` of a 16-byte address.
std::array<uint8_t, 16> masked(std::array<uint8_t, 16> bytes, unsigned bits)
{
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = bits > i * 8 ? std::min(8u, bits - i * 8) : 0;
        bytes[i] &= static_cast<uint8_t>(0xff00 >> keep);
    }
    return bytes;
}

void set_error(std::string* error, std::string msg)
{
    if (error)
        *error = std::move(msg);
}

} // namespace

Address::Address(const cw_addr& a)
{
    std::memcpy(bytes_.data(), a.b, bytes_.size());
}

std::optional<Address> Address::parse(std::string_view text, std::string* error)
{
    // inet_pton needs a NUL-terminated string; addresses are short. A NUL inside
    // the text would end it early: "192.0.2.1\0junk" (a JSON "\u0000" from the
    // control socket or the state file) must not pass as 192.0.2.1.
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN ||
        text.find('\0') != std::string_view::npos) {
        set_error(error, "'" + std::string(text) + "' is not an IPv4 or IPv6 address");
        return std::nullopt;
    }
    std::string s(text);
    Address a;
    in_addr v4{};
    if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
        std::memcpy(a.bytes_.data(), kMappedPrefix.data(), kMappedPrefix.size());
        std::memcpy(a.bytes_.data() + 12, &v4, 4);
        return a;
    }
    if (inet_pton(AF_INET6, s.c_str(), a.bytes_.data()) == 1)
        return a;
    set_error(error, "'" + s + "' is not an IPv4 or IPv6 address");
    return std::nullopt;
}

bool Address::is_v4() const
{
    return std::memcmp(bytes_.data(), kMappedPrefix.data(), kMappedPrefix.size()) == 0;
}

std::string Address::str() const
{
    char buf[INET6_ADDRSTRLEN] = {};
    if (is_v4())
        inet_ntop(AF_INET, bytes_.data() + 12, buf, sizeof(buf));
    else
        inet_ntop(AF_INET6, bytes_.data(), buf, sizeof(buf));
    return buf;
}

cw_addr Address::to_abi() const
{
    cw_addr a{};
    std::memcpy(a.b, bytes_.data(), sizeof(a.b));
    return a;
}

std::string format_endpoint(const Address& addr, uint16_t port)
{
    if (addr.is_v4())
        return addr.str() + ":" + std::to_string(port);
    return "[" + addr.str() + "]:" + std::to_string(port);
}

Cidr::Cidr(const Address& addr, unsigned length) : length_(length)
{
    auto bytes = masked(addr.bytes(), addr.is_v4() ? 96 + length : length);
    cw_addr raw{};
    std::memcpy(raw.b, bytes.data(), 16);
    addr_ = Address(raw);
}

std::optional<Cidr> Cidr::parse(std::string_view text, std::string* error)
{
    auto slash = text.find('/');
    auto addr = Address::parse(text.substr(0, slash), error);
    if (!addr)
        return std::nullopt;
    unsigned max = addr->is_v4() ? 32 : 128;
    unsigned length = max;
    if (slash != std::string_view::npos) {
        auto len_text = text.substr(slash + 1);
        auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), length);
        if (len_text.empty() || ec != std::errc() || end != len_text.data() + len_text.size() ||
            length > max) {
            set_error(error, "'" + std::string(text) + "': prefix length must be 0.." +
                                 std::to_string(max));
            return std::nullopt;
        }
    }
    Cidr c(*addr, length);
    if (c.addr_ != *addr) {
        set_error(error, "'" + std::string(text) + "' has host bits set; did you mean '" +
                             c.str() + "'?");
        return std::nullopt;
    }
    return c;
}

bool Cidr::contains(const Address& a) const
{
    // In the 128-bit mapped space, as the kernel's LPM trie compares.
    return masked(a.bytes(), lpm_length()) == addr_.bytes();
}

bool Cidr::covers(const Cidr& other) const
{
    return addr_.is_v4() == other.addr_.is_v4() && length_ <= other.length_ &&
           contains(other.addr_);
}

bool Cidr::is_host() const
{
    return length_ == (addr_.is_v4() ? 32u : 128u);
}

std::string Cidr::str() const
{
    return addr_.str() + "/" + std::to_string(length_);
}

cw_lpm_key Cidr::to_lpm() const
{
    cw_lpm_key k{};
    k.prefixlen = lpm_length();
    k.addr = addr_.to_abi();
    return k;
}

std::string check_listen_address(const std::string& v)
{
    if (v.empty())
        return "";
    auto colon = v.rfind(':');
    std::string host = colon == std::string::npos ? "" : v.substr(0, colon);
    std::string port = colon == std::string::npos ? "" : v.substr(colon + 1);
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    bool port_ok = !port.empty() && ec == std::errc() && end == port.data() + port.size() &&
                   p >= 1 && p <= 65535;
    bool host_ok = !host.empty();
    if (host_ok && host.front() == '[') {
        host_ok = host.back() == ']' && Address::parse(host.substr(1, host.size() - 2));
    } else {
        for (char c : host)
            if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-'))
                host_ok = false;
    }
    if (host_ok && port_ok)
        return "";
    return "'" + v + "' is not HOST:PORT (e.g. 127.0.0.1:9467, [::1]:9467; empty disables)";
}

Cidr prefix_of(const Address& src, unsigned plen)
{
    if (plen == 0 || plen > 128 || (src.is_v4() && plen < 96))
        return Cidr::host(src);
    return Cidr(src, src.is_v4() ? plen - 96 : plen);
}

} // namespace connwatch
