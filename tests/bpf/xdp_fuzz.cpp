// SPDX-License-Identifier: GPL-2.0-only
// Differential fuzzer of the XDP program (docs/FUZZING.md, "The XDP program").
//
// Random and mutated frames -- VLAN stacks, IPv4 options and fragments, IPv6
// extension-header chains and fragments, truncations, odd TCP flags and data
// offsets, sources of every kind (ordinary, allowlisted, CIDR-blocked, martian,
// v4-mapped, link-local) from a bounded pool so that scans happen -- run through
// the real program with BPF_PROG_TEST_RUN and the test clock, and through the
// reference model (tests/ref/reference.h). Every frame's action, counter deltas
// and events must agree; at checkpoints the scan state, the blocklist, the
// de-duplication maps and the per-interface counts must too. Between frames the
// clock moves (sometimes past the window, the de-duplication interval and the
// block durations), and what userspace would do happens to both: configuration
// changes, manual blocks and unblocks, CIDR blocks, allow entries, the expiry
// sweep.
//
// Everything the fuzzer does follows from the seed alone, so a difference is
// replayed by running again with the same --seed and --frames (printed with
// it). Root only (it loads the program); it runs in a network namespace of its
// own holding a veth pair, so that frames also arrive on a device that is not
// loopback (whose 127/8 and ::1 sources are martians).
//
//   xdp_fuzz [--seed N] [--frames N] [--trace-from N] [--flip RULE [--expect-difference]]
//   xdp_fuzz --frame HEX     one frame, on a fresh program with the defaults
// CW_FUZZ_SEED and CW_FUZZ_FRAMES stand for --seed and --frames.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/address.h"
#include "kernel/event_reader.h"
#include "kernel/program.h"
#include "kernel/stats.h"
#include "reference.h"
#include "map_by_name.h"

namespace {

using connwatch::Address;
using connwatch::Cidr;
using connwatch::XdpProgram;
using connwatch::ref::Addr;
using connwatch::ref::Outcome;
using connwatch::ref::Prefix;
using connwatch::ref::Reference;
using connwatch::test::map_fd_by_name;
using Bytes = std::vector<uint8_t>;

constexpr uint64_t kMs = 1'000'000, kSec = 1'000'000'000;
constexpr uint64_t kStart = 3600 * kSec;
// Small, so that "the blocklist is full" happens; and exact (a plain hash of
// this size counts its entries exactly).
constexpr uint32_t kMaxBlocks = 16;
// The LRU maps are wiped (on both sides) well before they could evict: an LRU
// eviction is the kernel's business, not a rule the reference can state.
constexpr size_t kMaxScanSources = 4096, kMaxSeenFlows = 4096;
constexpr uint64_t kCheckpointEvery = 256, kFullCheckEvery = 65536, kEpochFrames = 10000;

// ---- the random source: every choice comes from the seed --------------------

struct Rng {
    std::mt19937_64 g;
    explicit Rng(uint64_t seed) : g(seed) {}
    uint64_t u64() { return g(); }
    uint64_t below(uint64_t n) { return n ? g() % n : 0; }
    uint64_t range(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }
    bool chance(unsigned percent) { return below(1000) < percent * 10; }
    bool permille(unsigned n) { return below(1000) < n; }
    uint8_t byte() { return static_cast<uint8_t>(g()); }
    template <typename T> const T& pick(const std::vector<T>& v) { return v[below(v.size())]; }
};

Addr parse_addr(const char* text)
{
    auto a = Address::parse(text);
    if (!a) {
        std::fprintf(stderr, "xdp_fuzz: bad address %s\n", text);
        std::exit(2);
    }
    return a->bytes();
}

cw_addr abi(const Addr& a)
{
    cw_addr c{};
    std::memcpy(c.b, a.data(), 16);
    return c;
}

// The source pool: every kind of source the rules tell apart.
struct Pool {
    std::vector<Addr> v4, v6;
    std::vector<Addr> dst4, dst6;
    std::vector<uint16_t> sports, dports;
    Pool()
    {
        for (const char* s :
             {"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5", "192.0.2.6",
              "192.0.2.7", "192.0.2.8", "192.0.2.0", "198.18.0.1", "198.18.0.2", "198.18.7.9",
              "240.0.0.1",                                   // class E: ordinary
              "10.1.0.1", "10.1.0.2", "198.51.100.1",        // allowlisted, own address
              "203.0.113.1", "203.0.113.2", "203.0.113.7",   // in a CIDR block (.7 allowed)
              "0.1.2.3", "127.0.0.1", "127.8.9.10", "224.0.0.251", "239.1.2.3",
              "255.255.255.255", "1.0.0.0", "223.255.255.255"})
            v4.push_back(parse_addr(s));
        for (const char* s :
             {"2001:db8:1::1", "2001:db8:1::2", "2001:db8:1::3", "2001:db8:1::4",
              "2001:db8:1::5", "2001:db8:1::6", "2001:db8:1::",           // one /64, its key
              "2001:db8:1:0:8000::1", "2001:db8:1:1::1",                  // a /65 apart, a /64 apart
              "fe80::1", "fe80::2",                                       // link-local
              "::192.0.2.1", "::2",                                       // v4-compatible
              "2001:db8:a11::1",                                          // allowlisted
              "2001:db8:bad::1", "2001:db8:bad::2", "2001:db8:bad::7",    // CIDR (::7 allowed)
              "::", "::1", "ff02::1", "ff05::3",                          // martians
              "::ffff:192.0.2.1", "::ffff:203.0.113.1", "::ffff:10.1.0.1"}) // v4-mapped
            v6.push_back(parse_addr(s));
        for (const char* s : {"198.51.100.1", "198.51.100.2"})
            dst4.push_back(parse_addr(s));
        for (const char* s : {"2001:db8:2::1", "2001:db8:2::2"})
            dst6.push_back(parse_addr(s));
        for (uint16_t p = 40000; p < 40006; p++)
            sports.push_back(p);
        for (uint16_t p : {22, 80, 443, 8080, 0, 65535})
            dports.push_back(p);
        for (uint16_t p = 1; p <= 30; p++)
            dports.push_back(p);
    }
};

// ---- frames ------------------------------------------------------------------

void put16(Bytes& b, uint16_t v)
{
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
}

struct Generator {
    Rng& r;
    const Pool& pool;
    std::deque<Bytes> queued; // a frame's truncations, one per byte

