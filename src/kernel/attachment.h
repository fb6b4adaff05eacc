// SPDX-License-Identifier: GPL-2.0-only
// The XDP program attached to one interface through a bpf_link.
#pragma once

#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "config/options.h"
#include "kernel/program.h"

namespace connwatch {

// Without a pin directory, closing the link detaches the program. With one, the
// link is pinned there (link_IFNAME), so it outlives the process: a crash, a
// kill -9 or a restart leaves the program attached and judging packets, and
// the next connwatchd takes the link over, moving it atomically to its own
// program (bpf_link_update). Only detach() — a clean stop, an interface no
// longer configured — removes the program from the interface.
class XdpAttachment {
public:
    // Throws Error naming the interface, what failed and what to do.
    XdpAttachment(const XdpProgram& prog, const std::string& ifname, XdpMode mode,
                  const std::string& pin_dir = "");
    const std::string& ifname() const { return ifname_; }
    int ifindex() const { return ifindex_; }
    XdpMode mode() const { return mode_; } // native or generic, as attached
    // Set when auto mode fell back to generic: the reason, for a warning.
    const std::string& fallback_reason() const { return fallback_reason_; }
    // Taken over from a pinned link an earlier connwatchd left attached.
    bool taken_over() const { return taken_over_; }
    // Unpins the link and closes it: the program leaves the interface now.
    void detach();

private:
    bool take_over(const XdpProgram& prog, XdpMode wanted);
    void attach(const XdpProgram& prog, XdpMode mode);

    std::string ifname_;
    int ifindex_ = 0;
    XdpMode mode_ = XdpMode::Native;
    std::string fallback_reason_;
    std::string pin_; // empty: not pinned
    bool taken_over_ = false;
    UniqueFd link_;
};

// The interfaces whose links are pinned in pin_dir (what an earlier connwatchd
// left attached).
std::vector<std::string> pinned_links(const std::string& pin_dir);
// Removes the pin of IFNAME's link: detached unless a running connwatchd still
// holds it. False when there was none.
bool unpin_link(const std::string& pin_dir, const std::string& ifname);
// connwatchd --detach: unpins every link and everything else but the
// blocklists, as a clean stop does; returns the interfaces whose link it unpinned.
std::vector<std::string> unpin_all_but_blocklists(const std::string& pin_dir);

} // namespace connwatch
