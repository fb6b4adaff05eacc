// SPDX-License-Identifier: GPL-2.0-only
// Packet-rate benchmark of connwatch's XDP program against bare XDP_DROP and
// XDP_PASS, with live frames: BPF_PROG_RUN + BPF_F_TEST_XDP_LIVE_FRAMES runs a
// one-line sender program (bench_progs.bpf.c: xdp_redirect) on a packet template
// `count` times, and every run really transmits the frame out of the sending veth.
// The frames reach the peer veth as xdp_frames, so the program under test runs in
// native XDP on them, without any skb. Everything runs on the sender's CPU (the
// peer's NAPI is a softirq raised there), so frames/second = 1 / (sender cost +
// receiver cost): between rows only the receiver changes, and the ratios of rows
// measured in the same run are what to compare (bench/README.md).
//
// Also measured: CPU time per frame (immune to others using the CPU meanwhile),
// and each receiver program alone (plain BPF_PROG_RUN), to split the costs.
//
// The harness owns no network setup: bench/run.sh creates the two namespaces and
// the veth pair, and removes them again whatever happens. Here: load, attach,
// run, count, detach.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench_progs.skel.h"
#include "base/clock.h"
#include "base/unique_fd.h"
#include "kernel/attachment.h"
#include "kernel/event_reader.h"
#include "kernel/program.h"
#include "packet.h"

namespace connwatch::bench {
namespace {

// ---- small utilities ---------------------------------------------------------------

std::string errno_text(int err)
{
    return std::strerror(err < 0 ? -err : err);
}

[[noreturn]] void fail(const std::string& what)
{
    throw Error(what);
}

// A network namespace by name (/run/netns/NAME, as `ip netns add` makes it).
UniqueFd open_netns(const std::string& name)
{
    std::string path = "/run/netns/" + name;
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fail("Failed to open network namespace '" + name + "' (" + path +
             "): " + errno_text(errno) + " (bench/run.sh creates it)");
    return UniqueFd(fd);
}

void enter_netns(const UniqueFd& ns, const char* name)
{
    if (setns(ns.get(), CLONE_NEWNET) != 0)
        fail(std::string("Failed to enter network namespace '") + name + "': " + errno_text(errno));
}

// The harness lives in the sender's namespace; receiver-side work (attaching to
// the receiving veth, reading its counters, its socket) happens inside one of
// these scopes. Sockets and links made inside keep their namespace after it.
class InNetns {
public:
    InNetns(const UniqueFd& target, const char* target_name, const UniqueFd& home)
        : home_(home)
    {
        enter_netns(target, target_name);
    }
    ~InNetns()
    {
        // Cannot fail for a namespace we were in a moment ago; if it ever did,
        // every later step would act in the wrong namespace: stop at once.
        if (setns(home_.get(), CLONE_NEWNET) != 0)
            std::abort();
    }
    InNetns(const InNetns&) = delete;
    InNetns& operator=(const InNetns&) = delete;

private:
    const UniqueFd& home_;
};

int ifindex_of(const std::string& ifname)
{
    int idx = static_cast<int>(if_nametoindex(ifname.c_str()));
    if (idx == 0)
        fail("Interface '" + ifname + "' does not exist in this namespace (bench/run.sh creates it)");
    return idx;
}

test::Mac mac_of(const std::string& ifname)
{
    UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr{};
    std::snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname.c_str());
    if (!s || ioctl(s.get(), SIOCGIFHWADDR, &ifr) != 0)
        fail("Failed to read the MAC address of '" + ifname + "': " + errno_text(errno));
    test::Mac mac{};
    std::memcpy(mac.data(), ifr.ifr_hwaddr.sa_data, mac.size());
    return mac;
}

struct LinkCounters {
    uint32_t rx_packets = 0, rx_dropped = 0, tx_packets = 0, tx_dropped = 0;
};

// The interface's counters through rtnetlink (getifaddrs), in the current
// namespace. 32-bit counters: deltas are taken modulo 2^32, far above a row.
LinkCounters link_counters(const std::string& ifname)
{
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0)
        fail("getifaddrs: " + errno_text(errno));
    std::unique_ptr<ifaddrs, decltype(&freeifaddrs)> guard(list, freeifaddrs);
    for (ifaddrs* i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_PACKET || !i->ifa_data ||
            ifname != i->ifa_name)
            continue;
        auto* st = static_cast<const rtnl_link_stats*>(i->ifa_data);
        return {st->rx_packets, st->rx_dropped, st->tx_packets, st->tx_dropped};
    }
    fail("No link counters for '" + ifname + "'");
}

// The current namespace's IP/TCP counters (/proc/net/snmp and netstat), as
// "Tcp:OutRsts" -> value: what the stack did with the frames XDP passed.
using Snmp = std::map<std::string, uint64_t>;

Snmp read_snmp()
{
    Snmp out;
    for (const char* file : {"/proc/thread-self/net/snmp", "/proc/thread-self/net/netstat"}) {
        std::ifstream in(file);
        std::string names, values;
        while (std::getline(in, names) && std::getline(in, values)) {
            std::istringstream n(names), v(values);
            std::string prefix, vprefix, name;
            n >> prefix;
            v >> vprefix;
            if (prefix != vprefix)
                break; // not the two-line layout: stop rather than misattribute
            long long val = 0;
            while (n >> name && v >> val)
                out[prefix + name] = static_cast<uint64_t>(val);
        }
    }
    return out;
}

// What a row reports from the stack: enough to see whether it discarded the
// frames, answered them (RST) or refused them (checksum), nothing more.
const std::vector<std::string> kSnmpShown = {
    "Ip:InReceives", "Tcp:InSegs", "Tcp:OutSegs", "Tcp:OutRsts", "Tcp:InCsumErrors",
    "TcpExt:TCPHPAcks", "TcpExt:TCPPureAcks", "TcpExt:TCPChallengeACK"};

// ---- CPU time ----------------------------------------------------------------------
//
// Wall-clock time counts whatever else runs on the CPU (this machine is shared:
// others compile and test on it). CPU time counts only the work of the run: this
// thread's runtime, which includes the receiver's NAPI softirq whenever it runs
// on the way out of BPF_PROG_RUN's local_bh_disable() sections, plus what the
// CPU's ksoftirqd ran when the softirq was deferred to it. Both from the
// scheduler's nanosecond clock (sum_exec_runtime; steal time excluded).

uint64_t thread_cpu_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// /proc/PID/schedstat of the CPU's ksoftirqd, or "" when there is none.
std::string ksoftirqd_schedstat(int cpu)
{
    std::string want = "ksoftirqd/" + std::to_string(cpu);
    for (int pid = 2; pid < 4096; pid++) { // kernel threads of the boot CPUs have small pids
        std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
        std::string name;
        if (comm && std::getline(comm, name) && name == want)
            return "/proc/" + std::to_string(pid) + "/schedstat";
    }
    return "";
}

uint64_t schedstat_runtime_ns(const std::string& path)
{
    std::ifstream in(path);
    uint64_t ns = 0;
    if (!path.empty())
        in >> ns;
    return ns;
}

// ---- packets -----------------------------------------------------------------------

struct Flow {
    test::Mac src_mac{}, dst_mac{};
    std::string src, dst; // IPv4
    uint16_t sport = 0, dport = 0;
};