    Addr source(bool v4)
    {
        if (r.chance(3)) { // anything at all
            Addr a{};
            for (auto& b : a)
                b = r.byte();
            if (v4) {
                std::fill(a.begin(), a.begin() + 10, 0);
                a[10] = a[11] = 0xff;
            }
            return a;
        }
        return v4 ? r.pick(pool.v4) : r.pick(pool.v6);
    }

    uint8_t tcp_flags()
    {
        static const std::vector<uint8_t> common = {
            0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0xc2, 0x0a, 0x22, // attempts
            0x10, 0x12, 0x18, 0x11, 0x14,                         // with ACK
            0x00, 0x01, 0x29, 0x03, 0x06, 0x28, 0x41, 0x80,       // probes
            0x04, 0x05, 0x0c, 0x24, 0x07};                        // resets, and SYN+RST+FIN
        return r.chance(15) ? r.byte() : r.pick(common);
    }

    Bytes tcp_header(uint16_t sport, uint16_t dport)
    {
        Bytes t;
        put16(t, sport);
        put16(t, dport);
        for (int i = 0; i < 8; i++) // seq, ack
            t.push_back(r.byte());
        Bytes opts;
        if (r.chance(30)) {
            if (r.chance(50))
                opts = {2, 4, 5, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7};
            else
                for (size_t i = r.range(1, 40); i > 0; i--)
                    opts.push_back(r.byte());
            while (opts.size() % 4)
                opts.push_back(0);
            if (opts.size() > 40)
                opts.resize(40);
        }
        uint8_t doff = static_cast<uint8_t>(5 + opts.size() / 4);
        if (r.chance(8))
            doff = static_cast<uint8_t>(r.below(16));
        t.push_back(static_cast<uint8_t>(doff << 4 | (r.chance(3) ? r.below(16) : 0)));
        t.push_back(tcp_flags());
        put16(t, static_cast<uint16_t>(r.u64()));
        put16(t, 0); // checksum: the program reads none
        put16(t, 0);
        t.insert(t.end(), opts.begin(), opts.end());
        if (r.chance(10))
            for (size_t i = r.range(1, 64); i > 0; i--)
                t.push_back(r.byte());
        return t;
    }

    // How much of the transport header a tiny first fragment keeps.
    size_t tiny_cut(size_t max)
    {
        static const std::vector<size_t> cuts = {0, 1, 3, 4, 8, 12, 13, 14, 16, 19, 20, 24};
        return std::min(max, r.pick(cuts));
    }

    Bytes l4_payload(uint8_t* proto, uint16_t sport, uint16_t dport)
    {
        if (r.chance(5)) { // UDP, ICMP, anything
            static const std::vector<uint8_t> others = {17, 1, 58, 47, 132, 59, 6};
            *proto = r.pick(others);
            Bytes b;
            for (size_t i = r.range(0, 24); i > 0; i--)
                b.push_back(r.byte());
            return b;
        }
        *proto = 6;
        return tcp_header(sport, dport);
    }

    void ipv4(Bytes& f, uint16_t sport, uint16_t dport)
    {
        Addr src = source(true), dst = r.pick(pool.dst4);
        uint8_t proto;
        Bytes l4 = l4_payload(&proto, sport, dport);
        Bytes opts;
        if (r.chance(10)) {
            for (size_t i = r.range(1, 40); i > 0; i--)
                opts.push_back(r.chance(50) ? 1 : r.byte());
            while (opts.size() % 4)
                opts.push_back(0);
            opts.resize(std::min<size_t>(opts.size(), 40));
        }
        uint16_t frag = r.chance(50) ? 0x4000 : 0; // DF
        if (r.chance(12)) {
            switch (r.below(5)) {
            case 0: // a first fragment, often tiny
            case 1:
                frag = 0x2000;
                if (r.chance(70))
                    l4.resize(tiny_cut(l4.size()));
                break;
            case 2: frag = 1 | (r.chance(50) ? 0x2000 : 0); break; // offset 1
            case 3: frag = static_cast<uint16_t>(r.range(2, 0x1fff) | (r.chance(50) ? 0x2000 : 0)); break;
            default: frag = static_cast<uint16_t>(r.u64()); break;
            }
        }
        size_t hlen = 20 + opts.size();
        uint8_t ihl = static_cast<uint8_t>(hlen / 4);
        if (r.chance(2))
            ihl = static_cast<uint8_t>(r.below(16));
        uint8_t version = r.chance(1) ? static_cast<uint8_t>(r.below(16)) : 4;
        f.push_back(static_cast<uint8_t>(version << 4 | ihl));
        f.push_back(0);
        uint16_t total = static_cast<uint16_t>(hlen + l4.size());
        if (r.chance(4))
            total = r.chance(50) ? static_cast<uint16_t>(r.below(64)) : static_cast<uint16_t>(r.u64());
        put16(f, total);
        put16(f, static_cast<uint16_t>(r.u64()));
        put16(f, frag);
        f.push_back(64);
        f.push_back(proto);
        put16(f, 0);
        f.insert(f.end(), src.begin() + 12, src.end());
        f.insert(f.end(), dst.begin() + 12, dst.end());
        f.insert(f.end(), opts.begin(), opts.end());
        f.insert(f.end(), l4.begin(), l4.end());
    }

