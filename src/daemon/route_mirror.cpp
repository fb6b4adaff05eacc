// SPDX-License-Identifier: GPL-2.0-only
#include "daemon/route_mirror.h"

#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "base/error.h"
#include "kernel/program.h"

namespace connwatch {

namespace {

// NLMSG_OK without the macro's comparison of the header's unsigned length with the
// caller's int (clang's -Wsign-compare, an error in the sanitizer build).
bool nlmsg_ok(const nlmsghdr* h, int left)
{
    return left >= static_cast<int>(sizeof(nlmsghdr)) && h->nlmsg_len >= sizeof(nlmsghdr) &&
           static_cast<int64_t>(h->nlmsg_len) <= left;
}

// Nexthops of an RTA_MULTIPATH attribute: rtnexthop records, each followed by
// its own attributes.
void parse_multipath(const rtattr* a, std::vector<uint32_t>& oifs)
{
    auto len = static_cast<int>(RTA_PAYLOAD(a));
    const auto* nh = static_cast<const rtnexthop*>(RTA_DATA(a));
    while (len >= static_cast<int>(sizeof(rtnexthop)) && nh->rtnh_len >= sizeof(rtnexthop) &&
           nh->rtnh_len <= len) {
        oifs.push_back(static_cast<uint32_t>(nh->rtnh_ifindex));
        len -= RTNH_ALIGN(nh->rtnh_len);
        nh = RTNH_NEXT(nh);
    }
}

bool same(const cw_route& a, const cw_route& b)
{
    return std::memcmp(&a, &b, sizeof(a)) == 0;
}

} // namespace

std::optional<RouteEntry> parse_route(const nlmsghdr* h, std::size_t len)
{
    if (len < NLMSG_LENGTH(sizeof(rtmsg)) || h->nlmsg_len > len ||
        h->nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg)) || h->nlmsg_type != RTM_NEWROUTE)
        return std::nullopt;
    const auto* rtm = static_cast<const rtmsg*>(NLMSG_DATA(h));
    if (rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6)
        return std::nullopt;
    if ((rtm->rtm_flags & RTM_F_CLONED) || rtm->rtm_tos != 0)
        return std::nullopt;
    unsigned max_len = rtm->rtm_family == AF_INET ? 32 : 128;
    if (rtm->rtm_dst_len > max_len)
        return std::nullopt;

    RouteEntry r;
    r.table = rtm->rtm_table;
    r.type = rtm->rtm_type;
    uint8_t dst[16] = {};
    bool have_dst = false;
    auto attr_len = static_cast<int>(RTM_PAYLOAD(h));
    for (const rtattr* a = RTM_RTA(rtm); RTA_OK(a, attr_len); a = RTA_NEXT(a, attr_len)) {
        std::size_t n = RTA_PAYLOAD(a);
        switch (a->rta_type) {
        case RTA_DST:
            if (n != max_len / 8)
                return std::nullopt;
            std::memcpy(dst, RTA_DATA(a), n);
            have_dst = true;
            break;
        case RTA_TABLE:
            if (n >= 4)
                std::memcpy(&r.table, RTA_DATA(a), 4);
            break;
        case RTA_PRIORITY:
            if (n >= 4)
                std::memcpy(&r.priority, RTA_DATA(a), 4);
            break;
        case RTA_OIF:
            if (n >= 4) {
                uint32_t oif;
                std::memcpy(&oif, RTA_DATA(a), 4);
                r.oifs.push_back(oif);
            }
            break;
        case RTA_MULTIPATH:
            parse_multipath(a, r.oifs);
            break;
        case RTA_NH_ID:
            r.nexthop_object = true;
            break;
        default:
            break;
        }
    }
    if (r.table != RT_TABLE_MAIN && r.table != RT_TABLE_LOCAL)
        return std::nullopt;
    if (rtm->rtm_dst_len && !have_dst)
        return std::nullopt;
    cw_addr a{};
    if (rtm->rtm_family == AF_INET) { // mapped, ::ffff:a.b.c.d
        a.b[10] = a.b[11] = 0xff;
        std::memcpy(&a.b[12], dst, 4);
    } else {
        std::memcpy(a.b, dst, 16);
    }
    r.dst = Cidr(Address(a), rtm->rtm_dst_len);
    return r;
}

