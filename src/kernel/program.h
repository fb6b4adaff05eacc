// SPDX-License-Identifier: GPL-2.0-only
// The one owner of the XDP program and its maps, used by connwatchd, the BPF
// tests and the benchmark alike: open -> configure -> take over pins -> load,
// then read and write the maps. Start-up failures throw connwatch::Error with a
// message fit for an operator: what failed and what to do about it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "common/address.h"
#include "kernel/stats.h"

struct connwatch_bpf;

namespace connwatch {

struct LoadSettings {
    uint32_t max_blocks = 65536;
    uint32_t max_cidr_blocks = 4096; // max-cidr-blocks
    // Where the maps are pinned on bpffs, so that blocks survive a restart or a
    // crash of connwatchd, and the program, its maps and its links outlive the
    // process (see XdpAttachment); empty: not pinned.
    std::string pin_dir;
    // Tests only: the program reads time from set_fake_now() instead of the
    // kernel clock (a load-time constant: production code has no such branch).
    bool test_clock = false;
};

class XdpProgram {
public:
    explicit XdpProgram(const LoadSettings& settings);
    ~XdpProgram();
    XdpProgram(const XdpProgram&) = delete;
    XdpProgram& operator=(const XdpProgram&) = delete;

    int prog_fd() const;
    int events_fd() const;

    // Throws Error when the map cannot be written.
    void set_config(const cw_config& cfg);
    cw_config config() const;

    // The block path's per-CPU verdict cache (bpf/verdict.h, map
    // verdict_cache): on by default. Every method below that writes the
    // blocklists (an insert, a rewrite, a removal, single or batched) or adds
    // an allow entry retires all cached verdicts before it returns, so that
    // the next packet on every CPU is judged by the maps again: a block that
    // ended or shrank, or a drop now counted under another block. So does
    // set_config (a new prefix length). A new writer of block_addr,
    // block_cidr or allow must do the same. Off: config.verdict_gen 0, the
    // program neither reads nor fills the cache (the benchmark's comparison
    // rows).
    // retire_verdicts throws Error when the config map cannot be written.
    void set_verdict_cache(bool enabled);
    bool verdict_cache() const;
    void retire_verdicts();
    // Tests: the slot the program uses for `a`, on every possible CPU, and
    // the epoch a slot must carry to count (config.verdict_gen + the kernel's
    // count of automatic blocks, block_gen; 0 while the cache is off).
    std::vector<cw_verdict_slot> verdict_slots(const Address& a) const;
    uint64_t verdict_epoch() const;

    // Allowlist (LPM trie). allow_add throws Error (errno kept) when the
    // kernel refuses, e.g. E2BIG when the trie is full.
    void allow_add(const Cidr& c);
    bool allow_remove(const Cidr& c);
    std::vector<Cidr> allow_list() const;
    uint32_t allow_capacity() const;

    // The source prefixes that must not be counted or blocked as a whole
    // (map allow_inside, ipv4-prefix/ipv6-prefix): made exactly `prefixes`.
    // Throws Error when the kernel refuses one (the map is full).
    void set_allow_inside(const std::set<Cidr>& prefixes);
    std::set<Address> allow_inside() const; // the rows' keys (they carry no length)

    // Exact-address blocklist. block_add fails (returns false) when full.
    bool block_add(const Address& a, const cw_block& b);
    bool block_remove(const Address& a);
    std::optional<cw_block> block_get(const Address& a) const;
    std::vector<std::pair<Address, cw_block>> block_list() const;
    uint32_t block_capacity() const;
    // Batched (bpf_map_*_batch): the cost of a million entries is a few
    // hundred system calls, not two million.
    // Reads up to about `max` entries from `cursor` (0: the start) and calls
    // fn(key, value) for each; returns the cursor to go on from, 0 when the
    // walk reached the end, kSliceFailed when the kernel refused (the walk is
    // then incomplete: start another). The kernel walks its buckets in order,
    // so an entry present from the first call to the last is seen exactly once.
    static constexpr uint64_t kSliceFailed = UINT64_MAX;
    using BlockVisitor = std::function<void(const cw_addr&, const cw_block&)>;
    uint64_t block_slice(uint64_t cursor, size_t max, const BlockVisitor& fn) const;
    void block_for_each(const BlockVisitor& fn) const; // every entry, in slices
    // Many addresses in one bpf() call each way (bulk imports, expiry, flush).
    // block_add_batch returns how many, from the first, were written: fewer
    // than asked when one failed (the map is full; a kernel without batch
    // operations writes none) -- the caller goes on one by one from there.
    std::size_t block_add_batch(const std::vector<cw_addr>& keys,
                                const std::vector<cw_block>& values);
    // Deletes the keys that are there (a key that is not is skipped, not an
    // error; a kernel without batch operations gets them one by one);
    // returns how many were. done[i], when asked for: key i was removed.
    std::size_t block_remove_batch(const std::vector<cw_addr>& keys,
                                   std::vector<bool>* done = nullptr);

