// SPDX-License-Identifier: GPL-2.0-only
#include "xdp_fixture.h"

#include <bpf/bpf.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <sstream>

#include "config/defaults.h"
#include "config/options.h"

namespace connwatch::test {

StatDelta::StatDelta(std::initializer_list<std::pair<cw_stat, uint64_t>> moved)
{
    for (auto [stat, n] : moved)
        v[stat] += n;
}

void PrintTo(const StatDelta& d, std::ostream* os)
{
    *os << "{";
    const char* sep = "";
    for (uint32_t i = 0; i < CW_STAT_MAX; i++) {
        if (d.v[i] == 0)
            continue;
        *os << sep << stat_name(i) << " +" << d.v[i];
        sep = ", ";
    }
    *os << "}";
}

std::string describe(const cw_event& e)
{
    std::ostringstream os;
    os << (e.type == CW_EV_NEW_CONN ? "NEW_CONN"
           : e.type == CW_EV_SCAN   ? "SCAN"
           : e.type == CW_EV_PROBE  ? "PROBE"
                                    : "type?")
       << " " << format_endpoint(Address(e.saddr), e.sport) << " -> "
       << format_endpoint(Address(e.daddr), e.dport) << " if " << e.ifindex << " ts "
       << e.ts_ns << " flags 0x" << std::hex << unsigned(e.tcp_flags) << std::dec;
    if (e.type == CW_EV_SCAN) {
        os << " action " << unsigned(e.action) << " expires " << e.expires_ns << " ports";
        for (unsigned i = 0; i < e.nports && i < CW_SCAN_SLOTS; i++)
            os << " " << e.ports[i];
    }
    return os.str();
}

std::string describe(const std::vector<cw_event>& events)
{
    std::string out = std::to_string(events.size()) + " event(s)";
    for (const auto& e : events)
        out += "\n  " + describe(e);
    return out;
}

void expect_attempt_only(const RunResult& r)
{
    EXPECT_EQ(r.action, XDP_PASS);
    EXPECT_EQ(r.delta, syn_reported());
    ASSERT_EQ(r.events.size(), 1u) << describe(r.events);
    EXPECT_EQ(r.events[0].type, CW_EV_NEW_CONN);
}

StatDelta syn_reported()
{
    return {{CW_STAT_PASS_SYN, 1}, {CW_STAT_SYN, 1}};
}

StatDelta verdict(cw_stat stat)
{
    return {{stat, 1}};
}

Address addr(const std::string& text)
{
    auto a = Address::parse(text);
    if (!a)
        throw std::invalid_argument("bad address in a test: " + text);
    return *a;
}

cw_block manual_block(uint64_t created, uint64_t expires, uint8_t prefix_len)
{
    return cw_block{.created_ns = created, .expires_ns = expires, .origin = CW_ORIGIN_MANUAL,
                    .v6_prefix = 0, .prefix_len = prefix_len, .pad = {}};
}

std::vector<int> usable_cpus()
{
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> out;
    if (sched_getaffinity(0, sizeof(set), &set) != 0)
        return out;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set))
            out.push_back(c);
    return out;
}

LoadSettings XdpTest::load_settings() const
{
    // Field by field, not designated: the loader may grow settings, and the
    // tests want each one's default.
    LoadSettings s;
    s.test_clock = true;
    return s;
}

cw_config XdpTest::default_config()
{
    // connwatchd's own defaults, which the tests pin down: their clock steps
    // are written for these values.
    static_assert(defaults::kWindow == std::chrono::seconds(60) && defaults::kThreshold == 3 &&
                  defaults::kBlockDuration == std::chrono::hours(1) &&
                  defaults::kDedupInterval == std::chrono::seconds(5));
    // Per address, as before ipv6-prefix existed (connwatchd's default is 64):
    // the tests of other subjects use sources of one /64 as distinct sources;
    // prefix_test.cpp sets the lengths it tests.
    cw_config c = kernel_config(Options{});
    c.ipv6_prefix = 128;
    return c;
}

void XdpTest::SetUp()
{
    // BPF_PROG_TEST_RUN and loading an XDP program need CAP_BPF + CAP_NET_ADMIN
    // (CAP_SYS_ADMIN on older kernels); root is the simple way to have them.
    if (geteuid() != 0)
        GTEST_SKIP() << "the BPF tests load an XDP program: run them as root";
    prog_ = std::make_unique<XdpProgram>(load_settings());
    prog_->set_config(default_config());
    reader_ = std::make_unique<EventReader>(
        *prog_, [this](const cw_event& e) { pending_.push_back(e); });
    lo_ifindex_ = static_cast<int>(if_nametoindex("lo"));
    ASSERT_GT(lo_ifindex_, 0) << "no loopback device in this network namespace";
    ingress_ifindex_ = lo_ifindex_;
    set_now(kStart);
}

