// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/xdp_program.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "connwatch.skel.h"

namespace connwatch {

namespace {

bool g_libbpf_verbose = false;

int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args)
{
    if (!g_libbpf_verbose || level == LIBBPF_DEBUG)
        return 0;
    return vfprintf(stderr, fmt, args);
}

std::string errno_text(int err)
{
    return std::strerror(err < 0 ? -err : err);
}

// What an operator should do about a failed bpf() call.
std::string privilege_hint(int err)
{
    err = err < 0 ? -err : err;
    if (err == EPERM || err == EACCES)
        return ": run as root, or with CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON";
    return "";
}

// Calls fn(key, value) for every entry of a map. An entry deleted between
// finding its key and reading it (by the kernel or a racing delete) is skipped
// rather than reported with garbage.
template <typename Key, typename Value, typename Fn>
void for_each_entry(int fd, Fn fn)
{
    Key key{}, next{};
    void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        Value value{};
        if (bpf_map_lookup_elem(fd, &next, &value) == 0)
            fn(next, value);
        key = next;
        prev = &key;
    }
}

// An LPM key back into a prefix in the family's own terms.
Cidr cidr_of(const cw_lpm_key& k)
{
    Address a(k.addr);
    return Cidr(a, a.is_v4() ? k.prefixlen - 96 : k.prefixlen);
}

} // namespace

void set_libbpf_verbose(bool verbose)
{
    g_libbpf_verbose = verbose;
    libbpf_set_print(libbpf_print);
}

void check_environment()
{
    utsname u{};
    unsigned major = 0, minor = 0;
    if (uname(&u) == 0 && std::sscanf(u.release, "%u.%u", &major, &minor) == 2 &&
        (major < 5 || (major == 5 && minor < 17)))
        throw Error(std::string("Linux ") + u.release +
                    " is too old: connwatch needs Linux 5.17 or later (BPF ring buffer, "
                    "bpf_loop, XDP bpf_link); upgrade the kernel");
    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
        throw Error("This kernel has no BTF (/sys/kernel/btf/vmlinux is missing): connwatch "
                    "needs a kernel built with CONFIG_DEBUG_INFO_BTF=y, as Debian's are");
}

XdpProgram::XdpProgram(const LoadSettings& settings)
{
    libbpf_set_print(libbpf_print);
    skel_ = connwatch_bpf__open();
    if (!skel_)
        throw Error("Failed to open the XDP program: " + errno_text(errno));
    skel_->rodata->cw_test_clock = settings.test_clock ? 1 : 0;
    int err = bpf_map__set_max_entries(skel_->maps.block_addr, settings.max_blocks);
    if (!err && !settings.pin_dir.empty())
        adopt_pins(settings.pin_dir);
    if (!err)
        err = connwatch_bpf__load(skel_);
    if (err) {
        connwatch_bpf__destroy(skel_);
        skel_ = nullptr;
        throw Error("Failed to load the XDP program into the kernel: " + errno_text(err) +
                    (privilege_hint(err).empty()
                         ? " (connwatch needs a kernel with BPF, XDP and the BPF ring "
                           "buffer, Linux 5.17 or later; run with --verbose to see libbpf's "
                           "and the verifier's messages)"
                         : privilege_hint(err)));
    }
    if (!settings.pin_dir.empty())
        pin_new(settings.pin_dir);
    // Defaults until the caller sets its own: never a zero window or threshold.
    cw_config cfg{};
    cfg.window_ns = 60ull * 1000000000;
    cfg.block_ns = 3600ull * 1000000000;
    cfg.dedup_ns = 5ull * 1000000000;
    cfg.threshold = 3;
    set_config(cfg);
    // A pinned CIDR blocklist taken over may hold entries: the fast path must
    // know, or it would skip the trie.
    update_cidr_count();
}

namespace {

// The blocklists are what must outlive the process; everything else (scan
// state, counters, config) is rebuilt at start.
std::vector<bpf_map*> pinned_maps(connwatch_bpf* skel)
{
    return {skel->maps.block_addr, skel->maps.block_cidr};
}

} // namespace