    void ipv6(Bytes& f, uint16_t sport, uint16_t dport)
    {
        Addr src = source(false), dst = r.pick(pool.dst6);
        uint8_t proto;
        Bytes l4 = l4_payload(&proto, sport, dport);
        // The extension headers: type and bytes, the next-header bytes filled
        // in after.
        std::vector<std::pair<uint8_t, Bytes>> ext;
        bool first_frag = false;
        if (r.chance(30)) {
            size_t n = r.chance(70) ? r.range(1, 3) : r.range(4, 9);
            static const std::vector<uint8_t> types = {0, 43, 60, 44, 51, 60, 44};
            for (size_t i = 0; i < n; i++) {
                uint8_t type = r.pick(types);
                Bytes h;
                if (type == 44) {
                    uint16_t off = r.chance(65) ? 0 : r.chance(30) ? 1 : static_cast<uint16_t>(r.below(8192));
                    bool more = r.chance(60);
                    h = {0, 0, static_cast<uint8_t>(off >> 5),
                         static_cast<uint8_t>((off << 3) | (more ? 1 : 0) | (r.chance(3) ? 6 : 0))};
                    for (int k = 0; k < 4; k++)
                        h.push_back(r.byte());
                    first_frag = first_frag || (off == 0 && more);
                } else if (type == 51) {
                    uint8_t units = static_cast<uint8_t>(r.range(1, 6)); // (units + 2) * 4 bytes
                    h.assign((units + 2) * 4, 0);
                    h[1] = units;
                } else {
                    uint8_t units = static_cast<uint8_t>(r.chance(80) ? 0 : r.range(1, 4));
                    h.assign((units + 1) * 8, 0);
                    h[1] = units;
                    for (size_t k = 2; k < h.size(); k++)
                        h[k] = r.chance(80) ? 0 : r.byte();
                }
                ext.emplace_back(type, std::move(h));
            }
        }
        if (first_frag && r.chance(60))
            l4.resize(tiny_cut(l4.size()));
        Bytes chain;
        for (size_t i = 0; i < ext.size(); i++) {
            Bytes h = ext[i].second;
            h[0] = i + 1 < ext.size() ? ext[i + 1].first : proto;
            chain.insert(chain.end(), h.begin(), h.end());
        }
        uint8_t next = ext.empty() ? proto : ext[0].first;
        if (first_frag && r.chance(10) && !chain.empty()) { // the chain ends past the fragment
            chain.resize(r.below(chain.size()));
            l4.clear();
        }
        uint8_t version = r.chance(1) ? static_cast<uint8_t>(r.below(16)) : 6;
        f.push_back(static_cast<uint8_t>(version << 4));
        f.push_back(0);
        put16(f, static_cast<uint16_t>(r.u64()));
        uint16_t payload = static_cast<uint16_t>(chain.size() + l4.size());
        if (r.chance(4))
            payload = static_cast<uint16_t>(r.chance(50) ? r.below(80) : r.u64());
        put16(f, payload);
        f.push_back(next);
        f.push_back(64);
        f.insert(f.end(), src.begin(), src.end());
        f.insert(f.end(), dst.begin(), dst.end());
        f.insert(f.end(), chain.begin(), chain.end());
        f.insert(f.end(), l4.begin(), l4.end());
    }

    Bytes next()
    {
        if (!queued.empty()) {
            Bytes b = std::move(queued.front());
            queued.pop_front();
            return b;
        }
        Bytes f;
        for (int i = 0; i < 12; i++)
            f.push_back(static_cast<uint8_t>(i < 6 ? 2 : 4));
        unsigned tags = r.chance(72) ? 0 : r.chance(50) ? 1 : r.chance(65) ? 2 : 3;
        for (unsigned i = 0; i < tags; i++) {
            put16(f, r.chance(50) ? 0x8100 : 0x88a8);
            put16(f, static_cast<uint16_t>(r.below(4096)));
        }
        uint16_t sport = r.chance(95) ? r.pick(pool.sports) : static_cast<uint16_t>(r.u64());
        uint16_t dport = r.chance(97) ? r.pick(pool.dports) : static_cast<uint16_t>(r.u64());
        unsigned kind = static_cast<unsigned>(r.below(100));
        if (kind < 3) { // not IP
            static const std::vector<uint16_t> types = {0x0806, 0x88cc, 0x8100, 0x88a8, 0x0000, 0xffff};
            put16(f, r.chance(70) ? r.pick(types) : static_cast<uint16_t>(r.u64()));
            for (size_t i = r.range(0, 46); i > 0; i--)
                f.push_back(r.byte());
        } else if (kind < 58) {
            put16(f, 0x0800);
            ipv4(f, sport, dport);
        } else {
            put16(f, 0x86dd);
            ipv6(f, sport, dport);
        }
        if (r.chance(25) && f.size() < 60)
            f.resize(60, 0); // Ethernet's padding, in no length word
        if (r.chance(5)) // mutated: a few bytes anywhere
            for (size_t i = r.range(1, 4); i > 0; i--)
                f[r.range(12, f.size() - 1)] = r.byte();
        if (r.permille(3)) { // truncated at every byte, one frame each
            for (size_t len = 14; len < f.size(); len++)
                queued.emplace_back(f.begin(), f.begin() + static_cast<long>(len));
            queued.push_back(f);
            return next();
        }
        if (r.chance(8)) // truncated at one byte
            f.resize(r.range(14, f.size()));
        return f;
    }
};

// ---- the program's side -------------------------------------------------------

std::string hex(const Bytes& b)
{
    std::string s;
    char buf[4];
    for (uint8_t c : b) {
        std::snprintf(buf, sizeof buf, "%02x", c);
        s += buf;
    }
    return s;
}

struct Kernel {
    std::unique_ptr<XdpProgram> prog;
    std::unique_ptr<connwatch::EventReader> reader;
    std::vector<cw_event> pending;
    int stats_fd = -1, scan_fd = -1, syn_seen_fd = -1, probe_seen_fd = -1, bucket_fd = -1;
    int ncpu = 0;
    std::vector<uint32_t> keys;
    std::vector<uint64_t> values;
    connwatch::Stats last{};