// An untagged IPv4 + TCP frame without options, zero-padded to `len` bytes (60 =
// the Ethernet minimum without FCS), checksums correct: the stack verifies them.
// Built by tests/lib/packet.h, the builder the BPF tests use and packet_test checks.
test::Bytes tcp_frame(const Flow& f, uint8_t flags, uint32_t seq, uint32_t ack, size_t len)
{
    test::Packet p = test::tcp4(f.src, f.sport, f.dport, flags);
    p.dst_mac = f.dst_mac;
    p.src_mac = f.src_mac;
    p.ipv4->dst = f.dst;
    p.ipv4->id = 1;
    p.ipv4->dont_fragment = true;
    p.tcp->seq = seq;
    p.tcp->ack = ack;
    p.tcp->window = 0xffff; // no scaling negotiated
    p.pad_to = len;
    return p.build();
}

// ---- an established TCP socket without a handshake -------------------------------

constexpr uint32_t kLocalSeq = 0x10000000; // the receiver socket's snd_una = snd_nxt
constexpr uint32_t kPeerSeq = 0x20000000;  // its rcv_nxt: the sender's next sequence

// Creates, in the current namespace, a socket ESTABLISHED between local and peer
// with the sequence numbers above, using TCP_REPAIR (no packet is exchanged).
// The benchmark's ACK template (seq kPeerSeq, ack kLocalSeq, no data) is then an
// in-window pure ACK of an established flow, which the stack takes and discards
// without answering: the common case the pass path is about.
UniqueFd established_socket(const Flow& f)
{
    UniqueFd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s)
        fail("socket: " + errno_text(errno));
    auto opt = [&](int level, int name, int value, const char* what) {
        if (setsockopt(s.get(), level, name, &value, sizeof(value)) != 0)
            fail(std::string("Failed to set ") + what + " on the established-flow socket: " +
                 errno_text(errno));
    };
    opt(SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
    opt(SOL_TCP, TCP_REPAIR, TCP_REPAIR_ON, "TCP_REPAIR (needs CAP_NET_ADMIN)");
    opt(SOL_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, "TCP_REPAIR_QUEUE");
    opt(SOL_TCP, TCP_QUEUE_SEQ, static_cast<int>(kLocalSeq), "TCP_QUEUE_SEQ (send)");
    opt(SOL_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, "TCP_REPAIR_QUEUE");
    opt(SOL_TCP, TCP_QUEUE_SEQ, static_cast<int>(kPeerSeq), "TCP_QUEUE_SEQ (receive)");
    sockaddr_in local{}, peer{};
    local.sin_family = peer.sin_family = AF_INET;
    inet_pton(AF_INET, f.dst.c_str(), &local.sin_addr); // checked by Bench()
    local.sin_port = htons(f.dport);
    inet_pton(AF_INET, f.src.c_str(), &peer.sin_addr);
    peer.sin_port = htons(f.sport);
    if (bind(s.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0)
        fail("Failed to bind the established-flow socket: " + errno_text(errno));
    if (connect(s.get(), reinterpret_cast<sockaddr*>(&peer), sizeof(peer)) != 0)
        fail("Failed to connect the established-flow socket in repair mode: " + errno_text(errno));
    // Without a window probe: nothing leaves the socket, ever.
    opt(SOL_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP, "TCP_REPAIR off");
    return s;
}

// ---- the benchmark's own programs ------------------------------------------------

struct BenchSkelDeleter {
    void operator()(bench_progs* s) const { bench_progs__destroy(s); }
};
using BenchSkel = std::unique_ptr<bench_progs, BenchSkelDeleter>;

BenchSkel load_bench_progs(int target_ifindex)
{
    BenchSkel skel(bench_progs__open());
    if (!skel)
        fail("Failed to open the benchmark's BPF object: " + errno_text(errno));
    skel->rodata->target_ifindex = static_cast<uint32_t>(target_ifindex);
    int err = bench_progs__load(skel.get());
    if (err)
        fail("Failed to load the benchmark's BPF programs: " + errno_text(err));
    return skel;
}

// Attaches a program in native mode (the only mode worth measuring) to an
// interface of the current namespace; the returned link detaches it when closed.
UniqueFd attach_native(int prog_fd, int ifindex, const std::string& ifname)
{
    LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = XDP_FLAGS_DRV_MODE);
    int fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
    if (fd < 0)
        fail("Failed to attach to '" + ifname + "' in native mode: " + errno_text(errno));
    return UniqueFd(fd);
}

uint64_t percpu_sum(int map_fd, uint32_t key)
{
    int ncpu = libbpf_num_possible_cpus();
    std::vector<uint64_t> v(static_cast<size_t>(ncpu > 0 ? ncpu : 1));
    if (bpf_map_lookup_elem(map_fd, &key, v.data()) != 0)
        fail("Failed to read a benchmark counter: " + errno_text(errno));
    uint64_t sum = 0;
    for (auto x : v)
        sum += x;
    return sum;
}


// ---- rows ------------------------------------------------------------------------

// External: whatever the row's setup command attached (xdp-filter), or nothing.
enum class Receiver { BareDrop, BarePass, Connwatch, External };
enum class Template { Ack, Syn };
// xdp_redirect | xdp_redirect_sp | xdp_redirect_src (sources spread_base + n mod spread)
enum class Sender { Fixed, NewPort, Spread };

// The blocklist groups' sources: 10.0.0.0 + i, i < entries (all of 10/8 at 16 M).
constexpr uint32_t kSpreadBase = 0x0a000000;

struct Row {
    std::string key;         // for --rows
    std::string label;       // in the tables
    Receiver receiver = Receiver::BareDrop;
    Template tmpl = Template::Ack;
    Sender sender = Sender::Fixed;
    bool block_source = false;  // connwatch: template source in block_addr
    // connwatch: that block has a deadline (an hour on), as automatic blocks
    // do, so the program reads the clock to check it; false: expires 0
    bool block_expires = false;
    // connwatch: another address (not the sender's) in block_addr, so the
    // pass path looks the source up (with block_addr empty it skips that)
    bool block_other = false;
    // connwatch: the block path's verdict cache (config.verdict_gen); false:
    // off, every frame looks the blocklists up (the comparison rows)
    bool verdict_cache = true;
    uint64_t dedup_ns = 0;      // connwatch: config.dedup_ns for the row (0: default)
    std::string baseline{};     // key of the row this one is compared with
    // Counter that must have moved by exactly `count`: a bench counter (BENCH_RX)
    // for the bare programs, a connwatch stat for connwatch.
    int expect_stat = -1;
    // Rows of a blocklist group run together, after the map was filled with
    // `group` entries (10.0.0.0 + i); 0: the first group, no entries.
    uint32_t group = 0;
    uint32_t spread = 1;        // Sender::Spread: how many sources the frames cycle through
    // Firewall rows: shell commands run before and after (the other tools'
    // own set-up), what is filled afterwards, and what must hold: the stack
    // saw none of the TCP segments (a firewall dropped them).
    std::string setup{}, teardown{};
    std::string fill_xdp_filter{}; // xdp-filter: its map of this name gets fw_entries
    uint32_t fw_entries = 0;
    bool expect_stack_silent = false;
};

