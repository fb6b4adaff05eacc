// SPDX-License-Identifier: GPL-2.0-only
// Wakes the Manager when network interfaces or the host's addresses change
// (rtnetlink's link and address groups): a watched interface deleted and
// created again is watched again, status never claims an attachment the kernel
// has dropped, and an address added to the host is protected as its own at once.
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