    // The pass path's "block_addr is empty" (config.exact_empty_gen, checked
    // against the kernel's count of automatic inserts): every insert above
    // clears it first, every removal looks again. refresh_exact_skip looks
    // (one bpf_map_get_next_key) and arms it when the map is empty; true when
    // armed and still valid. Construction looks once.
    bool refresh_exact_skip();
    bool exact_skip_armed() const; // as last written (the kernel may have moved on)

    // CIDR blocklist; keeps config.cidr_blocks (the fast path's "any?") true.
    // retire false: the caller calls retire_verdicts() itself once after many
    // (the trie has no batch operations, and an import of thousands of
    // prefixes would otherwise write the config entry as many times).
    bool cidr_block_add(const Cidr& c, const cw_block& b, bool retire = true);
    bool cidr_block_remove(const Cidr& c, bool retire = true);
    std::vector<std::pair<Cidr, cw_block>> cidr_block_list() const;
    uint32_t cidr_block_capacity() const;

    // The route mirror of the reverse-path check (rp-filter; daemon/route_mirror.h).
    // route_set throws Error (errno kept: E2BIG when the trie is full).
    void route_set(const Cidr& c, const cw_route& r);
    bool route_remove(const Cidr& c);
    std::vector<std::pair<Cidr, cw_route>> route_list() const;
    uint32_t route_capacity() const;
    // Each interface's rp-filter mode (ifindex -> enum cw_rp_mode), for
    // config.rp_filter == CW_RP_IFACE: replaces the whole map.
    void set_rp_interfaces(const std::map<uint32_t, uint32_t>& modes);
    std::map<uint32_t, uint32_t> rp_interfaces() const;

    // A source's scan-detection state. Removing it makes the program judge the
    // source afresh from its next port (BlockTable does when a block ends).
    bool scan_state_remove(const Address& a); // false: there was none
    std::optional<cw_scan_state> scan_state(const Address& a) const;
    // The sources with scan state (at most the map's 32,768), and many
    // removed at once (block_remove_batch's rules).
    std::vector<cw_addr> scan_state_sources() const;
    std::size_t scan_state_remove_batch(const std::vector<cw_addr>& keys);

    // Repeat offenders (bpf/escalate.h): a blocked source's history, keyed as
    // block_addr is. Removing it forgives: the next block is offence 1.
    std::optional<cw_offender> offender(const cw_addr& key) const;
    bool offender_set(const cw_addr& key, const cw_offender& o); // false: refused
    bool offender_remove(const cw_addr& key);                    // false: there was none
    std::vector<std::pair<cw_addr, cw_offender>> offender_list() const;
    uint32_t offender_capacity() const;
    // The offenders map was taken over from the pins (it holds the history of
    // the run before); false: created now, empty (load it from the state dir).
    bool offenders_reused() const { return offenders_reused_; }

    // Counters summed over CPUs.
    Stats stats() const;
    // Reported connection attempts per interface (ifindex -> count).
    std::map<uint32_t, uint64_t> connections_per_interface() const;

    // Tests only (LoadSettings::test_clock).
    void set_fake_now(uint64_t ns);

    // What loading had to say besides errors (blocks carried over from a
    // pinned map of another size, ...), for the caller to log.
    const std::vector<std::string>& warnings() const { return warnings_; }
    // Whether pinned blocklists from an earlier run were taken over.
    bool reused_pins() const { return reused_pins_; }

