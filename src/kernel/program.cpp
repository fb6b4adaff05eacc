// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/program.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>

#include "base/unique_fd.h"
#include "config/options.h"
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

// A batch call refused before it did anything (a kernel without batch
// operations for the map): its count is left as passed in, not set to 0.
// ENOTSUPP (524) is the kernel's own, not in userspace's errno.h.
bool batch_unsupported(int err)
{
    return err == EINVAL || err == EOPNOTSUPP || err == 524 || err == EPERM || err == EFAULT;
}

// An LPM key back into a prefix in the family's own terms.
Cidr cidr_of(const cw_lpm_key& k)
{
    Address a(k.addr);
    return Cidr(a, a.is_v4() ? k.prefixlen - 96 : k.prefixlen);
}

} // namespace

std::string privilege_hint(int err)
{
    err = err < 0 ? -err : err;
    if (err == EPERM || err == EACCES)
        return ": run as root, or with CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON";
    return "";
}

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

void XdpProgram::SkeletonDeleter::operator()(connwatch_bpf* s) const
{
    connwatch_bpf__destroy(s);
}

XdpProgram::XdpProgram(const LoadSettings& settings)
{
    libbpf_set_print(libbpf_print);
    skel_.reset(connwatch_bpf__open());
    if (!skel_)
        throw Error("Failed to open the XDP program", errno_code(errno));
    skel_->rodata->cw_test_clock = settings.test_clock ? 1 : 0;
    pin_dir_ = settings.pin_dir;
    int err = bpf_map__set_max_entries(skel_->maps.block_addr, settings.max_blocks);
    if (!err)
        err = bpf_map__set_max_entries(skel_->maps.block_cidr, settings.max_cidr_blocks);
    if (!err && !settings.pin_dir.empty()) {
        adopt_pins(settings.pin_dir);
        adopt_runtime_pins(settings.pin_dir);
    }
    if (!err)
        err = connwatch_bpf__load(skel_.get());
    if (err)
        throw Error("Failed to load the XDP program into the kernel", errno_code(err),
                    privilege_hint(err).empty()
                        ? " (connwatch needs a kernel with BPF, XDP and the BPF ring buffer, "
                          "Linux 5.17 or later; run with --verbose to see libbpf's and the "
                          "verifier's messages)"
                        : privilege_hint(err));
    if (!settings.pin_dir.empty()) {
        pin_new(settings.pin_dir);
        pin_runtime(settings.pin_dir);
    }
    // The verdict cache's generations go on from a config taken over (the
    // program still attached may have a cache of its own), never back: every
    // config write below keeps this one or a later one.
    verdict_gen_ = config().verdict_gen;
    // Defaults until the caller sets its own: never a zero window or threshold.
    // A config map taken over from a running program already holds the previous
    // daemon's settings, which that program is using right now: kept until the
    // caller sets its own, never the defaults in between.
    if (!runtime_reused_.count("config"))
        set_config(kernel_config(Options{}));
    // A pinned CIDR blocklist taken over may hold entries: the fast path must
    // know, or it would skip the trie. Counted once here, then kept.
    cidr_count_ = static_cast<uint32_t>(cidr_block_list().size());
    update_cidr_count();
    // IPv6 prefixes pinned by a connwatch from before cw_block.v6_prefix read
    // 0 there, and would go on covering IPv4 (::/0): mark them.
    for (const auto& [c, b] : cidr_block_list())
        if (!c.address().is_v4() && !b.v6_prefix)
            cidr_block_add(c, b);
    // update_cidr_count wrote exact_empty_gen 0: a config taken over may say
    // "empty" of a blocklist that was written while no connwatchd ran.
    // Armed again only after a look at the map.
    refresh_exact_skip();
    // One generation more than the config's retires whatever the program
    // still attached (a config taken over) cached.
    retire_verdicts();
}

namespace {

// The blocklists, and the history of repeat offenders that decides how long
// the next block lasts, are what must outlive the process (a clean stop
// included); everything else (scan state, counters, config) is rebuilt at start.
std::vector<bpf_map*> pinned_maps(connwatch_bpf* skel)
{
    return {skel->maps.block_addr, skel->maps.block_cidr, skel->maps.offenders};
}

} // namespace