std::map<Cidr, cw_route> effective_routes(const std::vector<RouteEntry>& routes)
{
    // Per prefix: the routes of the winning table and metric.
    struct Best {
        bool local = false;
        uint32_t priority = 0;
        std::vector<const RouteEntry*> entries;
    };
    std::map<Cidr, Best> best;
    for (const auto& r : routes) {
        bool local = r.table == RT_TABLE_LOCAL;
        auto [it, fresh] = best.try_emplace(r.dst);
        Best& b = it->second;
        if (!fresh) {
            if (b.local && !local)
                continue;
            if (local == b.local && r.priority > b.priority)
                continue;
            if (local != b.local || r.priority < b.priority)
                b.entries.clear();
        }
        b.local = local;
        b.priority = r.priority;
        b.entries.push_back(&r);
    }
    std::map<Cidr, cw_route> out;
    for (const auto& [dst, b] : best) {
        cw_route v{};
        v.v6 = dst.address().is_v4() ? 0 : 1;
        std::set<uint32_t> oifs;
        bool unicast = false, any = false, local = false;
        for (const RouteEntry* r : b.entries) {
            switch (r->type) {
            case RTN_UNICAST:
                unicast = true;
                if (r->nexthop_object || r->oifs.empty())
                    any = true;
                for (uint32_t oif : r->oifs)
                    oif ? (void)oifs.insert(oif) : (void)(any = true);
                break;
            case RTN_LOCAL:
            case RTN_BROADCAST:
            case RTN_ANYCAST:
            case RTN_MULTICAST:
                local = true;
                break;
            default: // unreachable, blackhole, prohibit, throw, nat, ...
                break;
            }
        }
        if (unicast && (any || oifs.size() > CW_ROUTE_NEXTHOPS)) {
            v.kind = CW_ROUTE_ANY;
        } else if (unicast) {
            v.kind = CW_ROUTE_UNICAST;
            for (uint32_t oif : oifs)
                v.ifindex[v.nhops++] = oif;
        } else if (local) {
            v.kind = CW_ROUTE_LOCAL;
        } else {
            v.kind = CW_ROUTE_NONE;
        }
        out.emplace(dst, v);
    }
    return out;
}

std::vector<RouteEntry> dump_routes()
{
    UniqueFd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!fd)
        throw Error("Cannot read the routing table (netlink socket)", errno_code(errno));
    // A kernel that does not answer within seconds is not going to.
    timeval tv{5, 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct {
        nlmsghdr h;
        rtmsg r;
    } req{};
    req.h.nlmsg_len = sizeof(req);
    req.h.nlmsg_type = RTM_GETROUTE;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.h.nlmsg_seq = 1;
    req.r.rtm_family = AF_UNSPEC; // every family; parse_route keeps IPv4 and IPv6
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (sendto(fd.get(), &req, sizeof(req), 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof(kernel)) < 0)
        throw Error("Cannot read the routing table (netlink dump request)", errno_code(errno));

    std::vector<RouteEntry> out;
    std::vector<char> buf(64 * 1024);
    for (;;) {
        ssize_t n = recv(fd.get(), buf.data(), buf.size(), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw Error("Cannot read the routing table (netlink dump)", errno_code(errno));
        if (n == 0)
            throw Error("Cannot read the routing table: the netlink dump ended early");
        auto left = static_cast<int>(n);
        for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); nlmsg_ok(h, left);
             h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_type == NLMSG_DONE)
                return out;
            if (h->nlmsg_type == NLMSG_ERROR) {
                const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
                throw Error("Cannot read the routing table (netlink)",
                            errno_code(err->error < 0 ? -err->error : EIO));
            }
            if (auto r = parse_route(h, h->nlmsg_len))
                out.push_back(std::move(*r));
        }
    }
}

RouteMirror::RouteMirror(XdpProgram& prog)
    : prog_(prog), fd_(socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE))
{
    if (!fd_)
        throw Error("Cannot follow route changes (netlink socket)", errno_code(errno));
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
    if (bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
        throw Error("Cannot follow route changes (netlink bind)", errno_code(errno));
    // The map may hold the routes a previous connwatchd mirrored (a pinned
    // runtime map taken over): the first sync compares with what is there.
    for (auto& [c, r] : prog_.route_list())
        current_.emplace(c, r);
    sync();
}

bool RouteMirror::on_readable()
{
    char buf[8192];
    bool changed = false;
    for (;;) {
        ssize_t n = recv(fd_.get(), buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && errno == ENOBUFS) { // notifications lost: the dump covers them
            changed = true;
            continue;
        }
        if (n <= 0)
            break;
        auto left = static_cast<int>(n);
        for (auto* h = reinterpret_cast<nlmsghdr*>(buf); nlmsg_ok(h, left);
             h = NLMSG_NEXT(h, left))
            if (h->nlmsg_type == RTM_NEWROUTE || h->nlmsg_type == RTM_DELROUTE)
                changed = true;
    }
    if (!changed)
        return false;
    auto before = current_;
    sync();
    if (before.size() != current_.size())
        return true;
    for (auto a = before.begin(), b = current_.begin(); a != before.end(); ++a, ++b)
        if (a->first != b->first || !same(a->second, b->second))
            return true;
    return false;
}

void RouteMirror::sync()
{
    auto next = effective_routes(dump_routes());
    if (next.size() > prog_.route_capacity())
        throw Error("The host has " + std::to_string(next.size()) +
                    " route prefixes, more than the " + std::to_string(prog_.route_capacity()) +
                    " the reverse-path check can mirror");
    // New and changed entries first, then the ones gone: a source never finds
    // its route missing in between.
    for (const auto& [c, r] : next) {
        auto it = current_.find(c);
        if (it == current_.end() || !same(it->second, r))
            prog_.route_set(c, r);
    }
    for (const auto& [c, r] : current_)
        if (!next.count(c))
            prog_.route_remove(c);
    current_ = std::move(next);
}

} // namespace connwatch