std::string group_name(uint32_t n)
{
    if (n >= 1000000 && n % 1000000 == 0)
        return std::to_string(n / 1000000) + "m";
    if (n == 16777216)
        return "16m";
    if (n >= 1000 && n % 1000 == 0)
        return std::to_string(n / 1000) + "k";
    return std::to_string(n);
}

// The other tools' rows. Each creates its set in cwbn-rx and removes it again;
// the set holds the sender's address and entries-1 others from 10.0.0.0.
Row nft_row(uint32_t n, const std::string& ns, const std::string& ifname)
{
    Row r{.key = "nft-" + group_name(n), .label = "XDP_PASS + nftables netdev ingress, set of " +
                                                     std::to_string(n),
          .receiver = Receiver::BarePass, .tmpl = Template::Ack, .baseline = "drop"};
    r.setup = "ip netns exec " + ns + " nft -f $CWBN_SETFILE";
    r.teardown = "ip netns exec " + ns + " nft delete table netdev cwbn";
    r.fw_entries = n;
    r.label += " (" + ifname + ")";
    r.expect_stack_silent = true;
    return r;
}

Row ipset_row(uint32_t n, const std::string& ns)
{
    Row r{.key = "ipset-" + group_name(n), .label = "XDP_PASS + iptables raw PREROUTING, ipset hash:ip of " +
                                                       std::to_string(n),
          .receiver = Receiver::BarePass, .tmpl = Template::Ack, .baseline = "drop"};
    r.setup = "ip netns exec " + ns + " ipset restore -f $CWBN_SETFILE && ip netns exec " + ns +
              " iptables -t raw -A PREROUTING -m set --match-set cwbn src -j DROP";
    r.teardown = "ip netns exec " + ns + " iptables -t raw -F PREROUTING; ip netns exec " + ns +
                 " ipset destroy cwbn";
    r.fw_entries = n;
    r.expect_stack_silent = true;
    return r;
}

std::vector<Row> base_rows()
{
    return {
        {.key = "drop", .label = "bare XDP_DROP (the ceiling)", .receiver = Receiver::BareDrop,
         .tmpl = Template::Ack, .baseline = ""},
        {.key = "cw-block", .label = "connwatch block path (source blocked)",
         .receiver = Receiver::Connwatch, .tmpl = Template::Ack, .block_source = true,
         .baseline = "drop", .expect_stat = CW_STAT_DROP_BLOCKED},
        {.key = "cw-block-exp", .label = "connwatch block path, the block expiring in an hour (clock read)",
         .receiver = Receiver::Connwatch, .tmpl = Template::Ack, .block_source = true, .block_expires = true,
         .baseline = "drop", .expect_stat = CW_STAT_DROP_BLOCKED},
        {.key = "cw-block-nocache", .label = "connwatch block path, verdict cache off (hash lookup each frame)",
         .receiver = Receiver::Connwatch, .tmpl = Template::Ack, .block_source = true,
         .verdict_cache = false, .baseline = "drop", .expect_stat = CW_STAT_DROP_BLOCKED},
        {.key = "cw-block-exp-nocache", .label = "connwatch block path, expiring block, verdict cache off",
         .receiver = Receiver::Connwatch, .tmpl = Template::Ack, .block_source = true, .block_expires = true,
         .verdict_cache = false, .baseline = "drop", .expect_stat = CW_STAT_DROP_BLOCKED},
        {.key = "pass", .label = "bare XDP_PASS, established-flow ACK", .receiver = Receiver::BarePass,
         .tmpl = Template::Ack, .baseline = "drop"},
        {.key = "cw-pass", .label = "connwatch pass path, established-flow ACK, blocklist empty",
         .receiver = Receiver::Connwatch, .tmpl = Template::Ack, .baseline = "pass",
         .expect_stat = CW_STAT_PASS_TCP_OTHER},
        {.key = "cw-pass-1", .label = "connwatch pass path, established-flow ACK, one other address blocked",
         .receiver = Receiver::Connwatch, .tmpl = Template::Ack, .block_other = true,
         .baseline = "pass", .expect_stat = CW_STAT_PASS_TCP_OTHER},
        {.key = "pass-syn", .label = "bare XDP_PASS, SYN to a closed port",
         .receiver = Receiver::BarePass, .tmpl = Template::Syn, .baseline = "drop"},
        {.key = "cw-syn", .label = "connwatch SYN path, one 4-tuple (dedup)",
         .receiver = Receiver::Connwatch, .tmpl = Template::Syn, .baseline = "pass-syn",
         .expect_stat = CW_STAT_PASS_SYN},
        {.key = "pass-syn-new", .label = "bare XDP_PASS, SYN, new 4-tuple each",
         .receiver = Receiver::BarePass, .tmpl = Template::Syn, .sender = Sender::NewPort,
         .baseline = "drop"},
        {.key = "cw-syn-new", .label = "connwatch SYN path, new 4-tuple each",
         .receiver = Receiver::Connwatch, .tmpl = Template::Syn, .sender = Sender::NewPort,
         .dedup_ns = 1000000, .baseline = "pass-syn-new", .expect_stat = CW_STAT_PASS_SYN},
    };
}

struct RowOptions {
    std::vector<uint32_t> entries;     // blocklist groups
    std::vector<uint32_t> fw_entries;  // nft / ipset set sizes
    std::vector<uint32_t> xdpf_entries; // xdp-filter sizes (<= 10000, its maps' capacity)
    std::string rx_netns, rx_if, src;
};