namespace {

// A pinned map's description; false when it cannot be had.
bool map_info(int fd, bpf_map_info& info)
{
    info = {};
    uint32_t len = sizeof(info);
    return bpf_obj_get_info_by_fd(fd, &info, &len) == 0;
}

// Whether a pinned map (its info) can stand in for this program's map as it
// is: same type, sizes, capacity and flags. The ABI's rule (connwatch_abi.h)
// makes that mean "same meaning".
bool same_layout(const bpf_map_info& info, const bpf_map* map)
{
    return info.type == static_cast<uint32_t>(bpf_map__type(map)) &&
           info.key_size == bpf_map__key_size(map) &&
           info.value_size == bpf_map__value_size(map) &&
           info.max_entries == bpf_map__max_entries(map) &&
           info.map_flags == bpf_map__map_flags(map);
}

// Entries read or written a bpf() call when a blocklist is carried into a map
// of another capacity: 65,536 keys and values of block_addr are 2.5 MiB.
constexpr uint32_t kCarryBatch = 65536;

// Every entry of a map into keys and values (back to back): in batches where
// the map has them (a hash: bpf_map_lookup_batch, whole buckets at a time), one
// by one otherwise (the LPM trie). Returns how many.
std::size_t read_all(int fd, uint32_t key_size, uint32_t value_size, std::vector<uint8_t>& keys,
                     std::vector<uint8_t>& values)
{
    std::size_t n = 0;
    uint32_t in = 0, out = 0, chunk = kCarryBatch;
    bool first = true;
    for (;;) {
        keys.resize((n + chunk) * key_size);
        values.resize((n + chunk) * value_size);
        uint32_t count = chunk;
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        int err = bpf_map_lookup_batch(fd, first ? nullptr : &in, &out, keys.data() + n * key_size,
                                       values.data() + n * value_size, &count, &opts);
        int e = err ? errno : 0;
        if (err && e == ENOSPC && count == 0 && chunk < (1u << 24)) {
            chunk *= 2; // a bucket larger than the chunk
            continue;
        }
        if (err && e != ENOENT && first && batch_unsupported(e)) {
            // No batch operations on this map: key by key.
            n = 0;
            std::vector<uint8_t> key(key_size), next(key_size);
            void* prev = nullptr;
            while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
                keys.resize((n + 1) * key_size);
                values.resize((n + 1) * value_size);
                if (bpf_map_lookup_elem(fd, next.data(), values.data() + n * value_size) == 0) {
                    std::memcpy(keys.data() + n * key_size, next.data(), key_size);
                    n++;
                }
                key = next;
                prev = key.data();
            }
            break;
        }
        n += count;
        if (err)
            break; // ENOENT: the end (or a failure: what was read is kept)
        in = out;
        first = false;
    }
    keys.resize(n * key_size);
    values.resize(n * value_size);
    return n;
}

} // namespace

// Before load: take over a pinned blocklist that matches this program's, or
// read the entries of one that does not (max-blocks changed) to carry them over.
void XdpProgram::adopt_pins(const std::string& dir)
{
    for (bpf_map* map : pinned_maps(skel_.get())) {
        std::string path = dir + "/" + bpf_map__name(map);
        int fd = bpf_obj_get(path.c_str());
        if (fd < 0)
            continue;
        UniqueFd old(fd);
        bpf_map_info info{};
        bool known = map_info(fd, info);
        if (known && same_layout(info, map) && bpf_map__reuse_fd(map, fd) == 0) {
            if (map == skel_->maps.offenders)
                offenders_reused_ = true;
            else
                reused_pins_ = true;
            continue;
        }
        // Incompatible: keep its entries if the layout is ours, then replace it.
        if (known && info.key_size == bpf_map__key_size(map) &&
            info.value_size == bpf_map__value_size(map)) {
            Carried c;
            c.map = bpf_map__name(map);
            c.count = read_all(fd, info.key_size, info.value_size, c.keys, c.values);
            carry_.push_back(std::move(c));
        } else {
            warnings_.push_back(path + " has another layout (an older connwatch?): its " +
                                "blocks are dropped");
        }
        unlink(path.c_str());
    }
}

