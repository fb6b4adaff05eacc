// SPDX-License-Identifier: GPL-2.0-only
// The route mirror of the reverse-path check (rp-filter; docs/SECURITY.md,
// "Spoofed sources and decoys"): the host's IPv4 and IPv6 routes of tables
// local and main, copied from rtnetlink into the XDP program's `routes` LPM trie,
// because bpf_fib_lookup() answers "forwarding disabled" on any host that does
// not forward. Policy routing rules and other tables are not followed.
//
// How it follows changes: a socket subscribed to the route groups wakes the
// Manager; any route notification (or lost ones, ENOBUFS) leads to a fresh dump
// of every route, compared with the map and applied as the difference. Routes
// change rarely on a host, and a dump never gets a notification's ordering or
// a multipath sibling wrong.
#pragma once

#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "common/address.h"
#include "connwatch_abi.h"

namespace connwatch {

class XdpProgram;

// One route as rtnetlink describes it, reduced to what the check needs.
struct RouteEntry {
    Cidr dst;
    uint32_t table = 0;    // RT_TABLE_MAIN or RT_TABLE_LOCAL
    uint32_t priority = 0; // the metric; lowest wins
    uint8_t type = 0;      // RTN_UNICAST, RTN_LOCAL, RTN_UNREACHABLE, ...
    std::vector<uint32_t> oifs; // output interfaces (several: multipath)
    bool nexthop_object = false; // RTA_NH_ID: the interfaces are in a nexthop object
    bool operator==(const RouteEntry&) const = default;
};

// Parses one RTM_NEWROUTE message of `len` bytes (header included). nullopt for
// what the mirror does not take: another message type, another family than
// IPv4/IPv6, a table other than main and local, a cached (cloned) route, a
// route by type of service, a malformed message.
std::optional<RouteEntry> parse_route(const nlmsghdr* h, std::size_t len);

// The prefixes the program is told about, from a complete list of routes:
// per prefix, the local table's routes win over main's (the kernel looks there
// first); within a table the lowest metric wins, and routes of equal metric
// add their interfaces up (IPv6 has fe80::/64 once per interface, and ECMP
// routes may come as one message per nexthop).
std::map<Cidr, cw_route> effective_routes(const std::vector<RouteEntry>& routes);

// Reads every route of the host now (a dump over a socket of its own).
// Throws Error naming what failed.
std::vector<RouteEntry> dump_routes();

class RouteMirror {
public:
    // Subscribes to route changes and fills the program's map from a dump.
    // Throws Error when netlink refuses, or when there are more prefixes than
    // the map holds: the caller turns the check off and says why.
    explicit RouteMirror(XdpProgram& prog);
    int fd() const { return fd_.get(); } // readable when routes changed
    // Reads the pending notifications; after any, dumps again and applies the
    // difference. Returns true when the map changed. Throws Error as above.
    bool on_readable();
    std::size_t size() const { return current_.size(); }

private:
    void sync();
    XdpProgram& prog_;
    UniqueFd fd_;
    std::map<Cidr, cw_route> current_; // what the map holds
};

} // namespace connwatch