    Kernel()
    {
        connwatch::LoadSettings s;
        s.max_blocks = kMaxBlocks;
        s.test_clock = true;
        prog = std::make_unique<XdpProgram>(s);
        reader = std::make_unique<connwatch::EventReader>(
            *prog, [this](const cw_event& e) { pending.push_back(e); });
        stats_fd = map_fd_by_name(prog->prog_fd(), "stats");
        scan_fd = map_fd_by_name(prog->prog_fd(), "scan_state");
        syn_seen_fd = map_fd_by_name(prog->prog_fd(), "syn_seen");
        probe_seen_fd = map_fd_by_name(prog->prog_fd(), "probe_seen");
        bucket_fd = map_fd_by_name(prog->prog_fd(), "bucket");
        if (stats_fd < 0 || scan_fd < 0 || syn_seen_fd < 0 || probe_seen_fd < 0 || bucket_fd < 0)
            throw std::runtime_error("cannot find the program's maps by name");
        ncpu = libbpf_num_possible_cpus();
        keys.resize(CW_STAT_MAX);
        values.resize(static_cast<size_t>(CW_STAT_MAX) * static_cast<size_t>(ncpu));
        last = stats();
    }

    // Every counter summed over CPUs, in one system call.
    connwatch::Stats stats()
    {
        connwatch::Stats out{};
        uint32_t count = CW_STAT_MAX, out_batch = 0;
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        int err = bpf_map_lookup_batch(stats_fd, nullptr, &out_batch, keys.data(), values.data(),
                                       &count, &opts);
        if (err && errno != ENOENT)
            return prog->stats();
        for (uint32_t i = 0; i < count; i++)
            for (int c = 0; c < ncpu; c++)
                out[keys[i]] += values[static_cast<size_t>(i) * ncpu + c];
        return out;
    }

    // One frame; false when BPF_PROG_TEST_RUN refused it.
    bool run(const Bytes& frame, uint32_t ifindex, Outcome* o)
    {
        xdp_md ctx{};
        ctx.data_end = static_cast<uint32_t>(frame.size());
        ctx.ingress_ifindex = ifindex;
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
                    .data_size_in = static_cast<uint32_t>(frame.size()), .ctx_in = &ctx,
                    .ctx_size_in = sizeof(ctx), .repeat = 1);
        if (bpf_prog_test_run_opts(prog->prog_fd(), &opts) != 0)
            return false;
        // Only the program moves the counters: the last read is this run's
        // "before".
        connwatch::Stats after = stats();
        for (uint32_t i = 0; i < CW_STAT_MAX; i++)
            o->delta[i] = after[i] - last[i];
        last = after;
        o->action = static_cast<int>(opts.retval);
        reader->consume();
        o->events = std::move(pending);
        pending.clear();
        return true;
    }

    template <typename K> size_t wipe(int fd)
    {
        std::vector<K> all;
        K k{}, next{};
        void* prev = nullptr;
        while (bpf_map_get_next_key(fd, prev, &next) == 0) {
            all.push_back(next);
            k = next;
            prev = &k;
        }
        for (auto& key : all)
            bpf_map_delete_elem(fd, &key);
        return all.size();
    }

    template <typename K, typename V> std::vector<std::pair<K, V>> dump(int fd)
    {
        std::vector<std::pair<K, V>> out;
        K k{}, next{};
        void* prev = nullptr;
        while (bpf_map_get_next_key(fd, prev, &next) == 0) {
            V v{};
            if (bpf_map_lookup_elem(fd, &next, &v) == 0)
                out.emplace_back(next, v);
            k = next;
            prev = &k;
        }
        return out;
    }
};

// ---- comparing ------------------------------------------------------------------

std::string action_name(int a)
{
    return a == XDP_PASS ? "PASS" : a == XDP_DROP ? "DROP" : std::to_string(a);
}

std::string describe(const cw_event& e)
{
    char buf[512];
    Addr s, d;
    std::memcpy(s.data(), e.saddr.b, 16);
    std::memcpy(d.data(), e.daddr.b, 16);
    std::snprintf(buf, sizeof buf,
                  "%s %s:%u -> %s:%u if %u ts %" PRIu64 " flags 0x%02x tiny %u",
                  e.type == CW_EV_NEW_CONN ? "NEW_CONN" : e.type == CW_EV_PROBE ? "PROBE"
                  : e.type == CW_EV_SCAN ? "SCAN" : "type?",
                  connwatch::ref::to_string(s).c_str(), e.sport, connwatch::ref::to_string(d).c_str(),
                  e.dport, e.ifindex, static_cast<uint64_t>(e.ts_ns), e.tcp_flags, e.tiny_fragment);
    std::string out = buf;
    if (e.type == CW_EV_SCAN) {
        std::snprintf(buf, sizeof buf, " action %u expires %" PRIu64 " unit /%u block /%u ports",
                      e.action, static_cast<uint64_t>(e.expires_ns), e.prefix_len,
                      e.block_prefix_len);
        out += buf;
        std::vector<uint16_t> ports(e.ports, e.ports + std::min<unsigned>(e.nports, CW_SCAN_SLOTS));
        std::sort(ports.begin(), ports.end());
        for (auto p : ports)
            out += " " + std::to_string(p);
    }
    return out;
}

std::string describe(const Outcome& o)
{
    std::string s = "action " + action_name(o.action) + ", counters {";
    const char* sep = "";
    for (uint32_t i = 0; i < CW_STAT_MAX; i++)
        if (o.delta[i]) {
            s += sep + std::string(connwatch::stat_name(i)) + " +" + std::to_string(o.delta[i]);
            sep = ", ";
        }
    s += "}, " + std::to_string(o.events.size()) + " event(s)";
    for (const auto& e : o.events)
        s += "\n      " + describe(e);
    return s;
}

bool same_event(const cw_event& a, const cw_event& b)
{
    if (a.type != b.type || a.ts_ns != b.ts_ns || std::memcmp(&a.saddr, &b.saddr, 16) ||
        std::memcmp(&a.daddr, &b.daddr, 16) || a.ifindex != b.ifindex || a.sport != b.sport ||
        a.dport != b.dport || a.tcp_flags != b.tcp_flags || a.tiny_fragment != b.tiny_fragment ||
        a.action != b.action || a.expires_ns != b.expires_ns || a.nports != b.nports ||
        a.prefix_len != b.prefix_len || a.block_prefix_len != b.block_prefix_len)
        return false;
    unsigned n = std::min<unsigned>(a.nports, CW_SCAN_SLOTS);
    std::multiset<uint16_t> pa(a.ports, a.ports + n), pb(b.ports, b.ports + n);
    return pa == pb;
}