// After load: pin the maps that were created now, and put carried entries in
// (in batches where the map has them; what does not fit is dropped, and said).
void XdpProgram::pin_new(const std::string& dir)
{
    mkdir(dir.c_str(), 0700);
    for (bpf_map* map : pinned_maps(skel_.get())) {
        std::string path = dir + "/" + bpf_map__name(map);
        if (access(path.c_str(), F_OK) != 0 && bpf_map__pin(map, path.c_str()) != 0)
            warnings_.push_back("Failed to pin " + path + ": " + errno_code(errno).message() +
                                "; blocks will not survive a restart");
    }
    size_t kept = 0, dropped = 0;
    for (const auto& c : carry_) {
        bpf_map* map = bpf_object__find_map_by_name(skel_->obj, c.map.c_str());
        if (!map) {
            dropped += c.count;
            continue;
        }
        const int fd = bpf_map__fd(map);
        const std::size_t ks = bpf_map__key_size(map), vs = bpf_map__value_size(map);
        bool batch = true;
        for (std::size_t at = 0; at < c.count;) {
            const uint8_t* key = c.keys.data() + at * ks;
            const uint8_t* value = c.values.data() + at * vs;
            if (!batch) {
                bool ok = bpf_map_update_elem(fd, key, value, BPF_ANY) == 0;
                (ok ? kept : dropped)++;
                at++;
                continue;
            }
            uint32_t count = static_cast<uint32_t>(std::min<std::size_t>(c.count - at, kCarryBatch));
            LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
            int err = bpf_map_update_batch(fd, key, value, &count, &opts);
            int e = err ? errno : 0;
            if (err && batch_unsupported(e)) {
                batch = false; // the LPM trie: one by one from here
                continue;
            }
            kept += count;
            at += count;
            if (err && e == E2BIG) {
                dropped += c.count - at; // full: the rest has no room
                break;
            }
            if (err) {
                dropped++; // this one was refused: skip it, go on
                at++;
            }
        }
    }
    if (!carry_.empty())
        warnings_.push_back("The blocklist's capacity changed: " + std::to_string(kept) +
                            " blocks carried over" +
                            (dropped ? ", " + std::to_string(dropped) + " dropped (no room)"
                                     : std::string()));
    carry_.clear();
}

namespace {

constexpr const char* kProgPin = "prog";
constexpr const char* kSeenPin = "daemon_seen";

// The maps that live only while a program runs: everything but the
// blocklists and libbpf's own (.rodata, .bss).
std::vector<bpf_map*> runtime_maps(connwatch_bpf* skel)
{
    std::vector<bpf_map*> out;
    bpf_map* map;
    bpf_object__for_each_map(map, skel->obj)
    {
        if (bpf_map__is_internal(map) || map == skel->maps.block_addr ||
            map == skel->maps.block_cidr || map == skel->maps.offenders)
            continue;
        out.push_back(map);
    }
    return out;
}

// A per-CPU array of u64 counters summed over CPUs, as many as both know.
Stats read_counters(int fd, uint32_t entries)
{
    Stats out{};
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0)
        return out;
    std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpu));
    for (uint32_t i = 0; i < entries && i < CW_STAT_MAX; i++)
        if (bpf_map_lookup_elem(fd, &i, per_cpu.data()) == 0)
            for (auto v : per_cpu)
                out[i] += v;
    return out;
}

bool prog_tag(int fd, uint8_t (&tag)[BPF_TAG_SIZE])
{
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0)
        return false;
    std::memcpy(tag, info.tag, BPF_TAG_SIZE);
    return true;
}

} // namespace

// Before load: the maps of a program an earlier connwatchd left running (its
// links pinned) are shared with this one where their layout is the same, so
// that swapping the program loses no scan state, counter or queued event. The
// ABI's rule (connwatch_abi.h) makes "same type, sizes and flags" mean "same
// meaning". One that differs (an upgrade changed it) starts afresh; the old
// program keeps its own copy until the links are moved to this one.
void XdpProgram::adopt_runtime_pins(const std::string& dir)
{
    std::string prog_path = dir + "/" + kProgPin;
    if (int fd = bpf_obj_get(prog_path.c_str()); fd >= 0) {
        UniqueFd old(fd);
        uint8_t tag[BPF_TAG_SIZE];
        if (prog_tag(fd, tag)) {
            std::memcpy(pinned_tag_, tag, sizeof(tag));
            have_pinned_tag_ = true;
        }
    }
    std::string seen_path = dir + "/" + kSeenPin;
    if (int fd = bpf_obj_get(seen_path.c_str()); fd >= 0) {
        bpf_map_info info{};
        uint32_t len = sizeof(info);
        uint32_t key = 0;
        if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.value_size % 8 == 0) {
            std::vector<uint64_t> v(info.value_size / 8);
            if (bpf_map_lookup_elem(fd, &key, v.data()) == 0) {
                Stats s{};
                for (size_t i = 0; i < v.size() && i < s.size(); i++)
                    s[i] = v[i];
                previous_seen_ = s;
            }
        }
        if (info.value_size == sizeof(Stats))
            seen_.reset(fd);
        else {
            close(fd);
            unlink(seen_path.c_str());
        }
    }
    for (bpf_map* map : runtime_maps(skel_.get())) {
        std::string path = dir + "/" + bpf_map__name(map);
        int fd = bpf_obj_get(path.c_str());
        if (fd < 0)
            continue;
        UniqueFd old(fd);
        bpf_map_info info{};
        bool known = map_info(fd, info);
        if (known && same_layout(info, map) && bpf_map__reuse_fd(map, fd) == 0) {
            runtime_reused_.insert(bpf_map__name(map));
            continue;
        }
        // Another layout: what the old program counted or queued is read from
        // its own map (the counters now, the events once the links moved).
        if (map == skel_->maps.stats && info.key_size == 4 && info.value_size == 8)
            previous_stats_ = read_counters(fd, info.max_entries);
        else if (map == skel_->maps.events)
            previous_events_ = std::move(old);
        else
            warnings_.push_back(path + " has another layout (an older connwatch?): it " +
                                "starts afresh");
        unlink(path.c_str());
    }
}