void XdpTest::TearDown()
{
    // The reader refers to the program's ring buffer: free it first.
    reader_.reset();
    prog_.reset();
}

void XdpTest::set_now(uint64_t ns)
{
    now_ = ns;
    prog_->set_fake_now(ns);
}

int XdpTest::try_run(const Bytes& frame, RunResult* r)
{
    // A frame must "arrive" on some device: by default the kernel uses the
    // loopback device's first receive queue. Naming it in the context makes
    // that explicit, and is what ends up in the events' ifindex. data_end must
    // equal the frame size.
    xdp_md ctx{};
    ctx.data_end = static_cast<uint32_t>(frame.size());
    ctx.ingress_ifindex = static_cast<uint32_t>(ingress_ifindex_);
    r->out.assign(frame.size() + 256, 0xa5);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.empty() ? nullptr : frame.data(),
                .data_out = r->out.data(), .data_size_in = static_cast<uint32_t>(frame.size()),
                .data_size_out = static_cast<uint32_t>(r->out.size()), .ctx_in = &ctx,
                .ctx_size_in = sizeof(ctx), .repeat = 1);
    Stats before = prog_->stats();
    int err = bpf_prog_test_run_opts(prog_->prog_fd(), &opts);
    if (err)
        return err < 0 ? err : -errno;
    Stats after = prog_->stats();
    for (uint32_t i = 0; i < CW_STAT_MAX; i++)
        r->delta.v[i] = after[i] - before[i];
    r->action = static_cast<int>(opts.retval);
    r->out.resize(opts.data_size_out);
    reader_->consume();
    r->events = std::move(pending_);
    pending_.clear();
    return 0;
}

RunResult XdpTest::run(const Bytes& frame)
{
    RunResult r;
    int err = try_run(frame, &r);
    EXPECT_EQ(err, 0) << "BPF_PROG_TEST_RUN failed for a " << frame.size()
                      << "-byte frame: " << std::strerror(-err);
    return r;
}

int XdpTest::run_action(const Bytes& frame)
{
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
                .data_size_in = static_cast<uint32_t>(frame.size()), .repeat = 1);
    if (bpf_prog_test_run_opts(prog_->prog_fd(), &opts) != 0)
        return -1;
    return static_cast<int>(opts.retval);
}

size_t XdpTest::drain_events()
{
    reader_->consume();
    size_t n = pending_.size();
    pending_.clear();
    return n;
}

std::vector<cw_event> XdpTest::take_events()
{
    reader_->consume();
    std::vector<cw_event> out = std::move(pending_);
    pending_.clear();
    return out;
}

Packet tcp_from(const std::string& src, uint16_t sport, uint16_t dport, uint8_t flags)
{
    return src.find(':') == std::string::npos ? tcp4(src, sport, dport, flags)
                                              : tcp6(src, sport, dport, flags);
}

std::set<uint16_t> ports_of(const cw_event& e)
{
    std::set<uint16_t> out;
    for (unsigned i = 0; i < e.nports && i < CW_SCAN_SLOTS; i++)
        out.insert(e.ports[i]);
    return out;
}

std::vector<cw_event> events_of(const RunResult& r, cw_event_type type)
{
    std::vector<cw_event> out;
    for (const auto& e : r.events)
        if (e.type == type)
            out.push_back(e);
    return out;
}

RunResult XdpTest::syn(const std::string& src, uint16_t dport)
{
    return tcp(src, dport, kSyn);
}

RunResult XdpTest::tcp(const std::string& src, uint16_t dport, uint8_t flags)
{
    return run(tcp_from(src, next_sport_++, dport, flags));
}

void XdpTest::expect_new_conn(const RunResult& r, const std::string& src, const std::string& dst,
                              uint16_t sport, uint16_t dport)
{
    ASSERT_EQ(r.events.size(), 1u);
    const cw_event& e = r.events[0];
    SCOPED_TRACE(describe(e));
    EXPECT_EQ(e.type, CW_EV_NEW_CONN);
    // Compared as Address: 16 bytes, so an IPv4 source must arrive IPv4-mapped.
    EXPECT_EQ(Address(e.saddr), addr(src));
    EXPECT_EQ(Address(e.daddr), addr(dst));
    EXPECT_EQ(e.sport, sport);
    EXPECT_EQ(e.dport, dport);
    EXPECT_EQ(e.ifindex, static_cast<uint32_t>(ingress_ifindex_));
    EXPECT_EQ(e.ts_ns, now_);
    EXPECT_EQ(e.nports, 0);
    EXPECT_EQ(e.action, 0);
}

} // namespace connwatch::test
