// SPDX-License-Identifier: GPL-2.0-only
// The SYN rows' sender (bench/syn_rows.sh, bench/README.md "SYN rows with
// connwatchd"): SYNs from many sources at a given rate, with live frames
// (BPF_PROG_RUN, BPF_F_TEST_XDP_LIVE_FRAMES) out of a veth of the current
// network namespace, and optionally a port scan from one source mixed in.
//
//   syn_flood --tx-if IF --dst-mac MAC --src A --dst B --rate R --seconds S
//             [--sources N] [--scan-ports K --scan-every-ms M]
//
// The flood: xdp_redirect_src (bench_progs.bpf.c) rewrites each frame's source
// to 10.64.0.0 + F + n mod N (--first F), so every SYN of the first N is from a source the
// receiver has not seen. Sent in slices of a millisecond's worth (rate R per
// second; 0 = as fast as the CPU goes), each slice one BPF_PROG_RUN, bounded by
// --seconds. The scan: SYNs from --src to ports 20001, 20002, ... one every M
// ms, K of them, sent between the flood's slices. Prints one line of what was
// sent. Root; attaches xdp_sink to IF (drops what comes back) for its run.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench_progs.skel.h"
#include "packet.h"

namespace {

[[noreturn]] void fail(const std::string& what)
{
    std::fprintf(stderr, "syn_flood: %s\n", what.c_str());
    std::exit(1);
}

connwatch::test::Mac parse_mac(const std::string& s)
{
    connwatch::test::Mac m{};
    unsigned v[6];
    if (std::sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
        fail("not a MAC address: " + s);
    for (int i = 0; i < 6; i++)
        m[static_cast<size_t>(i)] = static_cast<uint8_t>(v[i]);
    return m;
}

connwatch::test::Mac mac_of(const std::string& ifname)
{
    std::FILE* f = std::fopen(("/sys/class/net/" + ifname + "/address").c_str(), "r");
    if (!f)
        fail("no interface " + ifname);
    char buf[64] = {};
    if (!std::fgets(buf, sizeof(buf), f))
        buf[0] = 0;
    std::fclose(f);
    buf[std::strcspn(buf, "\n")] = 0;
    return parse_mac(buf);
}

connwatch::test::Bytes syn_frame(const std::string& src, const std::string& dst, uint16_t sport,
                                 uint16_t dport, const connwatch::test::Mac& smac,
                                 const connwatch::test::Mac& dmac)
{
    connwatch::test::Packet p = connwatch::test::tcp4(src, sport, dport, connwatch::test::kSyn);
    p.src_mac = smac;
    p.dst_mac = dmac;
    p.ipv4->dst = dst;
    p.ipv4->id = 1;
    p.ipv4->dont_fragment = true;
    p.tcp->seq = 0x30000000;
    p.tcp->window = 0xffff;
    p.pad_to = 60;
    return p.build();
}

struct SkelDeleter {
    void operator()(bench_progs* s) const { bench_progs__destroy(s); }
};

// One BPF_PROG_RUN of `prog` on `frame`, `repeat` times, transmitted.
bool send(int prog, const connwatch::test::Bytes& frame, int ifindex, uint32_t repeat)
{
    xdp_md ctx{};
    ctx.data_end = static_cast<uint32_t>(frame.size());
    ctx.ingress_ifindex = static_cast<uint32_t>(ifindex);
    LIBBPF_OPTS(bpf_test_run_opts, run);
    run.data_in = frame.data();
    run.data_size_in = static_cast<uint32_t>(frame.size());
    run.ctx_in = &ctx;
    run.ctx_size_in = sizeof(ctx);
    run.repeat = repeat;
    run.batch_size = 64;
    run.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
    return bpf_prog_test_run_opts(prog, &run) == 0;
}

} // namespace

int main(int argc, char** argv)
{
    std::string tx_if, dst_mac, src = "10.234.0.1", dst = "10.234.0.2";
    double rate = 0, seconds = 1;
    uint32_t sources = 1000000, first = 0, scan_ports = 0, scan_every_ms = 500;
    CLI::App app{"syn_flood: SYNs from many sources, live frames, a scan mixed in"};
    app.add_option("--tx-if", tx_if, "the sending veth (this namespace)")->required();
    app.add_option("--dst-mac", dst_mac, "the receiving veth's MAC")->required();
    app.add_option("--src", src, "the scanner's address (the flood's come from 10.64.0.0 on)");
    app.add_option("--dst", dst, "the receiver's address");
    app.add_option("--rate", rate, "flood SYNs a second (0: as fast as it goes)");
    app.add_option("--seconds", seconds, "how long (at most 600)")->check(CLI::Range(0.001, 600.0));
    app.add_option("--sources", sources, "flood sources: 10.64.0.0 + first + n mod this")
        ->check(CLI::Range(1u, 1u << 22));
    app.add_option("--first", first, "the first flood source: 10.64.0.0 + this (another run's sources are not new)")
        ->check(CLI::Range(0u, 1u << 22));
    app.add_option("--scan-ports", scan_ports, "scan SYNs from --src to ports 20001 on (0: none)")
        ->check(CLI::Range(0u, 1000u));
    app.add_option("--scan-every-ms", scan_every_ms, "one scan SYN this often")->check(CLI::Range(1u, 60000u));
    CLI11_PARSE(app, argc, argv);

    int ifindex = static_cast<int>(if_nametoindex(tx_if.c_str()));
    if (!ifindex)
        fail("no interface " + tx_if);
    auto smac = mac_of(tx_if), dmac = parse_mac(dst_mac);

    std::unique_ptr<bench_progs, SkelDeleter> skel(bench_progs__open());
    if (!skel)
        fail("cannot open the benchmark's BPF object");
    skel->rodata->target_ifindex = static_cast<uint32_t>(ifindex);
    if (bench_progs__load(skel.get()))
        fail("cannot load the benchmark's BPF programs (root?)");
    skel->bss->spread_base = 0x0a400000 + first; // 10.64.0.0 + first
    skel->bss->spread_count = sources;
    LIBBPF_OPTS(bpf_link_create_opts, lopts, .flags = XDP_FLAGS_DRV_MODE);
    int link = bpf_link_create(bpf_program__fd(skel->progs.xdp_sink), ifindex, BPF_XDP, &lopts);
    if (link < 0)
        fail("cannot attach xdp_sink to " + tx_if + ": " + std::strerror(errno));

    auto flood_frame = syn_frame("10.64.0.0", dst, 40000, 80, smac, dmac);
    std::vector<connwatch::test::Bytes> scan;
    for (uint32_t i = 0; i < scan_ports; i++)
        scan.push_back(syn_frame(src, dst, 45000, static_cast<uint16_t>(20001 + i), smac, dmac));
    int flood_prog = bpf_program__fd(skel->progs.xdp_redirect_src);
    int one_prog = bpf_program__fd(skel->progs.xdp_redirect);

    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    const auto end = t0 + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds));
    // Paced by what is due: rate x elapsed time, less what was sent, in one
    // run each millisecond (at most 100 ms' worth: a sender starved by other
    // processes does not burst to catch up).
    const uint64_t burst = rate > 0 ? std::max<uint64_t>(1, static_cast<uint64_t>(rate / 10)) : 4096;
    uint64_t sent = 0, scan_sent = 0, failed = 0;
    auto next_scan = t0;
    timespec cpu0{}, cpu1{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
    for (auto now = clock::now(); now < end; now = clock::now()) {
        if (scan_sent < scan.size() && now >= next_scan) {
            if (send(one_prog, scan[scan_sent], ifindex, 1))
                scan_sent++;
            else
                failed++;
            next_scan += std::chrono::milliseconds(scan_every_ms);
        }
        uint64_t n = burst;
        if (rate > 0) {
            double due = rate * std::chrono::duration<double>(now - t0).count() - static_cast<double>(sent);
            n = due < 1 ? 0 : std::min<uint64_t>(burst, static_cast<uint64_t>(due));
        }
        if (n) {
            if (send(flood_prog, flood_frame, ifindex, static_cast<uint32_t>(n)))
                sent += n;
            else
                failed++;
        }
        if (rate > 0)
            std::this_thread::sleep_for(std::chrono::microseconds(1000));
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
    // The rest of the scan, if the flood was shorter than it.
    while (scan_sent < scan.size()) {
        std::this_thread::sleep_until(next_scan);
        if (!send(one_prog, scan[scan_sent], ifindex, 1))
            fail("a scan SYN could not be sent");
        scan_sent++;
        next_scan += std::chrono::milliseconds(scan_every_ms);
    }
    double secs = std::chrono::duration<double>(clock::now() - t0).count();
    double cpu = static_cast<double>(cpu1.tv_sec - cpu0.tv_sec) + (cpu1.tv_nsec - cpu0.tv_nsec) / 1e9;
    close(link);
    // CPU: the sender's thread, with the receiver's softirq (XDP, the stack's
    // RST) that runs inline on it: a second of it is what the whole path cost.
    std::printf("sent %llu flood SYNs in %.2f s (%.0f a second, from %u sources; %.2f s CPU, %.0f a "
                "CPU second), %llu scan SYNs, %llu failed runs\n",
                static_cast<unsigned long long>(sent), secs, sent / secs, sources, cpu,
                cpu > 0 ? sent / cpu : 0.0,
                static_cast<unsigned long long>(scan_sent), static_cast<unsigned long long>(failed));
    return failed ? 1 : 0;
}
