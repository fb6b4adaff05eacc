// SPDX-License-Identifier: GPL-2.0-only
// The XDP program attached to one interface through a bpf_link.
#pragma once

#include <string>

#include "base/unique_fd.h"
#include "config/options.h"
#include "kernel/program.h"

namespace connwatch {

// Closing the link detaches the program, so a crash can never leave it behind.
class XdpAttachment {
public:
    // Throws Error naming the interface, what failed and what to do.
    XdpAttachment(const XdpProgram& prog, const std::string& ifname, XdpMode mode);
    const std::string& ifname() const { return ifname_; }
    int ifindex() const { return ifindex_; }
    XdpMode mode() const { return mode_; } // native or generic, as attached
    // Set when auto mode fell back to generic: the reason, for a warning.
    const std::string& fallback_reason() const { return fallback_reason_; }

private:
    std::string ifname_;
    int ifindex_ = 0;
    XdpMode mode_ = XdpMode::Native;
    std::string fallback_reason_;
    UniqueFd link_;
};

} // namespace connwatch
