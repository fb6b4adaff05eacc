// SPDX-License-Identifier: GPL-2.0-only
#include "events/events.h"

#include <net/if.h>

#include "base/clock.h"

namespace connwatch {

std::string interface_name(uint32_t ifindex)
{
    char buf[IF_NAMESIZE] = {};
    return if_indextoname(ifindex, buf) ? buf : "ifindex" + std::to_string(ifindex);
}

namespace {

// A prefix the kernel names by its length in the 128-bit form; unset for 0 (the
// address alone) and for anything that is not a prefix of src's family.
std::optional<Cidr> prefix(const Address& src, unsigned plen)
{
    Cidr c = prefix_of(src, plen);
    if (c.is_host())
        return std::nullopt;
    return c;
}

} // namespace

Event decode_event(const cw_event& ev)
{
    std::time_t when = wall_time_of(ev.ts_ns);
    if (ev.type == CW_EV_NEW_CONN)
        return NewConnection{when, Address(ev.saddr), Address(ev.daddr), ev.sport, ev.dport,
                             interface_name(ev.ifindex)};
    if (ev.type == CW_EV_SCAN) {
        // nports is the kernel's word; never read past the array whatever it says.
        unsigned n = ev.nports < CW_SCAN_SLOTS ? ev.nports : CW_SCAN_SLOTS;
        return PortScan{when,
                        Address(ev.saddr),
                        Address(ev.daddr),
                        std::vector<uint16_t>(ev.ports, ev.ports + n),
                        interface_name(ev.ifindex),
                        ev.action,
                        ev.expires_ns ? wall_time_of(ev.expires_ns) : 0,
                        ev.action == CW_ACT_BLOCKED ? ev.offence : 0u,
                        ev.expires_ns > ev.ts_ns ? ev.expires_ns - ev.ts_ns : 0,
                        prefix(Address(ev.saddr), ev.prefix_len),
                        prefix(Address(ev.saddr), ev.block_prefix_len),
                        ev.ts_ns,
                        std::nullopt};
    }
    if (ev.type == CW_EV_PROBE)
        return Probe{when,     Address(ev.saddr), Address(ev.daddr),
                     ev.sport, ev.dport,          ev.tcp_flags,
                     interface_name(ev.ifindex), ev.tiny_fragment != 0};
    return UnknownEvent{ev.type};
}

} // namespace connwatch