// After load: pin what was created now; the program under its tag's name.
void XdpProgram::pin_runtime(const std::string& dir)
{
    for (bpf_map* map : runtime_maps(skel_.get())) {
        std::string path = dir + "/" + bpf_map__name(map);
        if (access(path.c_str(), F_OK) != 0 && bpf_map__pin(map, path.c_str()) != 0)
            warnings_.push_back("Failed to pin " + path + ": " + errno_code(errno).message());
    }
    if (runtime_reused_.count("stats"))
        previous_stats_ = stats();
    uint8_t tag[BPF_TAG_SIZE];
    if (have_pinned_tag_ && prog_tag(prog_fd(), tag))
        same_as_pinned_ = std::memcmp(tag, pinned_tag_, sizeof(tag)) == 0;
    std::string prog_path = dir + "/" + kProgPin;
    unlink(prog_path.c_str());
    if (bpf_obj_pin(prog_fd(), prog_path.c_str()) != 0)
        warnings_.push_back("Failed to pin " + prog_path + ": " + errno_code(errno).message());
    if (!seen_) {
        int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "cw_seen", sizeof(uint32_t), sizeof(Stats),
                                1, nullptr);
        if (fd >= 0) {
            seen_.reset(fd);
            std::string seen_path = dir + "/" + kSeenPin;
            unlink(seen_path.c_str());
            if (bpf_obj_pin(fd, seen_path.c_str()) != 0)
                warnings_.push_back("Failed to pin " + seen_path + ": " +
                                    errno_code(errno).message());
        }
    }
}

void XdpProgram::record_seen(const Stats& s)
{
    uint32_t key = 0;
    if (seen_)
        bpf_map_update_elem(seen_.get(), &key, s.data(), BPF_ANY);
}

void XdpProgram::unpin_runtime()
{
    if (pin_dir_.empty())
        return;
    for (bpf_map* map : runtime_maps(skel_.get()))
        unlink((pin_dir_ + "/" + bpf_map__name(map)).c_str());
    unlink((pin_dir_ + "/" + kProgPin).c_str());
    unlink((pin_dir_ + "/" + kSeenPin).c_str());
}

XdpProgram::~XdpProgram() = default;

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
    std::lock_guard<std::mutex> lock(skip_mu_);
    c.cidr_blocks = config().cidr_blocks; // owned by the CIDR blocklist
    c.exact_empty_gen = exact_empty_gen_; // owned by the exact blocklist
    // Owned here, and a new one: a change of ipv4-prefix or ipv6-prefix
    // ends the drops of the prefix blocks of the old length.
    c.verdict_gen = verdict_cache_on_ ? ++verdict_gen_ : 0;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.config), &key, &c, BPF_ANY))
        throw Error("Failed to write the config map", errno_code(errno));
}

void XdpProgram::set_verdict_cache(bool enabled)
{
    {
        std::lock_guard<std::mutex> lock(skip_mu_);
        verdict_cache_on_ = enabled;
    }
    retire_verdicts();
}

bool XdpProgram::verdict_cache() const
{
    std::lock_guard<std::mutex> lock(skip_mu_);
    return verdict_cache_on_;
}

void XdpProgram::retire_verdicts()
{
    // A number never written before: slots filled under any earlier
    // generation (or before the cache was turned off and on again) stop
    // counting the moment the program reads it. (The program adds its own
    // count of automatic blocks to it, which only grows too.) The kernel
    // copies the value into the array entry; each 8-byte field lands whole.
    std::lock_guard<std::mutex> lock(skip_mu_);
    verdict_gen_++;
    uint32_t key = 0;
    cw_config c = config();
    c.verdict_gen = verdict_cache_on_ ? verdict_gen_ : 0;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.config), &key, &c, BPF_ANY))
        throw Error("Failed to write the config map (the verdict cache's generation)",
                    errno_code(errno));
}

