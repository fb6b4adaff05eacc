// SPDX-License-Identifier: GPL-2.0-only
// Addresses in the one form the kernel uses: 16 bytes, IPv4 as IPv4-mapped IPv6.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

extern "C" {
#include "connwatch_abi.h"
}

namespace connwatch {

// An IPv4 or IPv6 address, stored as 16 bytes in network order (IPv4 mapped,
// ::ffff:a.b.c.d), exactly as struct cw_addr holds it.
class Address {
public:
    Address() = default;
    explicit Address(const cw_addr& a);

    // "192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1" (the mapped form prints as
    // IPv4). On failure returns nullopt and, if error is given, says why.
    static std::optional<Address> parse(std::string_view text, std::string* error = nullptr);

    bool is_v4() const; // IPv4-mapped
    std::string str() const;
    cw_addr to_abi() const;
    const std::array<uint8_t, 16>& bytes() const { return bytes_; }

    auto operator<=>(const Address&) const = default;

private:
    std::array<uint8_t, 16> bytes_{};
};

// "192.0.2.1:80" or "[2001:db8::1]:80".
std::string format_endpoint(const Address& addr, uint16_t port);

// A prefix. length is in the family's own terms (0..32 for IPv4, 0..128 for
// IPv6); the kernel's LPM key counts bits of the mapped form (IPv4 /24 = 120).
class Cidr {
public:
    Cidr() = default;
    Cidr(const Address& addr, unsigned length); // masks host bits
    static Cidr host(const Address& addr) { return Cidr(addr, addr.is_v4() ? 32 : 128); }

    // "10.0.0.0/8", "2001:db8::/32", or a bare address (= a host prefix).
    // Host bits set ("10.0.0.1/8") are an error: the operator most likely
    // meant something else, and silently masking hides the typo.
    static std::optional<Cidr> parse(std::string_view text, std::string* error = nullptr);

    const Address& address() const { return addr_; }
    unsigned length() const { return length_; }
    unsigned lpm_length() const { return addr_.is_v4() ? 96 + length_ : length_; }
    bool contains(const Address& a) const;
    // Every address of `other` is in this prefix, and both are of one family.
    bool covers(const Cidr& other) const;
    // A single address (/32, /128): the exact blocklist's, not the CIDR trie's.
    bool is_host() const;
    std::string str() const;
    cw_lpm_key to_lpm() const;

    auto operator<=>(const Cidr&) const = default;

private:
    Address addr_;
    unsigned length_ = 0;
};

// The prefix of src of plen bits of the 128-bit form (cw_event.prefix_len,
// cw_block.prefix_len; an IPv4 /24 is 120); 0: src alone (a host prefix).
Cidr prefix_of(const Address& src, unsigned plen);

// A listening address, "HOST:PORT" (IPv6 as "[::1]:9467"), or empty (off).
// Returns "" when valid, else why.
std::string check_listen_address(const std::string& v);

} // namespace connwatch
