// SPDX-License-Identifier: GPL-2.0-only
// connwatchd's configuration: parse_command_line() with `--config FILE`, the file
// being the fuzz input (src/config/options.cpp, config_file.cpp: CLI11 and our
// line-by-line reader). What it accepts must be within the documented limits.
//
// CLI11 opens the file by name, so the input has to be a file. A memfd, named
// through /proc/self/fd, is one that lives in memory, is a regular file to
// fstat() (as check_file() demands) and disappears with the process: no
// temporary file is left behind, whatever ends the run.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/address.h"
#include "config/options.h"
#include "fuzz_check.h"

using namespace connwatch;

namespace {

int config_fd()
{
    static int fd = [] {
        int f = memfd_create("connwatchd.conf", MFD_CLOEXEC);
        if (f < 0) {
            std::perror("memfd_create");
            std::abort();
        }
        return f;
    }();
    return fd;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size)
{
    int fd = config_fd();
    if (ftruncate(fd, 0) != 0 ||
        pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) {
        std::perror("memfd");
        std::abort();
    }
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    const char* argv[] = {"connwatchd", "--config", path.c_str()};

    Options opts;
    std::string error;
    auto code = parse_command_line(3, argv, opts, "/nonexistent", &error);
    if (code) {
        // --help and --version are not keys of the file: only a refusal.
        FUZZ_CHECK(*code != 0, "exit code 0");
        FUZZ_CHECK(!error.empty(), "a refusal without a message");
        return 0;
    }
    FUZZ_CHECK(error.empty(), error);
    FUZZ_CHECK(opts.threshold >= 1 && opts.threshold <= kMaxThreshold,
               std::to_string(opts.threshold));
    FUZZ_CHECK(opts.window.count() >= 1 && opts.window <= kMaxWindow,
               std::to_string(opts.window.count()));
    FUZZ_CHECK(opts.block_duration.count() >= 0, std::to_string(opts.block_duration.count()));
    FUZZ_CHECK(opts.max_blocks >= 1 && opts.max_blocks <= kMaxBlocksLimit,
               std::to_string(opts.max_blocks));
    FUZZ_CHECK(check_listen_address(opts.metrics_listen).empty(), opts.metrics_listen);
    FUZZ_CHECK(!opts.control_socket.empty() && opts.control_socket[0] == '/' &&
                   opts.control_socket.size() <= 107,
               opts.control_socket);
    FUZZ_CHECK(!opts.state_dir.empty() && opts.state_dir[0] == '/', opts.state_dir);
    FUZZ_CHECK(opts.pin_dir.empty() || opts.pin_dir[0] == '/', opts.pin_dir);
    for (const auto& c : opts.allow)
        FUZZ_CHECK(Cidr::parse(c.str()) == c, c.str());

    // Reload parses the same file again (into fresh Options, as reload.cpp does):
    // same result.
    Options again;
    FUZZ_CHECK(!parse_command_line(3, argv, again, "/nonexistent", &error), error);
    FUZZ_CHECK(again.threshold == opts.threshold && again.window == opts.window &&
                   again.block_duration == opts.block_duration && again.allow == opts.allow &&
                   again.interfaces == opts.interfaces &&
                   again.metrics_listen == opts.metrics_listen,
               "a second parse of the same file differs");
    return 0;
}
