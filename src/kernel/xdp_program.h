// SPDX-License-Identifier: GPL-2.0-only
// The one owner of the XDP program and its maps, used by connwatchd and by the
// BPF tests alike: open -> configure -> load, attach per interface, read and
// write the maps. Start-up failures throw connwatch::Error with a message fit
// for an operator: what failed and what to do about it.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/error.h"
#include "base/unique_fd.h"
#include "common/address.h"
#include "config/options.h"

struct connwatch_bpf;
struct ring_buffer;

namespace connwatch {

struct LoadSettings {
    uint32_t max_blocks = 65536;
    // Where the blocklists are pinned on bpffs, so that blocks survive a restart
    // or a crash of connwatchd; empty: not pinned.
    std::string pin_dir;
    // Tests only: the program reads time from set_fake_now() instead of the
    // kernel clock (a load-time constant: production code has no such branch).
    bool test_clock = false;
};

using Stats = std::array<uint64_t, CW_STAT_MAX>;

class XdpProgram {
public:
    explicit XdpProgram(const LoadSettings& settings);
    ~XdpProgram();
    XdpProgram(const XdpProgram&) = delete;
    XdpProgram& operator=(const XdpProgram&) = delete;

    int prog_fd() const;
    int events_fd() const;

    void set_config(const cw_config& cfg);
    cw_config config() const;

    // Allowlist (LPM trie).
    void allow_add(const Cidr& c);
    bool allow_remove(const Cidr& c);
    std::vector<Cidr> allow_list() const;

    // Exact-address blocklist. block_add fails (returns false) when full.
    bool block_add(const Address& a, const cw_block& b);
    bool block_remove(const Address& a);
    std::vector<std::pair<Address, cw_block>> block_list() const;

    // CIDR blocklist; keeps config.cidr_blocks (the fast path's "any?") true.
    bool cidr_block_add(const Cidr& c, const cw_block& b);
    bool cidr_block_remove(const Cidr& c);
    std::vector<std::pair<Cidr, cw_block>> cidr_block_list() const;

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

private:
    void adopt_pins(const std::string& dir);
    void pin_new(const std::string& dir);
    std::vector<std::string> warnings_;
    bool reused_pins_ = false;
    // Entries of a pinned map that could not be reused as it is (another
    // capacity), to re-insert after load: map name -> (key, value) bytes.
    std::vector<std::tuple<std::string, std::vector<uint8_t>, std::vector<uint8_t>>> carry_;

    void update_cidr_count();
    connwatch_bpf* skel_ = nullptr;
};

// An XDP program attached to one interface through a bpf_link: closing the
// link detaches it, so the program can never be left behind by a crash.
class XdpAttachment {
public:
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

// Reads cw_event records from the ring buffer.
class EventReader {
public:
    using Handler = std::function<void(const cw_event&)>;
    EventReader(const XdpProgram& prog, Handler handler);
    ~EventReader();
    EventReader(const EventReader&) = delete;
    EventReader& operator=(const EventReader&) = delete;
    int epoll_fd() const; // readable when events are waiting
    int consume();        // handles every waiting event; returns how many

private:
    static int on_sample(void* ctx, void* data, size_t size);
    Handler handler_;
    ring_buffer* rb_ = nullptr;
};

// The name of a counter as status and metrics show it: "drop_blocked", ...
const char* stat_name(uint32_t idx);

// Checks that the kernel and our privileges can run connwatch at all; throws
// Error naming the problem and the fix.
void check_environment();

// Routes libbpf's own messages: to stderr when verbose, otherwise dropped
// (our errors say what failed).
void set_libbpf_verbose(bool verbose);

} // namespace connwatch
