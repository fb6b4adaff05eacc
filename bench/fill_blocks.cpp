// SPDX-License-Identifier: GPL-2.0-only
// Fills a pinned block_addr map with N exact blocks, with bpf_map_update_batch:
// the fastest way to put a million entries in front of connwatchd, for the
// control-plane benchmark (bench/control_plane.sh) and the 1 M-entry
// integration test. The entries are what the kernel itself would make
// (origin scan) or what connwatchctl block would (origin manual), with a
// deadline DURATION seconds from now (0: never).
//
//   fill_blocks --map /sys/fs/bpf/connwatch/block_addr --count 1000000
//               [--first 10.0.0.0] [--duration 3600] [--origin scan|manual]
//               [--delete]
//
// Addresses are consecutive IPv4 ones from --first (16,777,216 fit in 10/8).
// --delete removes those same entries instead (bpf_map_delete_batch).
// Prints what it did and how long it took.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "base/clock.h"
#include "connwatch_abi.h"

namespace {

[[noreturn]] void usage()
{
    std::fprintf(stderr, "usage: fill_blocks --map PINNED_MAP --count N [--first IPV4] "
                         "[--duration SECONDS] [--origin scan|manual] [--delete]\n");
    std::exit(2);
}

cw_addr mapped(uint32_t host_order)
{
    cw_addr a{};
    a.b[10] = 0xff;
    a.b[11] = 0xff;
    uint32_t be = htonl(host_order);
    std::memcpy(&a.b[12], &be, 4);
    return a;
}

} // namespace

int main(int argc, char** argv)
{
    std::string map;
    uint64_t count = 0, duration = 3600;
    uint32_t first = 0x0a000000; // 10.0.0.0
    uint8_t origin = CW_ORIGIN_SCAN;
    bool remove = false;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc)
                usage();
            return argv[++i];
        };
        if (a == "--map")
            map = next();
        else if (a == "--count")
            count = std::strtoull(next().c_str(), nullptr, 10);
        else if (a == "--duration")
            duration = std::strtoull(next().c_str(), nullptr, 10);
        else if (a == "--first") {
            in_addr in{};
            if (inet_pton(AF_INET, next().c_str(), &in) != 1)
                usage();
            first = ntohl(in.s_addr);
        } else if (a == "--origin") {
            std::string o = next();
            origin = o == "manual" ? CW_ORIGIN_MANUAL : o == "scan" ? CW_ORIGIN_SCAN : 0;
            if (!origin)
                usage();
        } else if (a == "--delete")
            remove = true;
        else
            usage();
    }
    if (map.empty() || count == 0)
        usage();
    int fd = bpf_obj_get(map.c_str());
    if (fd < 0) {
        std::fprintf(stderr, "fill_blocks: %s: %s\n", map.c_str(), std::strerror(errno));
        return 1;
    }
    const uint64_t now = connwatch::monotonic_now_ns();
    cw_block v{};
    v.created_ns = now;
    v.expires_ns = duration ? now + duration * 1000000000ull : 0;
    v.origin = origin;

    constexpr uint32_t kChunk = 65536;
    std::vector<cw_addr> keys(kChunk);
    std::vector<cw_block> values(kChunk, v);
    auto t0 = std::chrono::steady_clock::now();
    uint64_t done = 0;
    while (done < count) {
        uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(kChunk, count - done));
        for (uint32_t i = 0; i < n; i++)
            keys[i] = mapped(static_cast<uint32_t>(first + done + i));
        uint32_t c = n;
        LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
        int err = remove ? bpf_map_delete_batch(fd, keys.data(), &c, &opts)
                         : bpf_map_update_batch(fd, keys.data(), values.data(), &c, &opts);
        done += c;
        if (err && !(remove && errno == ENOENT)) {
            std::fprintf(stderr, "fill_blocks: %s after %llu entries: %s%s\n",
                         remove ? "delete" : "update", static_cast<unsigned long long>(done),
                         std::strerror(errno),
                         errno == E2BIG || errno == ENOMEM ? " (the map is full: max-blocks)" : "");
            return 1;
        }
        if (err)
            done++; // deleting: key c was not there, which ends the batch; skip it
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s %llu entries in %.3f s (%.0f a second)\n", remove ? "deleted" : "added",
                static_cast<unsigned long long>(done), s, s > 0 ? done / s : 0.0);
    close(fd);
    return 0;
}
