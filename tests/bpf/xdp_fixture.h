// SPDX-License-Identifier: GPL-2.0-only
// The fixture every BPF test uses: the real object, loaded through the real
// verifier by the daemon's own loader (connwatch::XdpProgram) with the test
// clock, and one frame at a time run through BPF_PROG_TEST_RUN. A run reports
// everything the program can do to the outside world: the XDP action, the frame
// it hands on, the counters it moved and the events it emitted.
#pragma once

#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "packet.h"
#include "kernel/event_reader.h"
#include "kernel/program.h"

namespace connwatch::test {

inline constexpr uint64_t kMs = 1'000'000;
inline constexpr uint64_t kSec = 1'000'000'000;

// Where the fake clock starts: a whole hour, hence also a minute boundary, and
// far from 0 so that "now - window" never wraps below zero.
inline constexpr uint64_t kStart = 3600 * kSec;

// How much each counter moved during one run. Compared whole: a counter that
// moved and was not expected to fails the test, which is how "every packet
// increments exactly one verdict counter" is checked everywhere.
struct StatDelta {
    Stats v{};
    StatDelta() = default;
    StatDelta(std::initializer_list<std::pair<cw_stat, uint64_t>> moved);
    uint64_t operator[](cw_stat s) const { return v[s]; }
    bool operator==(const StatDelta&) const = default;
};
void PrintTo(const StatDelta& d, std::ostream* os); // "{PASS_SYN +1, SYN +1}"

// One event, or all of them, readable in a failure message.
std::string describe(const cw_event& e);
std::string describe(const std::vector<cw_event>& events);

struct RunResult {
    int action = -1; // XDP_PASS, XDP_DROP, ...
    StatDelta delta;
    std::vector<cw_event> events;
    Bytes out; // the frame as the program left it
};

// Counter deltas of the two outcomes most tests expect.
StatDelta syn_reported();        // a new connection attempt: passed and reported
StatDelta verdict(cw_stat stat); // exactly one verdict counter, nothing else

// Expects a SYN that is a new attempt and nothing more: passed, syn_reported(),
// one CW_EV_NEW_CONN (no scan, no block).
void expect_attempt_only(const RunResult& r);

// The source the scan and block tests scan from (TEST-NET-1, so never a real host).
inline constexpr const char* kScanner = "192.0.2.66";

class XdpTest : public ::testing::Test {
protected:
    void SetUp() override;
    void TearDown() override;

    // What each test loads; a fixture may override (e.g. a tiny blocklist).
    virtual LoadSettings load_settings() const;
    // connwatchd's defaults: window 60 s, threshold 3, block 1 h, dedup 5 s;
    // but IPv6 per address (ipv6-prefix 128; prefix_test.cpp tests the rest).
    static cw_config default_config();

    // Runs one frame; a failed BPF_PROG_TEST_RUN fails the test.
    RunResult run(const Bytes& frame);
    RunResult run(const Packet& p) { return run(p.build()); }
    // The same, returning 0 or the -errno of BPF_PROG_TEST_RUN, for the sizes
    // the kernel may refuse.
    int try_run(const Bytes& frame, RunResult* r);
    // The XDP action alone: no counters read, events left in the ring buffer
    // (drain_events). For loops of tens of thousands of runs.
    int run_action(const Bytes& frame);
    size_t drain_events();
    // The events waiting in the ring buffer, in order, for tests that run
    // frames themselves (e.g. from several threads) and check them afterwards.
    std::vector<cw_event> take_events();

    void set_now(uint64_t ns);
    void advance(uint64_t ns) { set_now(now_ + ns); }
    uint64_t now() const { return now_; }

    // A SYN from src (IPv4 or IPv6) to dport on the default destination of
    // packet.h, from a source port no earlier call used: always a new 4-tuple,
    // never a retransmission.
    RunResult syn(const std::string& src, uint16_t dport);
    // Any TCP segment from src, from a fresh source port.
    RunResult tcp(const std::string& src, uint16_t dport, uint8_t flags);

    // Expects exactly one CW_EV_NEW_CONN for this flow in r.
    void expect_new_conn(const RunResult& r, const std::string& src, const std::string& dst,
                         uint16_t sport, uint16_t dport);

    std::unique_ptr<XdpProgram> prog_;
    int lo_ifindex_ = 0; // frames "arrive" on loopback, see try_run
    // The device frames arrive on: loopback unless a test says otherwise (it
    // must exist in the calling thread's network namespace).
    int ingress_ifindex_ = 0;

private:
    std::unique_ptr<EventReader> reader_;
    std::vector<cw_event> pending_;
    uint64_t now_ = 0;
    uint16_t next_sport_ = 32768;
};

// A TCP segment from src to the default destination of its family.
Packet tcp_from(const std::string& src, uint16_t sport, uint16_t dport, uint8_t flags = kSyn);
// The default destinations of packet.h.
inline constexpr const char* kDst4 = "198.51.100.1";
inline constexpr const char* kDst6 = "2001:db8:2::1";
inline std::string dst_for(const std::string& src)
{
    return src.find(':') == std::string::npos ? kDst4 : kDst6;
}

// The ports a CW_EV_SCAN lists (they come unsorted).
std::set<uint16_t> ports_of(const cw_event& e);
// The events of one type in r.
std::vector<cw_event> events_of(const RunResult& r, cw_event_type type);

// The mapped 16-byte form of a textual address, as the program writes it.
Address addr(const std::string& text);

// A block as an operator makes it (origin manual); expires 0: until removed;
// prefix_len: an automatic prefix block's entry (0: one address).
cw_block manual_block(uint64_t created, uint64_t expires = 0, uint8_t prefix_len = 0);

// The CPUs this process may run on (its affinity mask), in order.
std::vector<int> usable_cpus();

} // namespace connwatch::test
