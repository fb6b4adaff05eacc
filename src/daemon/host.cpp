// SPDX-License-Identifier: GPL-2.0-only
#include "daemon/host.h"

#include <ifaddrs.h>
#include <linux/magic.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/statfs.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"

namespace connwatch {

std::string default_route_interface()
{
    // The IPv4 routing table; Destination 00000000 with mask 00000000 is the
    // default route. (Routes, not connections: nothing here reads connection
    // state from /proc.) Read through /proc/self: the unit's ProcSubset=pid
    // hides /proc/net, a symlink to self/net, but not the process's own
    // directory; the content is the same (this process's network namespace).
    std::ifstream in("/proc/self/net/route");
    std::string line;
    std::getline(in, line); // header
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string ifname, dest, gw, flags, refcnt, use, metric, mask;
        if (f >> ifname >> dest >> gw >> flags >> refcnt >> use >> metric >> mask &&
            dest == "00000000" && mask == "00000000")
            return ifname;
    }
    return "";
}

std::vector<std::string> resolve_interfaces(const std::vector<std::string>& configured)
{
    auto ifs = configured;
    if (ifs.empty()) {
        auto def = default_route_interface();
        if (def.empty())
            throw Error("No interface given and no default route to pick one from: name one "
                        "with --interface IF (or interface = IF in the configuration file)");
        ifs.push_back(def);
    }
    for (const auto& name : ifs)
        if (if_nametoindex(name.c_str()) == 0)
            throw Error("Interface '" + name + "' does not exist (see 'ip link show')");
    return ifs;
}

std::vector<Cidr> own_prefixes(std::string* error)
{
    std::vector<Cidr> out{*Cidr::parse("127.0.0.0/8"), *Cidr::parse("::1/128")};
    ifaddrs* ifa = nullptr;
    if (getifaddrs(&ifa) != 0) {
        if (error)
            *error = std::string("Cannot list this host's addresses (getifaddrs: ") +
                     std::strerror(errno) + "): only loopback is protected from blocking " +
                     "(a sandbox without AF_NETLINK does this)";
        return out;
    }
    for (auto* p = ifa; p; p = p->ifa_next) {
        if (!p->ifa_addr)
            continue;
        cw_addr raw{};
        if (p->ifa_addr->sa_family == AF_INET) {
            raw.b[10] = raw.b[11] = 0xff;
            std::memcpy(&raw.b[12], &reinterpret_cast<sockaddr_in*>(p->ifa_addr)->sin_addr, 4);
        } else if (p->ifa_addr->sa_family == AF_INET6) {
            std::memcpy(raw.b, &reinterpret_cast<sockaddr_in6*>(p->ifa_addr)->sin6_addr, 16);
        } else {
            continue;
        }
        Address a(raw);
        out.emplace_back(a, a.is_v4() ? 32 : 128);
    }
    freeifaddrs(ifa);
    // Sorted, each once: callers compare one reading with the last.
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

std::string ensure_bpffs(const std::string& pin_dir)
{
    auto parent = std::filesystem::path(pin_dir).parent_path();
    struct statfs fs{};
    if (statfs(parent.c_str(), &fs) == 0 && fs.f_type == BPF_FS_MAGIC)
        return "";
    if (parent == "/sys/fs/bpf" && mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") == 0)
        return "";
    return parent.string() + " is not a bpf filesystem (mount -t bpf bpf /sys/fs/bpf): "
                             "blocks will not survive a restart of connwatchd";
}

} // namespace connwatch