std::vector<Row> all_rows(const RowOptions& ro)
{
    std::vector<Row> rows = base_rows();
    // Pass rows: nothing attached at all (veth NAPI through GRO: the frames
    // become skbs), and SYNs from a million new sources (scan-state inserts).
    {
        Row r{.key = "no-prog", .label = "no XDP program (veth GRO on), established-flow ACK",
              .receiver = Receiver::External, .tmpl = Template::Ack, .baseline = "pass"};
        r.setup = "ip netns exec " + ro.rx_netns + " ethtool -K " + ro.rx_if + " gro on";
        r.teardown = "ip netns exec " + ro.rx_netns + " ethtool -K " + ro.rx_if + " gro off";
        rows.push_back(r);
        rows.push_back({.key = "pass-syn-src", .label = "bare XDP_PASS, SYN, new source each (1 M sources)",
                        .receiver = Receiver::BarePass, .tmpl = Template::Syn, .sender = Sender::Spread,
                        .baseline = "drop", .spread = 1000000});
        rows.push_back({.key = "cw-syn-src", .label = "connwatch SYN path, new source each (scan-state inserts)",
                        .receiver = Receiver::Connwatch, .tmpl = Template::Syn, .sender = Sender::Spread,
                        .baseline = "pass-syn-src", .expect_stat = CW_STAT_PASS_SYN, .spread = 1000000});
    }
    // The other tools, in the first group (their sets come and go per row).
    for (uint32_t n : ro.xdpf_entries) {
        Row r{.key = "xdpf-" + group_name(n), .label = "xdp-filter (xdp-tools), source match, " +
                                                         std::to_string(n) + " entries",
              .receiver = Receiver::External, .tmpl = Template::Ack, .baseline = "drop"};
        // One mount namespace for load and rule: its pins live there only.
        r.setup = "ip netns exec " + ro.rx_netns + " sh -c 'mount -t bpf bpf /sys/fs/bpf && "
                  "xdp-filter load -m native -f ipv4 " + ro.rx_if + " && xdp-filter ip -m src " + ro.src + "'";
        r.teardown = "ip -n " + ro.rx_netns + " link set dev " + ro.rx_if + " xdp off";
        r.fill_xdp_filter = "filter_ipv4";
        r.fw_entries = n;
        rows.push_back(r);
    }
    for (uint32_t n : ro.fw_entries)
        rows.push_back(nft_row(n, ro.rx_netns, ro.rx_if));
    {
        Row r{.key = "ipt-rule", .label = "XDP_PASS + iptables raw PREROUTING, one -s rule",
              .receiver = Receiver::BarePass, .tmpl = Template::Ack, .baseline = "drop"};
        r.setup = "ip netns exec " + ro.rx_netns + " iptables -t raw -A PREROUTING -s " + ro.src + " -j DROP";
        r.teardown = "ip netns exec " + ro.rx_netns + " iptables -t raw -F PREROUTING";
        r.expect_stack_silent = true;
        rows.push_back(r);
    }
    for (uint32_t n : ro.fw_entries)
        rows.push_back(ipset_row(n, ro.rx_netns));
    // Blocklist groups: connwatch with N entries, the same source repeated
    // (spread 1: 10.0.0.0) and sources spread over all N (every frame a new
    // source, the realistic flood), against a bare XDP_DROP fed by the same
    // sender; the one blocked source also with the verdict cache off.
    for (uint32_t n : ro.entries) {
        std::string g = group_name(n), drop = "drop-g" + g;
        rows.push_back({.key = drop, .label = "bare XDP_DROP, same sender (" + g + " group)",
                        .receiver = Receiver::BareDrop, .tmpl = Template::Ack, .sender = Sender::Spread,
                        .group = n, .spread = n});
        for (int kind = 0; kind < 3; kind++) {
            bool spread = kind == 1, nocache = kind == 2;
            Row r{.key = std::string("cw-") + (spread ? "spread-" : "same-") + g + (nocache ? "-nocache" : ""),
                  .label = "connwatch, " + std::to_string(n) + " entries, " +
                           (spread ? "sources spread over all" : "one blocked source") +
                           (nocache ? ", verdict cache off" : ""),
                  .receiver = Receiver::Connwatch, .tmpl = Template::Ack, .sender = Sender::Spread,
                  .verdict_cache = !nocache, .baseline = drop, .expect_stat = CW_STAT_DROP_BLOCKED};
            r.group = n;
            r.spread = spread ? n : 1;
            rows.push_back(r);
        }
    }
    return rows;
}

// Frames that XDP drops cost ~100-200 ns here; frames that enter the stack cost
// 5-20 times that. One count for both would make the stack rows take minutes,
// so each kind has its own (--count, --stack-count).
bool into_stack(const Row& r)
{
    if (r.group)
        return false;
    return r.receiver == Receiver::BarePass || r.receiver == Receiver::External ||
           (r.receiver == Receiver::Connwatch && !r.block_source);
}

struct Result {
    bool ok = false;
    uint32_t frames = 0;
    double seconds = 0;
    double mpps = 0;
    double kernel_ns = 0; // BPF_PROG_RUN's own average per frame
    double solo_ns = 0;   // the receiver's program alone (plain BPF_PROG_RUN)
    double cpu_ns = 0;    // CPU time per frame: this thread + ksoftirqd
    double softirqd_ns = 0; // of which ksoftirqd (deferred NAPI polls)
    double setup_s = 0;     // the row's set-up command (other tools' sets)
    std::vector<std::string> problems;
    std::string detail;
};

volatile sig_atomic_t g_alarm = 0;
void on_alarm(int) { g_alarm = 1; }

struct Options {
    uint32_t count = 20'000'000;      // rows whose frames XDP drops
    uint32_t stack_count = 4'000'000; // rows whose frames go into the stack
    uint32_t solo_count = 1'000'000;  // the receiver's program alone, per row
    uint32_t warmup = 5'000'000;      // bare-drop frames before the first row
    uint32_t batch = 64;
    uint32_t rounds = 2;
    int cpu = 0;
    unsigned row_timeout_s = 60;
    uint32_t frame_len = 60;
    std::string tx_netns = "cwbn-tx", rx_netns = "cwbn-rx";
    std::string tx_if = "cwbn0", rx_if = "cwbn1";
    std::string src = "10.232.0.1", dst = "10.232.0.2";
    // Below 1024: outside the ports xdp_redirect_sp writes (1024..65535), so a
    // "new 4-tuple" SYN never lands on the established flow's socket.
    uint16_t sport = 1000, syn_sport = 1001, dport = 8080;
    std::vector<std::string> rows;
    bool verbose = false;
    std::vector<uint32_t> entries = {1, 10000, 1000000, 16777216};
    std::vector<uint32_t> fw_entries = {1, 10000, 1000000};
    std::vector<uint32_t> xdpf_entries = {1, 10000};
};

std::string ipv4_text(uint32_t host_order)
{
    in_addr a{htonl(host_order)};
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, buf, sizeof(buf));
    return buf;
}

// The set of a firewall row: the sender's address, then 10.0.0.0 + i until
// there are n (the sender's skipped).
std::vector<uint32_t> fw_set(uint32_t src, uint32_t n)
{
    std::vector<uint32_t> out{src};
    for (uint32_t i = 0; out.size() < n; i++)
        if (kSpreadBase + i != src)
            out.push_back(kSpreadBase + i);
    return out;
}

// Runs a row's set-up or tear-down command (a script in /tmp, bounded by
// timeout); false, and what it said, when it failed.
bool shell(const std::string& cmd, const std::string& setfile, std::string* problem)
{
    const std::string script = "/tmp/cwbn-cmd.sh", log = "/tmp/cwbn-cmd.log";
    {
        std::ofstream out(script);
        out << "CWBN_SETFILE=" << setfile << "\n" << cmd << "\n";
    }
    int rc = std::system(("timeout --kill-after=10 300 sh -e " + script + " >" + log + " 2>&1").c_str());
    if (rc != 0 && problem) {
        std::ifstream in(log);
        std::stringstream ss;
        ss << in.rdbuf();
        *problem = "'" + cmd + "' failed (status " + std::to_string(rc) + "): " + ss.str();
    }
    return rc == 0;
}

