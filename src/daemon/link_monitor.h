// SPDX-License-Identifier: GPL-2.0-only
// Wakes the Manager when network interfaces come and go (rtnetlink's link
// group), so that a watched interface deleted and created again is watched
// again, and status never claims an attachment the kernel has dropped.
#pragma once

#include "base/unique_fd.h"

namespace connwatch {

class LinkMonitor {
public:
    // Throws Error when the netlink socket cannot be opened.
    LinkMonitor();
    int fd() const { return fd_.get(); } // readable when links changed
    // Reads every pending notification. Their content is not needed: the
    // caller compares its interfaces with the kernel's after any change, which
    // also covers notifications lost to an overflowing socket (ENOBUFS).
    void drain();

private:
    UniqueFd fd_;
};

} // namespace connwatch