uint64_t XdpProgram::verdict_epoch() const
{
    uint64_t gen = config().verdict_gen, kgen = 0;
    uint32_t key = 0;
    if (gen == 0 || bpf_map_lookup_elem(bpf_map__fd(skel_->maps.block_gen), &key, &kgen) != 0)
        return 0;
    return gen + kgen;
}

std::vector<cw_verdict_slot> XdpProgram::verdict_slots(const Address& a) const
{
    cw_addr k = a.to_abi();
    uint64_t hi, lo;
    std::memcpy(&hi, &k.b[0], 8);
    std::memcpy(&lo, &k.b[8], 8);
    uint32_t idx = CW_VERDICT_INDEX(hi, lo);
    int ncpu = libbpf_num_possible_cpus();
    std::vector<cw_verdict_slot> out(static_cast<size_t>(ncpu > 0 ? ncpu : 0));
    if (out.empty() ||
        bpf_map_lookup_elem(bpf_map__fd(skel_->maps.verdict_cache), &idx, out.data()) != 0)
        out.clear();
    return out;
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
        throw Error("Failed to add " + c.str() + " to the allowlist", errno_code(errno));
    retire_verdicts(); // an allow entry inside a CIDR block ends its drops
}

bool XdpProgram::allow_remove(const Cidr& c)
{
    // No cached verdict to retire: one allow entry fewer can only add drops.
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

std::set<Cidr> prefixes_holding(const std::vector<Cidr>& allow, unsigned ipv4_prefix,
                                unsigned ipv6_prefix)
{
    std::set<Cidr> out;
    for (const auto& c : allow) {
        unsigned len = c.address().is_v4() ? ipv4_prefix : ipv6_prefix;
        unsigned full = c.address().is_v4() ? 32 : 128;
        if (len == 0 || len >= full || c.length() <= len)
            continue;
        out.insert(Cidr(c.address(), len));
    }
    return out;
}

void XdpProgram::set_allow_inside(const std::set<Cidr>& prefixes)
{
    int fd = bpf_map__fd(skel_->maps.allow_inside);
    // Additions first: a moment with both rows errs on the side of counting
    // per address.
    uint8_t one = 1;
    for (const auto& c : prefixes) {
        cw_addr k = c.address().to_abi();
        if (bpf_map_update_elem(fd, &k, &one, BPF_ANY))
            throw Error("Failed to add " + c.str() + " to the prefixes counted per address (" +
                            std::to_string(bpf_map__max_entries(skel_->maps.allow_inside)) +
                            " at most)",
                        errno_code(errno));
    }
    std::vector<cw_addr> stale;
    for_each_entry<cw_addr, uint8_t>(fd, [&](const cw_addr& k, uint8_t) {
        bool wanted = std::any_of(prefixes.begin(), prefixes.end(), [&](const Cidr& c) {
            return c.address() == Address(k);
        });
        if (!wanted)
            stale.push_back(k);
    });
    for (const auto& k : stale)
        bpf_map_delete_elem(fd, &k);
}

std::set<Address> XdpProgram::allow_inside() const
{
    std::set<Address> out;
    for_each_entry<cw_addr, uint8_t>(bpf_map__fd(skel_->maps.allow_inside),
                                     [&](const cw_addr& k, uint8_t) { out.insert(Address(k)); });
    return out;
}

void XdpProgram::route_set(const Cidr& c, const cw_route& r)
{
    cw_lpm_key k = c.to_lpm();
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.routes), &k, &r, BPF_ANY))
        throw Error("Failed to mirror the route to " + c.str(), errno_code(errno));
}

bool XdpProgram::route_remove(const Cidr& c)
{
    cw_lpm_key k = c.to_lpm();
    return bpf_map_delete_elem(bpf_map__fd(skel_->maps.routes), &k) == 0;
}

std::vector<std::pair<Cidr, cw_route>> XdpProgram::route_list() const
{
    std::vector<std::pair<Cidr, cw_route>> out;
    for_each_entry<cw_lpm_key, cw_route>(bpf_map__fd(skel_->maps.routes),
                                         [&](const cw_lpm_key& k, const cw_route& r) {
                                             out.emplace_back(cidr_of(k), r);
                                         });
    return out;
}

uint32_t XdpProgram::route_capacity() const
{
    return bpf_map__max_entries(skel_->maps.routes);
}