// Before load: take over a pinned blocklist that matches this program's, or
// read the entries of one that does not (max-blocks changed) to carry them over.
void XdpProgram::adopt_pins(const std::string& dir)
{
    for (bpf_map* map : pinned_maps(skel_)) {
        std::string path = dir + "/" + bpf_map__name(map);
        int fd = bpf_obj_get(path.c_str());
        if (fd < 0)
            continue;
        UniqueFd old(fd);
        bpf_map_info info{};
        uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
            info.type == static_cast<uint32_t>(bpf_map__type(map)) &&
            info.key_size == bpf_map__key_size(map) &&
            info.value_size == bpf_map__value_size(map) &&
            info.max_entries == bpf_map__max_entries(map) &&
            info.map_flags == bpf_map__map_flags(map)) {
            if (bpf_map__reuse_fd(map, fd) == 0) {
                reused_pins_ = true;
                continue;
            }
        }
        // Incompatible: keep its entries if the layout is ours, then replace it.
        if (info.key_size == bpf_map__key_size(map) && info.value_size == bpf_map__value_size(map)) {
            std::vector<uint8_t> key(info.key_size), next(info.key_size), value(info.value_size);
            void* prev = nullptr;
            while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
                if (bpf_map_lookup_elem(fd, next.data(), value.data()) == 0)
                    carry_.emplace_back(bpf_map__name(map), next, value);
                key = next;
                prev = key.data();
            }
        } else {
            warnings_.push_back(path + " has another layout (an older connwatch?): its " +
                                "blocks are dropped");
        }
        unlink(path.c_str());
    }
}

// After load: pin the maps that were created now, and put carried entries in.
void XdpProgram::pin_new(const std::string& dir)
{
    mkdir(dir.c_str(), 0700);
    for (bpf_map* map : pinned_maps(skel_)) {
        std::string path = dir + "/" + bpf_map__name(map);
        if (access(path.c_str(), F_OK) != 0 && bpf_map__pin(map, path.c_str()) != 0)
            warnings_.push_back("Failed to pin " + path + ": " + errno_text(errno) +
                                "; blocks will not survive a restart");
    }
    size_t kept = 0, dropped = 0;
    for (auto& [name, key, value] : carry_) {
        bpf_map* map = bpf_object__find_map_by_name(skel_->obj, name.c_str());
        if (map && bpf_map_update_elem(bpf_map__fd(map), key.data(), value.data(), BPF_ANY) == 0)
            kept++;
        else
            dropped++;
    }
    if (!carry_.empty())
        warnings_.push_back("The blocklist's capacity changed: " + std::to_string(kept) +
                            " blocks carried over" +
                            (dropped ? ", " + std::to_string(dropped) + " dropped (no room)"
                                     : std::string()));
    carry_.clear();
}

XdpProgram::~XdpProgram()
{
    connwatch_bpf__destroy(skel_);
}

int XdpProgram::prog_fd() const
{
    return bpf_program__fd(skel_->progs.connwatch_xdp);
}

int XdpProgram::events_fd() const
{
    return bpf_map__fd(skel_->maps.events);
}

void XdpProgram::set_config(const cw_config& cfg)
{
    uint32_t key = 0;
    cw_config c = cfg;
    c.cidr_blocks = config().cidr_blocks; // owned by the CIDR blocklist
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.config), &key, &c, BPF_ANY))
        throw Error("Failed to write the config map: " + errno_text(errno));
}

cw_config XdpProgram::config() const
{
    uint32_t key = 0;
    cw_config c{};
    bpf_map_lookup_elem(bpf_map__fd(skel_->maps.config), &key, &c);
    return c;
}

void XdpProgram::allow_add(const Cidr& c)
{
    cw_lpm_key k = c.to_lpm();
    uint8_t one = 1;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.allow), &k, &one, BPF_ANY))
        throw Error("Failed to add " + c.str() + " to the allowlist: " + errno_text(errno));
}

bool XdpProgram::allow_remove(const Cidr& c)
{
    cw_lpm_key k = c.to_lpm();
    return bpf_map_delete_elem(bpf_map__fd(skel_->maps.allow), &k) == 0;
}

std::vector<Cidr> XdpProgram::allow_list() const
{
    std::vector<Cidr> out;
    for_each_entry<cw_lpm_key, uint8_t>(bpf_map__fd(skel_->maps.allow),
                                        [&](const cw_lpm_key& k, uint8_t) {
                                            out.push_back(cidr_of(k));
                                        });
    return out;
}

bool XdpProgram::block_add(const Address& a, const cw_block& b)
{
    cw_addr k = a.to_abi();
    return bpf_map_update_elem(bpf_map__fd(skel_->maps.block_addr), &k, &b, BPF_ANY) == 0;
}

bool XdpProgram::block_remove(const Address& a)
{
    cw_addr k = a.to_abi();
    return bpf_map_delete_elem(bpf_map__fd(skel_->maps.block_addr), &k) == 0;
}

std::vector<std::pair<Address, cw_block>> XdpProgram::block_list() const
{
    std::vector<std::pair<Address, cw_block>> out;
    for_each_entry<cw_addr, cw_block>(bpf_map__fd(skel_->maps.block_addr),
                                      [&](const cw_addr& k, const cw_block& b) {
                                          out.emplace_back(Address(k), b);
                                      });
    return out;
}

bool XdpProgram::cidr_block_add(const Cidr& c, const cw_block& b)
{
    cw_lpm_key k = c.to_lpm();
    bool ok = bpf_map_update_elem(bpf_map__fd(skel_->maps.block_cidr), &k, &b, BPF_ANY) == 0;
    update_cidr_count();
    return ok;
}