bool same(const Outcome& a, const Outcome& b)
{
    if (a.action != b.action || a.delta != b.delta || a.events.size() != b.events.size())
        return false;
    for (size_t i = 0; i < a.events.size(); i++)
        if (!same_event(a.events[i], b.events[i]))
            return false;
    return true;
}

// ---- the run ----------------------------------------------------------------------

struct Args {
    uint64_t seed = 1;
    uint64_t frames = 1'000'000;
    uint64_t trace_from = UINT64_MAX;
    connwatch::ref::Flip flip = connwatch::ref::Flip::none;
    std::string flip_name = "none";
    bool expect_difference = false;
    std::optional<Bytes> single;
};

struct Fuzzer {
    Args args;
    Rng r;
    Pool pool;
    Generator gen;
    Kernel k;
    Reference ref{kMaxBlocks};
    uint64_t now = kStart;
    uint32_t veth = 0;
    uint64_t frame_no = 0;
    // What was run, for the summary.
    std::map<std::string, uint64_t> tally;
    std::array<uint64_t, CW_STAT_MAX> verdicts{};
    std::set<Addr> touched; // sources whose state changed since the last checkpoint
    std::vector<Cidr> allow_cidrs; // the allowlist as userspace knows it (for allow_inside)

    Fuzzer(const Args& a, uint32_t veth_ifindex)
        : args(a), r(a.seed), gen{r, pool, {}}, veth(veth_ifindex)
    {
        ref.flip = a.flip;
        k.prog->set_fake_now(now);
        // Allowlisted: a /24, the host's own address, loopback, an IPv6 /48
        // and one host inside each CIDR block (an allow entry wins there).
        for (const char* c : {"10.1.0.0/24", "198.51.100.1/32", "127.0.0.0/8", "::1/128",
                              "2001:db8:a11::/48", "203.0.113.7/32", "2001:db8:bad::7/128"})
            allow_add(c);
        cidr_add("203.0.113.0/24", 0);
        cidr_add("2001:db8:bad::/48", 0);
        configure(true);
    }

    static Prefix prefix_of(const Cidr& c)
    {
        return Prefix{c.address().bytes(), c.lpm_length()};
    }

    void allow_add(const char* text)
    {
        Cidr c = *Cidr::parse(text);
        k.prog->allow_add(c);
        ref.allow.push_back(prefix_of(c));
        allow_cidrs.push_back(c);
        sync_allow_inside();
    }

    // What connwatchd does after every allowlist change and change of prefix
    // length: the prefixes holding an allow entry, counted per address. The
    // reference works it out on its own from its allowlist.
    void sync_allow_inside()
    {
        k.prog->set_allow_inside(
            prefixes_holding(allow_cidrs, ref.config.ipv4_prefix, ref.config.ipv6_prefix));
    }

    void cidr_add(const char* text, uint64_t expires)
    {
        Cidr c = *Cidr::parse(text);
        cw_block b{};
        b.created_ns = now;
        b.expires_ns = expires;
        b.origin = CW_ORIGIN_MANUAL;
        if (!k.prog->cidr_block_add(c, b))
            throw std::runtime_error("cidr_block_add failed");
        ref.cidr[prefix_of(c)] = {now, expires, CW_ORIGIN_MANUAL, !c.address().is_v4()};
    }

    void cidr_remove(const char* text)
    {
        Cidr c = *Cidr::parse(text);
        if (k.prog->cidr_block_remove(c))
            ref.cidr.erase(prefix_of(c));
    }

