// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/attachment.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>

namespace connwatch {

namespace {

constexpr std::string_view kLinkPrefix = "link_";

std::string link_pin(const std::string& dir, const std::string& ifname)
{
    return dir.empty() ? std::string() : dir + "/" + std::string(kLinkPrefix) + ifname;
}

} // namespace

XdpAttachment::XdpAttachment(const XdpProgram& prog, const std::string& ifname, XdpMode mode,
                             const std::string& pin_dir)
    : ifname_(ifname), pin_(link_pin(pin_dir, ifname))
{
    ifindex_ = static_cast<int>(if_nametoindex(ifname.c_str()));
    if (ifindex_ == 0)
        throw Error("Interface '" + ifname + "' does not exist (see 'ip link show')");
    if (!pin_.empty() && take_over(prog, mode))
        return;
    attach(prog, mode);
    if (!pin_.empty() && bpf_obj_pin(link_.get(), pin_.c_str()) != 0) {
        std::string why = errno_code(errno).message();
        pin_.clear();
        fallback_reason_ += std::string(fallback_reason_.empty() ? "" : "; ") +
                            "pinning its link failed (" + why +
                            "): the program will detach when connwatchd stops";
    }
}

// A link pinned by an earlier connwatchd for this very interface (not one of
// the same name since deleted: the kernel detached that one) goes on with this
// program; the swap is atomic, so no packet meets no program.
bool XdpAttachment::take_over(const XdpProgram& prog, XdpMode wanted)
{
    int fd = bpf_obj_get(pin_.c_str());
    if (fd < 0)
        return false;
    UniqueFd link(fd);
    bpf_link_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0 || info.type != BPF_LINK_TYPE_XDP ||
        info.xdp.ifindex != static_cast<uint32_t>(ifindex_)) {
        unlink(pin_.c_str()); // a dead link: attach afresh
        return false;
    }
    if (bpf_link_update(fd, prog.prog_fd(), nullptr) != 0)
        throw Error("Failed to move the XDP link pinned at " + pin_ + " on '" + ifname_ +
                        "' to the new program",
                    errno_code(errno),
                    privilege_hint(errno).empty()
                        ? " (the old program stays attached; 'rm " + pin_ +
                              "' detaches it once no connwatchd runs)"
                        : privilege_hint(errno));
    LIBBPF_OPTS(bpf_xdp_query_opts, q);
    mode_ = bpf_xdp_query(ifindex_, 0, &q) == 0 && q.attach_mode == XDP_ATTACHED_SKB
                ? XdpMode::Generic
                : XdpMode::Native;
    if (wanted != XdpMode::Auto && wanted != mode_)
        fallback_reason_ = std::string("kept in ") + to_string(mode_) +
                           " mode, as the previous connwatchd attached it; xdp-mode " +
                           to_string(wanted) + " applies after 'systemctl stop' and start";
    link_ = std::move(link);
    taken_over_ = true;
    return true;
}

void XdpAttachment::attach(const XdpProgram& prog, XdpMode mode)
{
    auto try_attach = [&](uint32_t flags) {
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
        link_ = try_attach(XDP_FLAGS_DRV_MODE);
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
    link_ = try_attach(XDP_FLAGS_SKB_MODE);
    if (!link_)
        throw failure(errno, "generic");
    mode_ = XdpMode::Generic;
}

void XdpAttachment::detach()
{
    if (!pin_.empty())
        unlink(pin_.c_str());
    link_.reset();
}

std::vector<std::string> pinned_links(const std::string& pin_dir)
{
    std::vector<std::string> out;
    if (pin_dir.empty())
        return out;
    DIR* d = opendir(pin_dir.c_str());
    if (!d)
        return out;
    while (dirent* e = readdir(d)) {
        std::string_view name = e->d_name;
        if (name.starts_with(kLinkPrefix) && name.size() > kLinkPrefix.size())
            out.emplace_back(name.substr(kLinkPrefix.size()));
    }
    closedir(d);
    return out;
}

bool unpin_link(const std::string& pin_dir, const std::string& ifname)
{
    return !pin_dir.empty() && unlink(link_pin(pin_dir, ifname).c_str()) == 0;
}

std::vector<std::string> unpin_all_but_blocklists(const std::string& pin_dir)
{
    std::vector<std::string> links = pinned_links(pin_dir), unpinned;
    for (const auto& name : links)
        if (unpin_link(pin_dir, name))
            unpinned.push_back(name);
    DIR* d = pin_dir.empty() ? nullptr : opendir(pin_dir.c_str());
    if (!d)
        return unpinned;
    std::vector<std::string> rest;
    while (dirent* e = readdir(d)) {
        std::string_view name = e->d_name;
        if (name != "." && name != ".." && name != "block_addr" && name != "block_cidr")
            rest.emplace_back(name);
    }
    closedir(d);
    for (const auto& name : rest)
        unlink((pin_dir + "/" + name).c_str());
    return unpinned;
}

} // namespace connwatch
