// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/attachment.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>

#include <cerrno>

namespace connwatch {

XdpAttachment::XdpAttachment(const XdpProgram& prog, const std::string& ifname, XdpMode mode)
    : ifname_(ifname)
{
    ifindex_ = static_cast<int>(if_nametoindex(ifname.c_str()));
    if (ifindex_ == 0)
        throw Error("Interface '" + ifname + "' does not exist (see 'ip link show')");

    auto attach = [&](uint32_t flags) {
        LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = flags);
        int fd = bpf_link_create(prog.prog_fd(), ifindex_, BPF_XDP, &opts);
        return fd < 0 ? UniqueFd() : UniqueFd(fd);
    };
    auto busy_message = [&]() {
        uint32_t id = 0;
        bpf_xdp_query_id(ifindex_, 0, &id);
        return "Another XDP program" + (id ? " (id " + std::to_string(id) + ")" : std::string()) +
               " is already attached to '" + ifname_ + "': see 'bpftool net show dev " + ifname_ +
               "', and detach it with 'ip link set dev " + ifname_ +
               " xdp off' if it is not needed";
    };
    auto failure = [&](int err, const char* what) {
        if (err == EBUSY || err == EEXIST)
            return Error(busy_message());
        return Error(std::string("Failed to attach to '") + ifname_ + "' in " + what +
                     " mode: " + errno_code(err).message() + privilege_hint(err));
    };

    if (mode != XdpMode::Generic) {
        link_ = attach(XDP_FLAGS_DRV_MODE);
        if (link_) {
            mode_ = XdpMode::Native;
            return;
        }
        int err = errno;
        if (mode == XdpMode::Native || err == EBUSY || err == EEXIST || err == EPERM ||
            err == EACCES) {
            auto e = failure(err, "native");
            if (mode == XdpMode::Native && (err == EOPNOTSUPP || err == EINVAL))
                throw Error(std::string(e.what()) +
                            " (the driver has no native XDP: use --xdp-mode generic or auto)");
            throw e;
        }
        fallback_reason_ = "native XDP failed (" + errno_code(err).message() +
                           "), using generic mode, which is slower";
    }
    link_ = attach(XDP_FLAGS_SKB_MODE);
    if (!link_)
        throw failure(errno, "generic");
    mode_ = XdpMode::Generic;
}

} // namespace connwatch