bool XdpProgram::cidr_block_remove(const Cidr& c)
{
    cw_lpm_key k = c.to_lpm();
    bool ok = bpf_map_delete_elem(bpf_map__fd(skel_->maps.block_cidr), &k) == 0;
    update_cidr_count();
    return ok;
}

std::vector<std::pair<Cidr, cw_block>> XdpProgram::cidr_block_list() const
{
    std::vector<std::pair<Cidr, cw_block>> out;
    for_each_entry<cw_lpm_key, cw_block>(bpf_map__fd(skel_->maps.block_cidr),
                                         [&](const cw_lpm_key& k, const cw_block& b) {
                                             out.emplace_back(cidr_of(k), b);
                                         });
    return out;
}

void XdpProgram::update_cidr_count()
{
    uint32_t key = 0;
    cw_config c = config();
    c.cidr_blocks = static_cast<uint32_t>(cidr_block_list().size());
    bpf_map_update_elem(bpf_map__fd(skel_->maps.config), &key, &c, BPF_ANY);
}

Stats XdpProgram::stats() const
{
    Stats out{};
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0)
        return out;
    std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpu));
    int fd = bpf_map__fd(skel_->maps.stats);
    for (uint32_t i = 0; i < CW_STAT_MAX; i++) {
        if (bpf_map_lookup_elem(fd, &i, per_cpu.data()) != 0)
            continue;
        for (auto v : per_cpu)
            out[i] += v;
    }
    return out;
}

std::map<uint32_t, uint64_t> XdpProgram::connections_per_interface() const
{
    std::map<uint32_t, uint64_t> out;
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0)
        return out;
    int fd = bpf_map__fd(skel_->maps.if_syn);
    std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpu));
    uint32_t key = 0, next = 0;
    void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        if (bpf_map_lookup_elem(fd, &next, per_cpu.data()) == 0)
            for (auto v : per_cpu)
                out[next] += v;
        key = next;
        prev = &key;
    }
    return out;
}

void XdpProgram::set_fake_now(uint64_t ns)
{
    skel_->bss->cw_fake_now_ns = ns;
}

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
                     " mode: " + errno_text(err) + privilege_hint(err));
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
        fallback_reason_ = "native XDP failed (" + errno_text(err) +
                           "), using generic mode, which is slower";
    }
    link_ = attach(XDP_FLAGS_SKB_MODE);
    if (!link_)
        throw failure(errno, "generic");
    mode_ = XdpMode::Generic;
}

EventReader::EventReader(const XdpProgram& prog, Handler handler) : handler_(std::move(handler))
{
    rb_ = ring_buffer__new(prog.events_fd(), &EventReader::on_sample, this, nullptr);
    if (!rb_)
        throw Error("Failed to open the event ring buffer: " + errno_text(errno));
}

EventReader::~EventReader()
{
    ring_buffer__free(rb_);
}

int EventReader::epoll_fd() const
{
    return ring_buffer__epoll_fd(rb_);
}

int EventReader::consume()
{
    return ring_buffer__consume(rb_);
}

int EventReader::on_sample(void* ctx, void* data, size_t size)
{
    auto* self = static_cast<EventReader*>(ctx);
    if (size < sizeof(cw_event))
        return 0; // not ours: cannot happen with a matching object
    cw_event ev;
    std::memcpy(&ev, data, sizeof(ev));
    self->handler_(ev);
    return 0;
}

const char* stat_name(uint32_t idx)
{
    switch (static_cast<cw_stat>(idx)) {
    case CW_STAT_PASS_NON_IP: return "pass_non_ip";
    case CW_STAT_PASS_NON_TCP: return "pass_non_tcp";
    case CW_STAT_PASS_UNPARSED: return "pass_unparsed";
    case CW_STAT_PASS_FRAGMENT: return "pass_fragment";
    case CW_STAT_PASS_TCP_OTHER: return "pass_tcp_other";
    case CW_STAT_PASS_SYN: return "pass_syn";
    case CW_STAT_DROP_BLOCKED: return "drop_blocked";
    case CW_STAT_DROP_BLOCKED_CIDR: return "drop_blocked_cidr";
    case CW_STAT_SYN: return "syn";
    case CW_STAT_SYN_RETRANSMIT: return "syn_retransmit";
    case CW_STAT_SCAN: return "scan";
    case CW_STAT_BLOCK_ADDED: return "block_added";
    case CW_STAT_BLOCK_FULL: return "block_full";
    case CW_STAT_BLOCK_ALLOWED: return "block_allowed";
    case CW_STAT_BLOCK_MONITOR: return "block_monitor";
    case CW_STAT_EVENTS_LOST: return "events_lost";
    case CW_STAT_MAX: break;
    }
    return "unknown";
}

} // namespace connwatch