void XdpProgram::set_rp_interfaces(const std::map<uint32_t, uint32_t>& modes)
{
    int fd = bpf_map__fd(skel_->maps.rp_iface);
    for (const auto& [ifindex, mode] : modes)
        if (bpf_map_update_elem(fd, &ifindex, &mode, BPF_ANY))
            throw Error("Failed to write the rp-filter mode of interface " +
                            std::to_string(ifindex),
                        errno_code(errno));
    for (const auto& [ifindex, mode] : rp_interfaces())
        if (!modes.count(ifindex))
            bpf_map_delete_elem(fd, &ifindex);
}

std::map<uint32_t, uint32_t> XdpProgram::rp_interfaces() const
{
    std::map<uint32_t, uint32_t> out;
    for_each_entry<uint32_t, uint32_t>(bpf_map__fd(skel_->maps.rp_iface),
                                       [&](uint32_t k, uint32_t v) { out[k] = v; });
    return out;
}

// The pass path's shortcut (connwatch_abi.h, exact_empty_gen). Disarmed
// before every insert made here, so that the program looks the source up
// from the next packet on; armed again only when a look at the map finds it
// empty, with the kernel's insert count read before that look: an automatic
// block made after the read moves the count, and the program stops skipping.
bool XdpProgram::write_exact_empty_gen(uint64_t gen)
{
    uint32_t key = 0;
    cw_config c = config();
    c.exact_empty_gen = gen;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.config), &key, &c, BPF_ANY) != 0)
        return false; // the map keeps what it held
    exact_empty_gen_ = gen;
    return true;
}

// false: still armed (the config could not be written), so an insert now
// could go unseen: the caller does not insert.
bool XdpProgram::disarm_exact_skip()
{
    std::lock_guard<std::mutex> lock(skip_mu_);
    return exact_empty_gen_ == 0 || write_exact_empty_gen(0);
}

bool XdpProgram::refresh_exact_skip()
{
    std::lock_guard<std::mutex> lock(skip_mu_);
    uint32_t key = 0;
    uint64_t gen = 0;
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.block_gen), &key, &gen) != 0)
        return false;
    if (exact_empty_gen_ != 0 && exact_empty_gen_ == gen + 1)
        return true; // armed, and no automatic block since
    cw_addr first{};
    if (bpf_map_get_next_key(bpf_map__fd(skel_->maps.block_addr), nullptr, &first) == 0) {
        if (exact_empty_gen_ != 0)
            write_exact_empty_gen(0); // stale: the count moved; tidy
        return false; // not empty
    }
    if (errno != ENOENT)
        return false;
    write_exact_empty_gen(gen + 1);
    return exact_empty_gen_ == gen + 1;
}

bool XdpProgram::exact_skip_armed() const
{
    std::lock_guard<std::mutex> lock(skip_mu_);
    return exact_empty_gen_ != 0;
}

bool XdpProgram::block_add(const Address& a, const cw_block& b)
{
    if (!disarm_exact_skip())
        return false;
    cw_addr k = a.to_abi();
    bool ok = bpf_map_update_elem(bpf_map__fd(skel_->maps.block_addr), &k, &b, BPF_ANY) == 0;
    int saved = errno;
    // Retired after every insert: a block rewritten may end sooner, and a
    // source cached as a prefix's or a CIDR block's drop is now counted as
    // its own (the fuzzer's reference counts it so).
    if (ok)
        retire_verdicts();
    errno = saved;
    return ok;
}

bool XdpProgram::block_remove(const Address& a)
{
    cw_addr k = a.to_abi();
    bool ok = bpf_map_delete_elem(bpf_map__fd(skel_->maps.block_addr), &k) == 0;
    if (ok) {
        retire_verdicts();
        refresh_exact_skip();
    }
    return ok;
}

std::optional<cw_block> XdpProgram::block_get(const Address& a) const
{
    cw_addr k = a.to_abi();
    cw_block b{};
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.block_addr), &k, &b) != 0)
        return std::nullopt;
    return b;
}