    // A configuration: zero first (a field added later means today's
    // behaviour at zero), then the fields this fuzzer knows. The window changes
    // only with the scan state wiped on both sides: the slots keep expired
    // stamps, which a longer window would bring back, and which of them a new
    // port overwrites is the program's choice of slot, not a rule.
    void configure(bool first)
    {
        cw_config c{};
        static const std::vector<uint32_t> thresholds = {1, 2, 3, 3, 3, 3, 4, 5, 8};
        c.threshold = r.chance(90) ? r.pick(thresholds) : static_cast<uint32_t>(r.range(1, 31));
        static const std::vector<uint64_t> windows = {60 * kSec, 60 * kSec, 10 * kSec, 2 * kSec,
                                                     500 * kMs, 300 * kSec};
        c.window_ns = r.chance(85) ? r.pick(windows) : r.range(1, 120'000) * kMs + r.below(kMs);
        static const std::vector<uint64_t> blocks = {3600 * kSec, 30 * kSec, 5 * kSec, 0, 1 * kSec};
        c.block_ns = r.chance(90) ? r.pick(blocks) : r.range(1, 100'000) * kMs + r.below(kMs);
        static const std::vector<uint64_t> dedups = {5 * kSec, 5 * kSec, 1 * kSec, 0};
        c.dedup_ns = r.chance(90) ? r.pick(dedups) : r.below(10 * kSec);
        c.monitor_only = r.chance(10);
        c.drop_tiny_frags = r.chance(70);
        if (r.chance(50)) {
            static const std::vector<uint64_t> rates = {1, 1, 5, 100};
            static const std::vector<uint64_t> bursts = {1, 1, 2, 3, 100};
            c.block_every_ns = kSec / r.pick(rates);
            c.block_slack_ns = (r.pick(bursts) - 1) * c.block_every_ns;
        }
        // ipv4-prefix / ipv6-prefix: often off (0, which the fields added
        // before them also see), else the lengths worth telling apart: the
        // defaults, per address spelt out, a prefix shorter than the pool's
        // shared ones, a bit apart, the widest allowed.
        if (r.chance(60)) {
            static const std::vector<uint8_t> v4s = {0, 32, 24, 24, 31, 16, 8, 30};
            static const std::vector<uint8_t> v6s = {0, 128, 64, 64, 64, 48, 65, 127, 16, 120};
            c.ipv4_prefix = r.pick(v4s);
            c.ipv6_prefix = r.pick(v6s);
        }
        if (!first && c.window_ns != ref.config.window_ns) {
            k.wipe<cw_addr>(k.scan_fd);
            ref.scan.clear();
        }
        // allow_inside first, as connwatchd's reload does (a moment with both
        // errs on the side of per address).
        ref.config = c;
        sync_allow_inside();
        k.prog->set_config(c);
        tally["configurations"]++;
        if (c.ipv4_prefix || c.ipv6_prefix)
            tally["configurations with prefixes"]++;
    }

    // connwatchd's defaults, for --frame.
    void defaults()
    {
        cw_config c{};
        c.threshold = 3;
        c.window_ns = 60 * kSec;
        c.block_ns = 3600 * kSec;
        c.dedup_ns = 5 * kSec;
        c.drop_tiny_frags = 1;
        c.block_every_ns = kSec / 5;
        c.block_slack_ns = 99 * c.block_every_ns;
        k.prog->set_config(c);
        ref.config = c;
    }

    // What userspace does now and then, to both sides.
    void housekeeping()
    {
        if (frame_no % kEpochFrames == 0 && frame_no)
            configure(false);
        if (r.permille(2)) { // the expiry sweep: expired blocks go, their sources start afresh
            std::vector<Addr> gone;
            for (auto& [a, b] : ref.blocks)
                if (!b.active(now))
                    gone.push_back(a);
            for (auto& a : gone) {
                k.prog->block_remove(Address(abi(a)));
                k.prog->scan_state_remove(Address(abi(a)));
                ref.blocks.erase(a);
                ref.scan.erase(a);
            }
            tally["expiry sweeps"]++;
        }
        if (r.permille(2) && !ref.blocks.empty()) { // connwatchctl unblock
            auto it = ref.blocks.begin();
            std::advance(it, static_cast<long>(r.below(ref.blocks.size())));
            Addr a = it->first;
            k.prog->block_remove(Address(abi(a)));
            k.prog->scan_state_remove(Address(abi(a)));
            ref.blocks.erase(a);
            ref.scan.erase(a);
            tally["unblocks"]++;
        }
        if (r.permille(2)) { // connwatchctl block (a pool source that no allow entry covers)
            bool v4 = r.chance(60);
            Addr a = v4 ? r.pick(pool.v4) : r.pick(pool.v6);
            bool covered = std::any_of(ref.allow.begin(), ref.allow.end(),
                                       [&](const Prefix& p) { return p.covers(a); });
            if (!covered && (ref.blocks.count(a) || ref.blocks.size() < kMaxBlocks)) {
                cw_block b{};
                b.created_ns = now;
                b.expires_ns = r.chance(30) ? 0 : now + r.range(1, 120) * kSec;
                b.origin = CW_ORIGIN_MANUAL;
                if (k.prog->block_add(Address(abi(a)), b))
                    ref.blocks[a] = {b.created_ns, b.expires_ns, b.origin, false};
                tally["manual blocks"]++;
            }
        }
        if (r.permille(1)) { // CIDR blocks come and go, with and without deadlines
            static const std::vector<const char*> prefixes = {"198.18.0.0/16", "::/8",
                                                              "2001:db8:1::/64", "192.0.2.0/29"};
            const char* p = r.pick(prefixes);
            if (r.chance(50))
                cidr_add(p, r.chance(50) ? 0 : now + r.range(1, 60) * kSec);
            else
                cidr_remove(p);
            tally["CIDR changes"]++;
        }
        if (r.permille(1)) { // connwatchctl allow / disallow
            static const std::vector<const char*> prefixes = {"192.0.2.8/32", "2001:db8:1::6/128",
                                                              "198.18.0.0/16"};
            Cidr c = *Cidr::parse(r.pick(prefixes));
            Prefix p = prefix_of(c);
            auto it = std::find(ref.allow.begin(), ref.allow.end(), p);
            if (it == ref.allow.end()) {
                k.prog->allow_add(c);
                ref.allow.push_back(p);
                allow_cidrs.push_back(c);
                sync_allow_inside();
                // Userspace lifts the blocks the entry covers; their sources
                // start afresh.
                std::vector<Addr> lifted;
                for (auto& [a, b] : ref.blocks)
                    if (p.covers(a))
                        lifted.push_back(a);
                for (auto& a : lifted) {
                    k.prog->block_remove(Address(abi(a)));
                    k.prog->scan_state_remove(Address(abi(a)));
                    ref.blocks.erase(a);
                    ref.scan.erase(a);
                }
            } else {
                k.prog->allow_remove(c);
                ref.allow.erase(it);
                allow_cidrs.erase(std::find(allow_cidrs.begin(), allow_cidrs.end(), c));
                sync_allow_inside();
            }
            tally["allow changes"]++;
        }
        if (ref.scan.size() > kMaxScanSources) {
            k.wipe<cw_addr>(k.scan_fd);
            ref.scan.clear();
            tally["scan state wiped"]++;
        }
        if (ref.syn_seen.size() > kMaxSeenFlows) {
            k.wipe<cw_flow_key>(k.syn_seen_fd);
            ref.syn_seen.clear();
            tally["syn_seen wiped"]++;
        }
        if (ref.probe_seen.size() > kMaxSeenFlows) {
            k.wipe<cw_flow_key>(k.probe_seen_fd);
            ref.probe_seen.clear();
            tally["probe_seen wiped"]++;
        }
    }

    void advance_clock()
    {
        uint64_t step;
        unsigned x = static_cast<unsigned>(r.below(1000));
        if (x < 20)
            step = 0;
        else if (x < 800)
            step = r.below(3 * kMs);
        else if (x < 960)
            step = r.below(500 * kMs);
        else if (x < 990)
            step = r.range(1, 7) * kSec + r.below(kSec);
        else if (x < 996) // about the window (never backwards: time only advances)
            step = std::max<uint64_t>(ref.config.window_ns + r.below(2 * kSec), kSec / 2) - kSec / 2;
        else
            step = ref.config.block_ns + r.below(2 * kSec);
        now += step;
        k.prog->set_fake_now(now);
    }

    [[noreturn]] void fail(const std::string& what, const Bytes* frame, uint32_t ifindex)
    {
        std::printf("xdp_fuzz: DIFFERENCE %s\n", what.c_str());
        std::printf("  seed %" PRIu64 ", frame %" PRIu64 ", clock %" PRIu64 " ns, ifindex %u\n",
                    args.seed, frame_no, now, ifindex);
        if (frame)
            std::printf("  frame hex (%zu bytes): %s\n", frame->size(), hex(*frame).c_str());
        std::printf("  replay: xdp_fuzz --seed %" PRIu64 " --frames %" PRIu64 "%s%s "
                    "(--trace-from N prints every frame from N on)\n",
                    args.seed, frame_no + 1, args.flip_name == "none" ? "" : " --flip ",
                    args.flip_name == "none" ? "" : args.flip_name.c_str());
        std::fflush(stdout);
        std::exit(args.expect_difference ? 0 : 1);
    }

    // The scan state, the blocklist and what hangs on them.
    void checkpoint(bool full)
    {
        uint64_t now_ms = now / kMs + 1, window_ms = ref.config.window_ns / kMs;
        auto kernel_live = [&](const cw_scan_state& st) {
            std::map<uint16_t, uint64_t> live;
            for (uint64_t s : st.slot)
                if (s && static_cast<int64_t>(now_ms - (s >> 16)) < static_cast<int64_t>(window_ms))
                    live.emplace(static_cast<uint16_t>(s & 0xffff), s >> 16);
            return live;
        };
        auto ports = [](const std::map<uint16_t, uint64_t>& m) {
            std::string s;
            for (auto [p, t] : m)
                s += " " + std::to_string(p) + "@" + std::to_string(t);
            return s.empty() ? std::string(" none") : s;
        };
        auto compare_source = [&](const Addr& a, const std::optional<cw_scan_state>& st) {
            auto it = ref.scan.find(a);
            std::map<uint16_t, uint64_t> want, got;
            uint64_t want_rep = 0, got_rep = 0;
            if (it != ref.scan.end()) {
                want = ref.live_ports(it->second, now);
                want_rep = it->second.reported_ms;
            }
            if (st) {
                got = kernel_live(*st);
                got_rep = st->reported_ms;
            }
            if (want != got || want_rep != got_rep)
                fail("in the scan state of " + connwatch::ref::to_string(a) +
                         ":\n  reference: ports" + ports(want) + ", reported_ms " +
                         std::to_string(want_rep) + "\n  kernel:    ports" + ports(got) +
                         ", reported_ms " + std::to_string(got_rep),
                     nullptr, 0);
        };
        if (full) {
            auto all = k.dump<cw_addr, cw_scan_state>(k.scan_fd);
            std::set<Addr> keys;
            for (auto& [key, st] : all) {
                Addr a;
                std::memcpy(a.data(), key.b, 16);
                keys.insert(a);
                compare_source(a, st);
            }
            for (auto& [a, st] : ref.scan)
                if (!keys.count(a))
                    compare_source(a, std::nullopt);
            for (auto [fd, model, name] :
                 {std::tuple{k.syn_seen_fd, &ref.syn_seen, "syn_seen"},
                  std::tuple{k.probe_seen_fd, &ref.probe_seen, "probe_seen"}}) {
                auto got = k.dump<cw_flow_key, uint64_t>(fd);
                std::map<connwatch::ref::Flow, uint64_t> conv;
                for (auto& [key, t] : got) {
                    connwatch::ref::Flow f;
                    std::memcpy(f.src.data(), key.saddr.b, 16);
                    std::memcpy(f.dst.data(), key.daddr.b, 16);
                    f.sport = key.sport;
                    f.dport = key.dport;
                    conv[f] = t;
                }
                if (conv != *model)
                    fail(std::string("in ") + name + ": reference " + std::to_string(model->size()) +
                             " flows, kernel " + std::to_string(conv.size()),
                         nullptr, 0);
            }
            auto per_if = k.prog->connections_per_interface();
            std::map<uint32_t, uint64_t> want;
            for (auto [i, n] : ref.syn_per_ifindex)
                if (n)
                    want[i] = n;
            if (per_if != want)
                fail("in the per-interface attempt counts (if_syn)", nullptr, 0);
            uint32_t zero = 0;
            uint64_t tat = 0;
            if (bpf_map_lookup_elem(k.bucket_fd, &zero, &tat) != 0 || tat != ref.bucket_tat)
                fail("in the block bucket: reference tat " + std::to_string(ref.bucket_tat) +
                         ", kernel " + std::to_string(tat),
                     nullptr, 0);
            tally["full checkpoints"]++;
        } else {
            for (const Addr& a : touched)
                compare_source(a, k.prog->scan_state(Address(abi(a))));
        }
        touched.clear();
        std::map<Addr, connwatch::ref::Block> got;
        for (auto& [a, b] : k.prog->block_list())
            got[a.bytes()] = {b.created_ns, b.expires_ns, b.origin, b.v6_prefix != 0, b.prefix_len};
        if (got != ref.blocks) {
            std::string s = "in the blocklist:\n  reference:";
            for (auto& [a, b] : ref.blocks)
                s += " " + connwatch::ref::to_string(a) + "(" + std::to_string(b.created_ns) + "," +
                     std::to_string(b.expires_ns) + "," + std::to_string(b.origin) + ",/" +
                     std::to_string(b.prefix_len) + ")";
            s += "\n  kernel:   ";
            for (auto& [a, b] : got)
                s += " " + connwatch::ref::to_string(a) + "(" + std::to_string(b.created_ns) + "," +
                     std::to_string(b.expires_ns) + "," + std::to_string(b.origin) + ",/" +
                     std::to_string(b.prefix_len) + ")";
            fail(s, nullptr, 0);
        }
        tally["checkpoints"]++;
    }

    void one(const Bytes& f)
    {
        uint32_t ifindex = r.chance(80) ? 1 : veth;
        bool trace = frame_no >= args.trace_from;
        Outcome want = ref.classify(f, ifindex, now), got;
        if (!k.run(f, ifindex, &got))
            fail("BPF_PROG_TEST_RUN refused the frame: " + std::string(std::strerror(errno)), &f,
                 ifindex);
        if (trace)
            std::printf("frame %" PRIu64 " clock %" PRIu64 " if %u: %s\n  %s\n", frame_no, now,
                        ifindex, hex(f).c_str(), describe(got).c_str());
        if (!same(want, got))
            fail("in what the frame got:\n  reference: " + describe(want) +
                     "\n  kernel:    " + describe(got),
                 &f, ifindex);
        for (uint32_t i = 0; i < CW_STAT_MAX; i++)
            verdicts[i] += got.delta[i];
        for (const auto& e : got.events) {
            Addr a;
            std::memcpy(a.data(), e.saddr.b, 16);
            touched.insert(a);
            tally[e.type == CW_EV_SCAN ? "events: scan" : e.type == CW_EV_PROBE ? "events: probe"
                                                                                 : "events: new connection"]++;
        }
    }

    int run()
    {
        auto t0 = std::chrono::steady_clock::now();
        for (frame_no = 0; frame_no < args.frames; frame_no++) {
            housekeeping();
            advance_clock();
            one(gen.next());
            if ((frame_no + 1) % kCheckpointEvery == 0)
                checkpoint((frame_no + 1) % kFullCheckEvery == 0);
        }
        checkpoint(true);
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (args.expect_difference) {
            std::printf("xdp_fuzz: no difference found in %" PRIu64 " frames with --flip %s\n",
                        args.frames, args.flip_name.c_str());
            return 1;
        }
        std::printf("xdp_fuzz: seed %" PRIu64 ": %" PRIu64 " frames agree (%.1f s, %.0f frames/s)\n",
                    args.seed, args.frames, secs, args.frames / secs);
        for (uint32_t i = 0; i < CW_STAT_MAX; i++)
            std::printf("  %-22s %" PRIu64 "\n", std::string(connwatch::stat_name(i)).c_str(),
                        verdicts[i]);
        for (auto& [name, n] : tally)
            std::printf("  %-22s %" PRIu64 "\n", name.c_str(), n);
        std::printf("  %-22s %zu\n", "blocks at the end", ref.blocks.size());
        return 0;
    }
};

std::optional<Bytes> parse_hex(const std::string& s)
{
    if (s.size() % 2)
        return std::nullopt;
    Bytes b;
    for (size_t i = 0; i < s.size(); i += 2) {
        char* end = nullptr;
        std::string two = s.substr(i, 2);
        unsigned long v = std::strtoul(two.c_str(), &end, 16);
        if (*end)
            return std::nullopt;
        b.push_back(static_cast<uint8_t>(v));
    }
    return b;
}

[[noreturn]] void usage(const char* why)
{
    std::fprintf(stderr,
                 "xdp_fuzz: %s\nusage: xdp_fuzz [--seed N] [--frames N] [--trace-from N] "
                 "[--flip synfin-is-attempt|threshold-inclusive|one-vlan-tag] "
                 "[--expect-difference] [--frame HEX]\n",
                 why);
    std::exit(2);
}

uint64_t number(const char* s)
{
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(s, &end, 0);
    if (!*s || *end || errno)
        usage("not a number");
    return v;
}

// A veth pair in this process's own network namespace: a device that is not
// loopback for frames to arrive on. Gone with the namespace when we exit.
uint32_t private_namespace()
{
    if (unshare(CLONE_NEWNET) != 0) {
        std::perror("xdp_fuzz: unshare(CLONE_NEWNET)");
        std::exit(2);
    }
    if (std::system("ip link add cwfz0 type veth peer name cwfz1") != 0) {
        std::fprintf(stderr, "xdp_fuzz: could not make a veth pair in a new network namespace\n");
        std::exit(2);
    }
    uint32_t i = if_nametoindex("cwfz0");
    if (i <= 1) {
        std::fprintf(stderr, "xdp_fuzz: no ifindex for the veth pair\n");
        std::exit(2);
    }
    return i;
}

} // namespace

int main(int argc, char** argv)
{
    Args a;
    if (const char* s = std::getenv("CW_FUZZ_SEED"))
        a.seed = number(s);
    if (const char* s = std::getenv("CW_FUZZ_FRAMES"))
        a.frames = number(s);
    for (int i = 1; i < argc; i++) {
        std::string o = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc)
                usage(("missing value for " + o).c_str());
            return argv[++i];
        };
        if (o == "--seed")
            a.seed = number(value());
        else if (o == "--frames")
            a.frames = number(value());
        else if (o == "--trace-from")
            a.trace_from = number(value());
        else if (o == "--flip") {
            a.flip_name = value();
            auto f = connwatch::ref::parse_flip(a.flip_name);
            if (!f)
                usage("unknown --flip rule");
            a.flip = *f;
        } else if (o == "--expect-difference")
            a.expect_difference = true;
        else if (o == "--frame") {
            a.single = parse_hex(value());
            if (!a.single || a.single->size() < 14)
                usage("--frame wants the hex of a frame of at least 14 bytes");
        } else
            usage(("unknown option " + o).c_str());
    }
    if (geteuid() != 0) {
        // ctest's SKIP_RETURN_CODE, as the other BPF tests skip themselves.
        std::fprintf(stderr, "xdp_fuzz: loads an XDP program: run it as root (skipped)\n");
        return 77;
    }
    uint32_t veth = private_namespace();
    try {
        Fuzzer fz(a, veth);
        if (a.single) {
            fz.defaults();
            fz.one(*a.single);
            std::printf("xdp_fuzz: the frame agrees\n");
            return 0;
        }
        return fz.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "xdp_fuzz: %s\n", e.what());
        return 2;
    }
}
