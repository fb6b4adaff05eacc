// SPDX-License-Identifier: GPL-2.0-only
// connwatchd: see man/connwatchd.8 (or connwatchd --help). Parses the options,
// builds the Manager and runs it; a failed start is said once, here.
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "base/error.h"
#include "config/options.h"
#include "crowdsec/client.h"
#include "daemon/manager.h"
#include "kernel/attachment.h"
#include "kernel/program.h"

using namespace connwatch;

int main(int argc, char** argv)
{
    Options opts;
    if (auto code = parse_command_line(argc, argv, opts))
        return *code;
    if (opts.check_config) {
        // Nothing beyond parsing and the CrowdSec secrets' files: no kernel, no
        // interfaces touched.
        try {
            crowdsec_settings(opts);
        } catch (const Error& e) {
            std::fprintf(stderr, "connwatchd: %s\n", e.what());
            return 1;
        }
        // The warnings start and reload log, in the stdout sink's words; a
        // warning is not an error: the exit status stays 0.
        if (auto w = escalation_warning(opts); !w.empty())
            std::fprintf(stderr, "connwatchd: warning: %s\n", w.c_str());
        if (access(opts.config_file.c_str(), F_OK) == 0)
            std::printf("%s: configuration OK\n", opts.config_file.c_str());
        else
            std::printf("%s: absent, defaults apply; command line OK\n",
                        opts.config_file.c_str());
        return 0;
    }
    if (opts.detach) {
        // What a clean stop does, for a daemon that could not: after a crash
        // followed by a stop, or at package removal.
        if (opts.pin_dir.empty()) {
            std::printf("pin-dir is empty: nothing was pinned, nothing to detach\n");
            return 0;
        }
        auto names = unpin_all_but_blocklists(opts.pin_dir);
        for (const auto& n : names)
            std::printf("%s: detached (pinned link removed from %s)\n", n.c_str(),
                        opts.pin_dir.c_str());
        if (names.empty())
            std::printf("%s: no pinned link, nothing attached\n", opts.pin_dir.c_str());
        return 0;
    }
    set_libbpf_verbose(opts.verbose);
    std::vector<std::string> args(argv, argv + argc);
    try {
        return Manager(std::move(opts), std::move(args)).run();
    } catch (const Error& e) {
        // Logged once, here; systemctl status shows it too, and ERRNO= the errno.
        std::fprintf(stderr, "connwatchd: %s\n", e.what());
        if (e.code())
            sd_notifyf(0, "STATUS=Failed to start: %s\nERRNO=%d", e.what(), e.code().value());
        else
            sd_notifyf(0, "STATUS=Failed to start: %s", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "connwatchd: unexpected error: %s\n", e.what());
        sd_notifyf(0, "STATUS=Failed: %s", e.what());
        return 1;
    }
}