class Bench {
public:
    explicit Bench(const Options& o) : o_(o), tx_ns_(open_netns(o.tx_netns)), rx_ns_(open_netns(o.rx_netns))
    {
        enter_netns(tx_ns_, o.tx_netns.c_str());
        tx_ifindex_ = ifindex_of(o.tx_if);
        flow_.src_mac = mac_of(o.tx_if);
        {
            InNetns rx(rx_ns_, o.rx_netns.c_str(), tx_ns_);
            rx_ifindex_ = ifindex_of(o.rx_if);
            flow_.dst_mac = mac_of(o.rx_if);
        }
        in_addr check{};
        if (inet_pton(AF_INET, o.src.c_str(), &check) != 1 || inet_pton(AF_INET, o.dst.c_str(), &check) != 1)
            fail("--src and --dst must be IPv4 addresses");
        flow_.src = o.src;
        flow_.dst = o.dst;
        inet_pton(AF_INET, o.src.c_str(), &check);
        src_host_ = ntohl(check.s_addr);
        flow_.sport = o.sport;
        flow_.dport = o.dport;
        Flow syn_flow = flow_;
        syn_flow.sport = o.syn_sport;
        ack_ = tcp_frame(flow_, test::kAck, kPeerSeq, kLocalSeq, o.frame_len);
        syn_ = tcp_frame(syn_flow, test::kSyn, 0x30000000, 0, o.frame_len);
        Flow base_flow = flow_;
        base_flow.src = ipv4_text(kSpreadBase);
        ack_base_ = tcp_frame(base_flow, test::kAck, kPeerSeq, kLocalSeq, o.frame_len);

        progs_ = load_bench_progs(tx_ifindex_);
        // The sending veth's own program: without one the veth cannot be an
        // XDP redirect target; it also drops what the receiver's stack answers.
        sink_ = attach_native(bpf_program__fd(progs_->progs.xdp_sink), tx_ifindex_, o.tx_if);
        {
            InNetns rx(rx_ns_, o.rx_netns.c_str(), tx_ns_);
            flow_socket_ = established_socket(flow_);
        }
        LoadSettings settings;
        settings.pin_dir.clear(); // never pin: a daemon's pinned blocklist is not ours to touch
        // As large as the largest group: a host configured for max-blocks N.
        for (uint32_t n : o.entries)
            settings.max_blocks = std::max(settings.max_blocks, n);
        connwatch_ = std::make_unique<XdpProgram>(settings);
        default_config_ = connwatch_->config();
        // Read (and throw away) the events after each row, as connwatchd would, so
        // every row starts with an empty ring: 8192 events fit, the rest of a
        // row's new SYNs find it full (EVENTS_LOST), as in any flood.
        events_ = std::make_unique<EventReader>(*connwatch_, [](const cw_event&) {});
        ksoftirqd_ = ksoftirqd_schedstat(o.cpu);
        if (ksoftirqd_.empty())
            std::fprintf(stderr, "live_frames: no ksoftirqd/%d found: CPU time leaves out deferred "
                                 "softirqs, ignoring\n", o.cpu);
    }

    // Grows connwatch's block_addr to n entries, 10.0.0.0 + i (never shrinks:
    // groups run in ascending order). Returns the seconds it took.
    double fill_to(uint32_t n)
    {
        auto t0 = std::chrono::steady_clock::now();
        constexpr uint32_t kBatch = 65536;
        std::vector<cw_addr> keys;
        std::vector<cw_block> values;
        cw_block b{};
        b.created_ns = monotonic_now_ns();
        b.origin = CW_ORIGIN_MANUAL; // expires 0: until removed
        while (filled_ < n) {
            keys.clear();
            for (uint32_t i = filled_; i < n && keys.size() < kBatch; i++) {
                cw_addr k{}; // ::ffff:a.b.c.d
                k.b[10] = k.b[11] = 0xff;
                uint32_t be = htonl(kSpreadBase + i);
                std::memcpy(&k.b[12], &be, 4);
                keys.push_back(k);
            }
            values.assign(keys.size(), b);
            size_t done = connwatch_->block_add_batch(keys, values);
            if (done != keys.size())
                fail("Failed to fill the blocklist at " + std::to_string(filled_ + done) + " of " +
                     std::to_string(n) + " entries: " + errno_text(errno));
            filled_ += static_cast<uint32_t>(done);
        }
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }

    Result run_row(const Row& row, uint32_t frames)
    {
        Result r;
        r.frames = frames;
        const auto& frame = row.tmpl == Template::Ack ? ack_ : syn_;
        int sender_fd = bpf_program__fd(row.sender == Sender::NewPort  ? progs_->progs.xdp_redirect_sp
                                        : row.sender == Sender::Spread ? progs_->progs.xdp_redirect_src
                                                                       : progs_->progs.xdp_redirect);
        progs_->bss->spread_base = kSpreadBase;
        progs_->bss->spread_count = row.spread ? row.spread : 1;
        Address src = *Address::parse(o_.src);
        int counters_fd = bpf_map__fd(progs_->maps.counters);

        // The other tools' set-up: their set in a file, their commands.
        std::string setfile;
        if (row.fw_entries && row.fill_xdp_filter.empty()) {
            setfile = "/tmp/cwbn-set.txt";
            std::ofstream out(setfile);
            auto set = fw_set(src_host_, row.fw_entries);
            if (row.key.rfind("nft-", 0) == 0) {
                out << "table netdev cwbn {\n  set s {\n    type ipv4_addr\n    size " << set.size() + 16
                    << "\n    elements = {";
                for (size_t i = 0; i < set.size(); i++)
                    out << (i ? ",\n" : " ") << ipv4_text(set[i]);
                out << " }\n  }\n  chain c {\n    type filter hook ingress device " << o_.rx_if
                    << " priority 0; policy accept;\n    ip saddr @s drop\n  }\n}\n";
            } else {
                out << "create cwbn hash:ip maxelem " << std::max<size_t>(65536, set.size()) << "\n";
                for (uint32_t a : set)
                    out << "add cwbn " << ipv4_text(a) << "\n";
            }
        }
        struct Teardown {
            std::string cmd;
            ~Teardown()
            {
                if (!cmd.empty())
                    shell(cmd, "", nullptr);
            }
        } teardown;
        if (!row.setup.empty()) {
            std::string problem;
            teardown.cmd = row.teardown;
            auto t0 = std::chrono::steady_clock::now();
            if (!shell(row.setup, setfile, &problem)) {
                r.problems.push_back("set-up: " + problem);
                return r;
            }
            if (!row.fill_xdp_filter.empty() && row.fw_entries > 1 && !fill_xdp_filter(row, &problem)) {
                r.problems.push_back("xdp-filter's map: " + problem);
                return r;
            }
            r.setup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        }

        // Receiver program, attached for this row only.
        UniqueFd link;
        std::unique_ptr<XdpAttachment> cw_link;
        bool skip_armed = false;
        if (row.receiver == Receiver::External) {
            // Attached (or not) by the set-up command.
        } else if (row.receiver == Receiver::Connwatch) {

            cw_config cfg = default_config_;
            if (row.dedup_ns)
                cfg.dedup_ns = row.dedup_ns;
            connwatch_->set_verdict_cache(row.verdict_cache);
            connwatch_->set_config(cfg);
            if (row.block_source) {
                cw_block b{};
                b.created_ns = monotonic_now_ns();
                b.expires_ns = row.block_expires ? b.created_ns + 3600'000'000'000ull : 0; // 0: until removed
                b.origin = CW_ORIGIN_MANUAL;
                if (!connwatch_->block_add(src, b))
                    fail("block_add failed: " + errno_text(errno));
            } else if (!row.group) {
                // Not in a blocklist group: their fill holds the sender's own
                // address too (10.0.0.0/8 at 16 M), which a spread row's
                // frames come from once in 16 M.
                connwatch_->block_remove(src);
            }
            if (row.block_other) {
                cw_block b{};
                b.created_ns = monotonic_now_ns();
                b.origin = CW_ORIGIN_MANUAL;
                if (!connwatch_->block_add(other_, b))
                    fail("block_add failed: " + errno_text(errno));
            }
            // The pass path skips the block_addr lookup while the list is empty.
            skip_armed = connwatch_->refresh_exact_skip();
            InNetns rx(rx_ns_, o_.rx_netns.c_str(), tx_ns_);
            cw_link = std::make_unique<XdpAttachment>(*connwatch_, o_.rx_if, XdpMode::Native);
        } else {
            int fd = bpf_program__fd(row.receiver == Receiver::BareDrop ? progs_->progs.xdp_drop_count
                                                                       : progs_->progs.xdp_pass_count);
            InNetns rx(rx_ns_, o_.rx_netns.c_str(), tx_ns_);
            link = attach_native(fd, rx_ifindex_, o_.rx_if);
        }

        auto snapshot = [&](LinkCounters& rxc, LinkCounters& txc, Snmp& snmp, Stats& cw,
                            uint64_t& bench_rx, uint64_t& sink) {
            {
                InNetns rx(rx_ns_, o_.rx_netns.c_str(), tx_ns_);
                rxc = link_counters(o_.rx_if);
                snmp = read_snmp();
            }
            txc = link_counters(o_.tx_if);
            cw = connwatch_->stats();
            bench_rx = percpu_sum(counters_fd, 0);
            sink = percpu_sum(counters_fd, 1);
        };
        LinkCounters rx0, rx1, tx0, tx1;
        Snmp snmp0, snmp1;
        Stats cw0{}, cw1{};
        uint64_t brx0 = 0, brx1 = 0, sink0 = 0, sink1 = 0;
        snapshot(rx0, tx0, snmp0, cw0, brx0, sink0);

        xdp_md ctx{};
        ctx.data_end = static_cast<uint32_t>(frame.size());
        ctx.ingress_ifindex = static_cast<uint32_t>(tx_ifindex_);
        LIBBPF_OPTS(bpf_test_run_opts, run);
        run.data_in = frame.data();
        run.data_size_in = static_cast<uint32_t>(frame.size());
        run.ctx_in = &ctx;
        run.ctx_size_in = sizeof(ctx);
        run.repeat = static_cast<int>(frames);
        run.batch_size = o_.batch;
        run.flags = BPF_F_TEST_XDP_LIVE_FRAMES;

        // Bounded in time as well as in count: the alarm interrupts BPF_PROG_RUN
        // (the kernel checks for pending signals between batches; -EINTR).
        g_alarm = 0;
        alarm(o_.row_timeout_s);
        uint64_t sirq0 = schedstat_runtime_ns(ksoftirqd_);
        uint64_t cpu0 = thread_cpu_ns();
        auto t0 = std::chrono::steady_clock::now();
        int err = bpf_prog_test_run_opts(sender_fd, &run);
        auto t1 = std::chrono::steady_clock::now();
        int saved = errno;
        uint64_t cpu1 = thread_cpu_ns();
        uint64_t sirq1 = schedstat_runtime_ns(ksoftirqd_);
        alarm(0);

        snapshot(rx1, tx1, snmp1, cw1, brx1, sink1);

        // The receiver's program alone on the same frame and the same maps: plain
        // BPF_PROG_RUN, no veth, no sender. Its counters move, after the snapshot.
        // Group rows: on a frame from 10.0.0.0, blocked in every group, again
        // and again (so with the cache on, every run after the first is a
        // hit); not measured for external receivers.
        int solo_fd = row.receiver == Receiver::Connwatch ? connwatch_->prog_fd()
                      : row.receiver == Receiver::BareDrop ? bpf_program__fd(progs_->progs.xdp_drop_count)
                                                            : bpf_program__fd(progs_->progs.xdp_pass_count);
        LIBBPF_OPTS(bpf_test_run_opts, solo);
        const auto& solo_frame = row.group ? ack_base_ : frame;
        solo.data_in = solo_frame.data();
        solo.data_size_in = static_cast<uint32_t>(solo_frame.size());
        solo.repeat = static_cast<int>(o_.solo_count);
        bool solo_run = !err && row.receiver != Receiver::External && (row.group || row.sender != Sender::Spread);
        int solo_err = solo_run ? bpf_prog_test_run_opts(solo_fd, &solo) : 0;
        int solo_errno = errno;

        link = UniqueFd();
        cw_link.reset();
        uint64_t events = events_ ? static_cast<uint64_t>(std::max(0, events_->consume())) : 0;
        if (row.receiver == Receiver::Connwatch) {
            if (row.block_source)
                connwatch_->block_remove(src);
            if (row.block_other)
                connwatch_->block_remove(other_);
            connwatch_->set_verdict_cache(true);
            connwatch_->set_config(default_config_);
        }

        if (err) {
            r.problems.push_back(std::string("BPF_PROG_RUN failed: ") +
                                 (g_alarm ? "timed out after " + std::to_string(o_.row_timeout_s) + " s"
                                          : errno_text(saved)));
            return r;
        }
        r.seconds = std::chrono::duration<double>(t1 - t0).count();
        r.mpps = frames / r.seconds / 1e6;
        r.kernel_ns = run.duration;
        r.softirqd_ns = static_cast<double>(sirq1 - sirq0) / frames;
        r.cpu_ns = static_cast<double>(cpu1 - cpu0) / frames + r.softirqd_ns;
        if (solo_err)
            r.problems.push_back("BPF_PROG_RUN of the receiver alone failed: " + errno_text(solo_errno));
        else
            r.solo_ns = solo.duration;
        uint32_t want_action =
            row.receiver == Receiver::BareDrop || row.block_source || row.group ? XDP_DROP : XDP_PASS;
        if (solo_run && !solo_err && solo.retval != want_action)
            r.problems.push_back("the receiver alone returned XDP action " + std::to_string(solo.retval) +
                                 ", not " + std::to_string(want_action));

        // Where the frames went. Every one must have reached the receiver's XDP
        // program, and the program must have said what we expect of it.
        uint32_t rx_pkts = rx1.rx_packets - rx0.rx_packets;
        uint32_t tx_drop = tx1.tx_dropped - tx0.tx_dropped;
        std::ostringstream d;
        d << "rx_packets(" << o_.rx_if << ") +" << rx_pkts;
        if (tx_drop)
            d << ", tx_dropped(" << o_.tx_if << ") +" << tx_drop;
        if (rx_pkts != frames)
            r.problems.push_back("the receiving veth counted " + std::to_string(rx_pkts) +
                                 " frames, not " + std::to_string(frames));
        if (row.receiver == Receiver::Connwatch) {
            d << "; connwatch (block_addr lookup " << (skip_armed ? "skipped: list empty" : "made")
              << "):";
            for (uint32_t i = 0; i < CW_STAT_MAX; i++)
                if (cw1[i] != cw0[i])
                    d << " " << stat_name(i) << " +" << cw1[i] - cw0[i];
            uint64_t got = cw1[static_cast<size_t>(row.expect_stat)] - cw0[static_cast<size_t>(row.expect_stat)];
            if (events)
                d << " (events read from the ring afterwards: " << events << ")";
            if (got != frames)
                r.problems.push_back(std::string("connwatch counted ") + std::to_string(got) + " " +
                                     std::string(stat_name(static_cast<uint32_t>(row.expect_stat))) + ", not " +
                                     std::to_string(frames));
        } else if (row.receiver == Receiver::External) {
            // Only the veth's count (above) and the stack's.
        } else {
            d << "; bare program counted +" << brx1 - brx0;
            if (brx1 - brx0 != frames)
                r.problems.push_back("the bare program counted " + std::to_string(brx1 - brx0) +
                                     " frames, not " + std::to_string(frames));
        }
        d << "; stack:";
        for (const auto& k : kSnmpShown) {
            uint64_t delta = snmp1[k] - snmp0[k];
            if (delta)
                d << " " << k << " +" << delta;
        }
        if (sink1 != sink0)
            d << "; replies dropped at " << o_.tx_if << " +" << sink1 - sink0;
        if (row.expect_stack_silent && snmp1["Tcp:InSegs"] != snmp0["Tcp:InSegs"])
            r.problems.push_back("the stack received " + std::to_string(snmp1["Tcp:InSegs"] - snmp0["Tcp:InSegs"]) +
                                 " TCP segments: the firewall did not drop them");
        if (r.setup_s > 0)
            d << "; set-up took " << r.setup_s << " s";
        r.detail = d.str();
        r.ok = r.problems.empty();
        return r;
    }

private:
    Options o_;
    UniqueFd tx_ns_, rx_ns_;
    int tx_ifindex_ = 0, rx_ifindex_ = 0;
    Flow flow_;
    test::Bytes ack_, syn_;
    test::Bytes ack_base_; // from 10.0.0.0: blocked in every group (program alone)
    BenchSkel progs_;
    UniqueFd sink_;
    UniqueFd flow_socket_;
    std::unique_ptr<XdpProgram> connwatch_;
    std::unique_ptr<EventReader> events_;
    std::string ksoftirqd_;
    cw_config default_config_{};
    uint32_t filled_ = 0;
    uint32_t src_host_ = 0;
    // block_other rows: never a sender (TEST-NET-1).
    Address other_ = *Address::parse("192.0.2.77");