uint64_t XdpProgram::block_slice(uint64_t cursor, size_t max, const BlockVisitor& fn) const
{
    // A hash map's batch position is a bucket number (a u32); the cursor is
    // that number + 1, so that 0 can mean "from the start". One call: the
    // kernel returns whole buckets only, as many as fit in `count`, and fails
    // with ENOSPC only when the first bucket alone does not fit (then the
    // batch is made larger: a bucket of thousands is never seen, but a tiny
    // `count` must not end a walk).
    constexpr size_t kMinBatch = 1024;
    max = std::max(max, kMinBatch);
    int fd = bpf_map__fd(skel_->maps.block_addr);
    uint32_t in = cursor ? static_cast<uint32_t>(cursor - 1) : 0, out = 0;
    for (;;) {
        if (batch_keys_.size() < max) {
            batch_keys_.resize(max);
            batch_values_.resize(max);
        }
        uint32_t count = static_cast<uint32_t>(max);
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        int err = bpf_map_lookup_batch(fd, cursor ? &in : nullptr, &out, batch_keys_.data(),
                                       batch_values_.data(), &count, &opts);
        int e = err ? errno : 0;
        if (err && e == ENOSPC && count == 0 && max < (size_t{1} << 24)) {
            max *= 2;
            continue;
        }
        for (uint32_t i = 0; i < count; i++)
            fn(batch_keys_[i], batch_values_[i]);
        if (e == ENOENT)
            return 0; // the end
        if (err)
            return kSliceFailed;
        return static_cast<uint64_t>(out) + 1;
    }
}

void XdpProgram::block_for_each(const BlockVisitor& fn) const
{
    uint64_t cursor = 0;
    do
        cursor = block_slice(cursor, 16384, fn); // 640 KiB of buffers, kept
    while (cursor && cursor != kSliceFailed);
}


std::size_t XdpProgram::block_add_batch(const std::vector<cw_addr>& keys,
                                        const std::vector<cw_block>& values)
{
    LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
    uint32_t n = static_cast<uint32_t>(std::min(keys.size(), values.size()));
    if (n == 0)
        return 0;
    if (!disarm_exact_skip())
        return 0;
    // On failure `n` says how many were written before the one that failed.
    int err = bpf_map_update_batch(bpf_map__fd(skel_->maps.block_addr), keys.data(),
                                   values.data(), &n, &opts);
    int saved = errno;
    retire_verdicts(); // as block_add: some may be rewritten (a batch cannot tell)
    if (err != 0 && batch_unsupported(saved))
        return 0;
    return n;
}

namespace {

// Deletes keys (key_size bytes each, back to back) from a hash map in as few
// bpf() calls as it takes: a batch stops at the first key that is not there
// (ENOENT), which is marked not done and skipped; a kernel without batch
// operations gets them one by one. done[i]: key i was there and is gone.
std::size_t delete_keys(int fd, const uint8_t* keys, std::size_t n, std::size_t key_size,
                        std::vector<bool>* done)
{
    if (done)
        done->assign(n, false);
    std::size_t removed = 0, at = 0;
    bool batch = true;
    while (at < n) {
        if (!batch) {
            bool ok = bpf_map_delete_elem(fd, keys + at * key_size) == 0;
            if (done)
                (*done)[at] = ok;
            removed += ok ? 1 : 0;
            at++;
            continue;
        }
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        uint32_t count = static_cast<uint32_t>(std::min<std::size_t>(n - at, UINT32_MAX));
        int err = bpf_map_delete_batch(fd, keys + at * key_size, &count, &opts);
        int e = err ? errno : 0;
        if (err && batch_unsupported(e)) {
            batch = false; // count is not to be trusted: from `at`, one by one
            continue;
        }
        if (done)
            std::fill(done->begin() + static_cast<std::ptrdiff_t>(at),
                      done->begin() + static_cast<std::ptrdiff_t>(at + count), true);
        removed += count;
        at += count;
        if (err)
            at++; // key `at` was not there (ENOENT ends a batch): skip it, go on
    }
    return removed;
}

} // namespace

std::size_t XdpProgram::block_remove_batch(const std::vector<cw_addr>& keys,
                                           std::vector<bool>* done)
{
    std::size_t n = delete_keys(bpf_map__fd(skel_->maps.block_addr),
                                reinterpret_cast<const uint8_t*>(keys.data()), keys.size(),
                                sizeof(cw_addr), done);
    if (n) {
        retire_verdicts();
        refresh_exact_skip();
    }
    return n;
}

std::size_t XdpProgram::scan_state_remove_batch(const std::vector<cw_addr>& keys)
{
    return delete_keys(bpf_map__fd(skel_->maps.scan_state),
                       reinterpret_cast<const uint8_t*>(keys.data()), keys.size(),
                       sizeof(cw_addr), nullptr);
}

std::vector<cw_addr> XdpProgram::scan_state_sources() const
{
    std::vector<cw_addr> out;
    for_each_entry<cw_addr, cw_scan_state>(bpf_map__fd(skel_->maps.scan_state),
                                           [&](const cw_addr& k, const cw_scan_state&) {
                                               out.push_back(k);
                                           });
    return out;
}

uint32_t XdpProgram::allow_capacity() const
{
    return bpf_map__max_entries(skel_->maps.allow);
}

