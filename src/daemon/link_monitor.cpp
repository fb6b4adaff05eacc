// SPDX-License-Identifier: GPL-2.0-only
#include "daemon/link_monitor.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>

#include "base/error.h"

namespace connwatch {

LinkMonitor::LinkMonitor()
    : fd_(socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE))
{
    if (!fd_)
        throw Error("Cannot watch for interface changes (netlink socket)", errno_code(errno));
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
    if (bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
        throw Error("Cannot watch for interface changes (netlink bind)", errno_code(errno));
}

void LinkMonitor::drain()
{
    char buf[8192];
    for (;;) {
        ssize_t n = recv(fd_.get(), buf, sizeof(buf), MSG_DONTWAIT);
        // ENOBUFS: the kernel dropped notifications; the caller resyncs anyway.
        if (n < 0 && errno == ENOBUFS)
            continue;
        if (n <= 0)
            return;
    }
}

} // namespace connwatch