    // xdp-filter has no bulk command: after its own `ip` command put the
    // sender's address in, its map (found by name among the maps of the
    // program it attached) gets fw_entries - 1 more, each with the value it
    // wrote for that first one.
    bool fill_xdp_filter(const Row& row, std::string* problem)
    {
        uint32_t id = 0;
        int fd = -1;
        while (bpf_map_get_next_id(id, &id) == 0) {
            int f = bpf_map_get_fd_by_id(id);
            if (f < 0)
                continue;
            bpf_map_info info{};
            uint32_t len = sizeof(info);
            if (bpf_obj_get_info_by_fd(f, &info, &len) == 0 && row.fill_xdp_filter == info.name &&
                info.key_size == 4) {
                if (fd >= 0)
                    close(fd);
                fd = f; // the newest of that name
                continue;
            }
            close(f);
        }
        if (fd < 0) {
            *problem = "no map named " + row.fill_xdp_filter;
            return false;
        }
        UniqueFd guard(fd);
        bpf_map_info info{};
        uint32_t len = sizeof(info);
        bpf_obj_get_info_by_fd(fd, &info, &len);
        int ncpu = libbpf_num_possible_cpus();
        bool percpu = info.type == BPF_MAP_TYPE_PERCPU_HASH || info.type == BPF_MAP_TYPE_PERCPU_ARRAY;
        size_t vsize = (info.value_size + 7) / 8 * 8 * (percpu ? static_cast<size_t>(ncpu) : 1);
        std::vector<uint8_t> value(vsize);
        uint32_t key = htonl(src_host_);
        if (bpf_map_lookup_elem(fd, &key, value.data()) != 0) {
            *problem = "the sender's address is not in " + row.fill_xdp_filter + ": " + errno_text(errno);
            return false;
        }
        for (uint32_t a : fw_set(src_host_, row.fw_entries)) {
            uint32_t k = htonl(a);
            if (bpf_map_update_elem(fd, &k, value.data(), BPF_ANY) != 0) {
                *problem = "adding " + ipv4_text(a) + ": " + errno_text(errno);
                return false;
            }
        }
        return true;
    }
};

std::string first_line_of(const char* file, const char* prefix)
{
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(prefix, 0) == 0) {
            auto colon = line.find(':');
            return colon == std::string::npos ? line : line.substr(line.find_first_not_of(" \t", colon + 1));
        }
    return "?";
}