    // ---- what outlives the process (docs/ARCHITECTURE.md, "What survives what")
    const std::string& pin_dir() const { return pin_dir_; }
    // The program found pinned by an earlier run had the same instructions
    // (tag) as this one; nullopt when there was none.
    std::optional<bool> same_as_pinned() const { return same_as_pinned_; }
    // The counters as the previous connwatchd last recorded them (record_seen),
    // and as its program had them when this one loaded: their difference is
    // what happened while no connwatchd ran. nullopt when there is no record.
    const std::optional<Stats>& previous_seen() const { return previous_seen_; }
    const std::optional<Stats>& previous_stats() const { return previous_stats_; }
    // Records the counters this daemon has reported (every tick, and at exit).
    void record_seen(const Stats& s);
    // The counters were taken over from the previous program (the same map):
    // they go on from where it was, not from zero.
    bool stats_taken_over() const { return runtime_reused_.count("stats") != 0; }
    // The ring buffer of the previous program when it could not be reused
    // (another size): read it once the links run this program (-1: none).
    int previous_events_fd() const { return previous_events_.get(); }
    void forget_previous_events() { previous_events_.reset(); }
    // A clean stop: unpins everything but the blocklists (program, counters,
    // scan state, ring buffer), so the next start begins afresh as before.
    void unpin_runtime();

private:
    struct SkeletonDeleter {
        void operator()(connwatch_bpf* s) const;
    };
    void adopt_pins(const std::string& dir);
    void pin_new(const std::string& dir);
    void update_cidr_count();
    bool disarm_exact_skip();
    bool write_exact_empty_gen(uint64_t gen); // skip_mu_ held
    void adopt_runtime_pins(const std::string& dir);
    void pin_runtime(const std::string& dir);

    // Destroyed last, after everything that refers to its maps; a constructor
    // that throws after open still frees it.
    std::unique_ptr<connwatch_bpf, SkeletonDeleter> skel_;
    std::vector<std::string> warnings_;
    bool reused_pins_ = false;
    bool offenders_reused_ = false;
    std::string pin_dir_;
    std::optional<bool> same_as_pinned_;
    std::optional<Stats> previous_seen_, previous_stats_;
    UniqueFd previous_events_;
    UniqueFd seen_;
    std::set<std::string> runtime_reused_; // runtime maps taken over from the pins
    uint8_t pinned_tag_[8] = {};
    bool have_pinned_tag_ = false;
    // Entries of a pinned map that could not be reused as it is (another
    // capacity), to re-insert after load: its keys and values back to back
    // (a million blocks are 40 MB here, not a million pairs of vectors).
    struct Carried {
        std::string map;
        std::vector<uint8_t> keys, values;
        std::size_t count = 0;
    };
    std::vector<Carried> carry_;
    // block_slice's buffers, kept: a slice every second must not map and
    // unmap a megabyte every second.
    mutable std::vector<cw_addr> batch_keys_;
    mutable std::vector<cw_block> batch_values_;
    uint32_t cidr_count_ = 0; // entries in block_cidr, as config.cidr_blocks says
    // config.exact_empty_gen as written (userspace owns it); the lock orders
    // the writes of the config entry, which are read-modify-write.
    uint64_t exact_empty_gen_ = 0;
    // The last verdict generation written (config.verdict_gen while the
    // cache is on); only grows, so that no number is used twice. Under
    // skip_mu_, as every write of the config entry.
    uint64_t verdict_gen_ = 0;
    bool verdict_cache_on_ = true;
    mutable std::mutex skip_mu_;
};

// The rows of allow_inside for these allow entries: each entry longer than
// its family's prefix length (ipv4_prefix of 1..31, ipv6_prefix of 1..127;
// otherwise that family is counted per address and needs none) gives the
// prefix of that length that holds it.
std::set<Cidr> prefixes_holding(const std::vector<Cidr>& allow, unsigned ipv4_prefix,
                                unsigned ipv6_prefix);

// Checks that the kernel and our privileges can run connwatch at all; throws
// Error naming the problem and the fix.
void check_environment();

// What an operator should do about a failed bpf() call (errno or -errno):
// ": run as root, or with ..." for a permission error, else "".
std::string privilege_hint(int err);

// Routes libbpf's own messages: to stderr when verbose, otherwise dropped
// (our errors say what failed).
void set_libbpf_verbose(bool verbose);

} // namespace connwatch