uint32_t XdpProgram::block_capacity() const
{
    return bpf_map__max_entries(skel_->maps.block_addr);
}

uint32_t XdpProgram::cidr_block_capacity() const
{
    return bpf_map__max_entries(skel_->maps.block_cidr);
}

std::vector<std::pair<Address, cw_block>> XdpProgram::block_list() const
{
    std::vector<std::pair<Address, cw_block>> out;
    block_for_each([&](const cw_addr& k, const cw_block& b) { out.emplace_back(Address(k), b); });
    return out;
}

bool XdpProgram::cidr_block_add(const Cidr& c, const cw_block& b, bool retire)
{
    cw_lpm_key k = c.to_lpm();
    cw_block v = b;
    // The program needs it to keep an IPv6 prefix from covering IPv4 (the
    // trie's ::/0 covers ::ffff:a.b.c.d): see connwatch_abi.h.
    v.v6_prefix = c.address().is_v4() ? 0 : 1;
    int fd = bpf_map__fd(skel_->maps.block_cidr);
    // The count moves only when the prefix is new. (A lookup would not tell:
    // an LPM trie's returns the longest prefix covering the key, maybe another
    // one; an update with BPF_EXIST matches the exact prefix.)
    // Retired after every insert, as in block_add: a rewritten prefix may end
    // sooner, and a longer prefix inside a cached one now counts the drop.
    if (bpf_map_update_elem(fd, &k, &v, BPF_EXIST) == 0) {
        if (retire)
            retire_verdicts();
        return true;
    }
    bool ok = bpf_map_update_elem(fd, &k, &v, BPF_NOEXIST) == 0;
    if (ok) {
        cidr_count_++;
        update_cidr_count();
        if (retire)
            retire_verdicts();
    }
    return ok;
}

bool XdpProgram::cidr_block_remove(const Cidr& c, bool retire)
{
    cw_lpm_key k = c.to_lpm();
    bool ok = bpf_map_delete_elem(bpf_map__fd(skel_->maps.block_cidr), &k) == 0;
    if (ok) {
        cidr_count_ -= cidr_count_ ? 1 : 0;
        update_cidr_count();
        if (retire)
            retire_verdicts();
    }
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
    std::lock_guard<std::mutex> lock(skip_mu_);
    cw_config c = config();
    c.cidr_blocks = cidr_count_;
    c.exact_empty_gen = exact_empty_gen_;
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

bool XdpProgram::scan_state_remove(const Address& a)
{
    cw_addr k = a.to_abi();
    return bpf_map_delete_elem(bpf_map__fd(skel_->maps.scan_state), &k) == 0;
}

std::optional<cw_scan_state> XdpProgram::scan_state(const Address& a) const
{
    cw_addr k = a.to_abi();
    cw_scan_state st{};
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.scan_state), &k, &st) != 0)
        return std::nullopt;
    return st;
}

std::optional<cw_offender> XdpProgram::offender(const cw_addr& key) const
{
    cw_offender o{};
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.offenders), &key, &o) != 0)
        return std::nullopt;
    return o;
}

bool XdpProgram::offender_set(const cw_addr& key, const cw_offender& o)
{
    return bpf_map_update_elem(bpf_map__fd(skel_->maps.offenders), &key, &o, BPF_ANY) == 0;
}

bool XdpProgram::offender_remove(const cw_addr& key)
{
    return bpf_map_delete_elem(bpf_map__fd(skel_->maps.offenders), &key) == 0;
}

std::vector<std::pair<cw_addr, cw_offender>> XdpProgram::offender_list() const
{
    std::vector<std::pair<cw_addr, cw_offender>> out;
    int fd = bpf_map__fd(skel_->maps.offenders);
    cw_addr key{}, next{};
    void* prev = nullptr;
    // Bounded by the map's capacity: an LRU being written meanwhile could
    // otherwise restart the walk without end.
    for (uint32_t n = bpf_map__max_entries(skel_->maps.offenders);
         n > 0 && bpf_map_get_next_key(fd, prev, &next) == 0; n--) {
        cw_offender o{};
        if (bpf_map_lookup_elem(fd, &next, &o) == 0)
            out.emplace_back(next, o);
        key = next;
        prev = &key;
    }
    return out;
}

uint32_t XdpProgram::offender_capacity() const
{
    return bpf_map__max_entries(skel_->maps.offenders);
}

void XdpProgram::set_fake_now(uint64_t ns)
{
    skel_->bss->cw_fake_now_ns = ns;
}

} // namespace connwatch