int run(int argc, char** argv)
{
    Options o;
    CLI::App app{"connwatch live-frames packet-rate benchmark (see bench/README.md; run it "
                 "through bench/run.sh, which creates the namespaces and veth pair)"};
    app.add_option("--count", o.count, "frames per round of a row that XDP drops")
        ->check(CLI::Range(1000u, 1000000000u));
    app.add_option("--stack-count", o.stack_count, "frames per round of a row whose frames enter the stack")
        ->check(CLI::Range(1000u, 1000000000u));
    app.add_option("--solo-count", o.solo_count, "repeats of the receiver program alone, per row")
        ->check(CLI::Range(1000u, 100000000u));
    app.add_option("--warmup", o.warmup, "bare-drop frames before the first row (0: none)")
        ->check(CLI::Range(0u, 100000000u));
    app.add_option("--batch", o.batch, "BPF_PROG_RUN batch_size")->check(CLI::Range(1u, 256u));
    app.add_option("--rounds", o.rounds, "times each row is measured (rows interleaved)")
        ->check(CLI::Range(1u, 10u));
    app.add_option("--cpu", o.cpu, "CPU to pin the sender (and so everything) to");
    app.add_option("--row-timeout", o.row_timeout_s, "seconds one row may take")->check(CLI::Range(1u, 600u));
    app.add_option("--frame-len", o.frame_len, "frame length in bytes")->check(CLI::Range(60u, 1500u));
    app.add_option("--tx-netns", o.tx_netns);
    app.add_option("--rx-netns", o.rx_netns);
    app.add_option("--tx-if", o.tx_if);
    app.add_option("--rx-if", o.rx_if);
    app.add_option("--src", o.src, "source address of the frames (sender side)");
    app.add_option("--dst", o.dst, "destination address (the receiving veth's)");
    app.add_option("--entries", o.entries, "blocklist groups: connwatch with this many entries")
        ->delimiter(',')->check(CLI::Range(1u, 16777216u));
    app.add_option("--fw-entries", o.fw_entries, "nftables and ipset rows: sets of this many")
        ->delimiter(',')->check(CLI::Range(1u, 16777216u));
    app.add_option("--xdpf-entries", o.xdpf_entries, "xdp-filter rows: this many entries (its maximum: 10000)")
        ->delimiter(',')->check(CLI::Range(1u, 10000u));
    std::string keys;
    for (const auto& r : all_rows({o.entries, o.fw_entries, o.xdpf_entries, o.rx_netns, o.rx_if, o.src}))
        keys += (keys.empty() ? "" : ",") + r.key;
    app.add_option("--rows", o.rows, "rows to run (default: all), of: " + keys)->delimiter(',');
    app.add_flag("--verbose", o.verbose, "libbpf's messages to stderr");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }

    std::vector<Row> rows;
    const std::vector<Row> every = all_rows({o.entries, o.fw_entries, o.xdpf_entries, o.rx_netns, o.rx_if, o.src});
    keys.clear();
    for (const auto& r : every)
        keys += (keys.empty() ? "" : ",") + r.key;
    for (const auto& r : every)
        if (o.rows.empty() || std::find(o.rows.begin(), o.rows.end(), r.key) != o.rows.end())
            rows.push_back(r);
    for (const auto& k : o.rows)
        if (std::none_of(rows.begin(), rows.end(), [&](const Row& r) { return r.key == k; })) {
            std::fprintf(stderr, "live_frames: unknown row '%s' (rows: %s)\n", k.c_str(), keys.c_str());
            return 2;
        }

    try {
        set_libbpf_verbose(o.verbose);
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(o.cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) != 0)
            fail("Failed to pin to CPU " + std::to_string(o.cpu) + ": " + errno_text(errno));
        struct sigaction sa{};
        sa.sa_handler = on_alarm; // no SA_RESTART: the alarm must end BPF_PROG_RUN
        sigaction(SIGALRM, &sa, nullptr);

        utsname u{};
        uname(&u);
        char date[64];
        std::time_t now = std::time(nullptr);
        std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S %z", std::localtime(&now));
        std::printf("# connwatch live-frames benchmark\n");
        std::printf("# date     %s\n# kernel   %s %s\n# cpu      %s, %ld online, sender pinned to CPU %d\n",
                    date, u.release, u.version, first_line_of("/proc/cpuinfo", "model name").c_str(),
                    sysconf(_SC_NPROCESSORS_ONLN), o.cpu);
        std::printf("# frames   %u per round of a row that XDP drops, %u of a row that enters the stack; "
                    "%u bytes, batch_size %u, %u round(s), rows interleaved\n",
                    o.count, o.stack_count, o.frame_len, o.batch, o.rounds);
        std::printf("# path     BPF_PROG_RUN(xdp_redirect, LIVE_FRAMES) -> %s (netns %s) -> veth -> %s "
                    "(netns %s, native XDP: the program under test)\n",
                    o.tx_if.c_str(), o.tx_netns.c_str(), o.rx_if.c_str(), o.rx_netns.c_str());
        std::printf("# columns  Mpps, ns/frame wall: wall clock around BPF_PROG_RUN (sender + receiver, one CPU);\n"
                    "#          CPU: this thread's CPU time + the CPU's ksoftirqd's, per frame (what the\n"
                    "#          run cost, without the time others had the CPU); kernel: BPF_PROG_RUN's own\n"
                    "#          average; alone: the receiver's program by itself (plain BPF_PROG_RUN, same\n"
                    "#          frame and maps, %u repeats); ratios and +ns are taken within one round\n\n",
                    o.solo_count);
        std::fflush(stdout);

        Bench bench(o);
        if (o.warmup) {
            // The first row after the loads and attaches has measured slow here
            // now and then; a throw-away bare-drop run takes that place.
            Result w = bench.run_row(base_rows().front(), o.warmup);
            std::printf("warm-up  %-13s %7.2f Mpps (not counted)  %s\n", "drop", w.mpps, w.ok ? "ok" : "FAILED");
        }
        std::map<std::string, std::vector<Result>> results;
        bool all_ok = true;
        // Groups in order (the first one without blocklist entries, then
        // ascending sizes): the blocklist is filled once per group, and the
        // group's rows are measured round after round, interleaved.
        std::vector<uint32_t> groups;
        for (const auto& row : rows)
            if (std::find(groups.begin(), groups.end(), row.group) == groups.end())
                groups.push_back(row.group);
        for (uint32_t group : groups) {
          if (group) {
              double secs = bench.fill_to(group);
              std::printf("\n# group %s: connwatch's blocklist now holds %u entries (10.0.0.0 + i; filled "
                          "in %.1f s)\n", group_name(group).c_str(), group, secs);
              std::fflush(stdout);
          }
          for (uint32_t round = 1; round <= o.rounds; round++) {
            for (const auto& row : rows) {
                if (row.group != group)
                    continue;
                Result r = bench.run_row(row, into_stack(row) ? o.stack_count : o.count);
                std::printf("round %u  %-13s %6.2f Mpps  %9u frames %7.3f s  %7.1f ns/frame wall, "
                            "%7.1f CPU (ksoftirqd %.1f), kernel %5.0f, alone %5.1f  %s\n",
                            round, row.key.c_str(), r.mpps, r.frames, r.seconds,
                            r.mpps > 0 ? 1000.0 / r.mpps : 0.0, r.cpu_ns, r.softirqd_ns, r.kernel_ns,
                            r.solo_ns, r.ok ? "ok" : "FAILED");
                std::printf("         %s\n", r.detail.c_str());
                for (const auto& p : r.problems)
                    std::printf("         PROBLEM: %s\n", p.c_str());
                std::fflush(stdout);
                all_ok = all_ok && r.ok;
                results[row.key].push_back(r);
            }
          }
        }

        // The table: each row's rounds, and its ratio to its baseline and its
        // extra time per frame, taken round by round (same-round pairs were
        // measured seconds apart; rounds can differ by a busy neighbour).
        auto list = [](const std::vector<double>& v, const char* fmt) {
            std::string out;
            for (double x : v) {
                char buf[32];
                std::snprintf(buf, sizeof(buf), fmt, x);
                out += (out.empty() ? "" : ", ") + std::string(buf);
            }
            return out;
        };
        std::printf("\n| row | receiver | Mpps (wall) | Mpps (CPU time) | ratio (wall) | ratio (CPU time) "
                    "| +CPU ns/frame | program alone, ns |\n|---|---|---|---|---|---|---|---|\n");
        for (const auto& row : rows) {
            const auto& rs = results[row.key];
            std::vector<double> mpps, cpu_mpps, solo, ratio, cpu_ratio, extra;
            for (const auto& r : rs) {
                mpps.push_back(r.mpps);
                cpu_mpps.push_back(r.cpu_ns > 0 ? 1000.0 / r.cpu_ns : 0.0);
                solo.push_back(r.solo_ns);
            }
            std::string vs = "-", cpu_vs = "-", plus = "-";
            if (!row.baseline.empty() && results.count(row.baseline)) {
                const auto& bs = results[row.baseline];
                for (size_t i = 0; i < rs.size() && i < bs.size(); i++) {
                    ratio.push_back(bs[i].mpps > 0 ? rs[i].mpps / bs[i].mpps : 0.0);
                    cpu_ratio.push_back(rs[i].cpu_ns > 0 ? bs[i].cpu_ns / rs[i].cpu_ns : 0.0);
                    extra.push_back(rs[i].cpu_ns - bs[i].cpu_ns);
                }
                vs = list(ratio, "%.2f") + " of " + row.baseline;
                cpu_vs = list(cpu_ratio, "%.2f");
                plus = list(extra, "%+.0f");
            }
            std::printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", row.key.c_str(), row.label.c_str(),
                        list(mpps, "%.2f").c_str(), list(cpu_mpps, "%.2f").c_str(), vs.c_str(),
                        cpu_vs.c_str(), plus.c_str(), list(solo, "%.0f").c_str());
        }
        std::printf("\n%s\n", all_ok ? "all rows: every frame arrived and was counted as expected"
                                     : "SOME ROWS FAILED: see PROBLEM lines above");
        return all_ok ? 0 : 1;
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "live_frames: %s\n", e.what());
        return 1;
    }
}

} // namespace
} // namespace connwatch::bench

int main(int argc, char** argv)
{
    return connwatch::bench::run(argc, argv);
}
