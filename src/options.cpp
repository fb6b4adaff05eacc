// SPDX-License-Identifier: GPL-2.0-only
#include "options.h"

#include <CLI/CLI.hpp>

#include <iostream>
#include <map>

#include "duration.h"

namespace connwatch {

namespace {

// A CLI11 validator from one of our parse functions, so a bad value is
// reported by CLI11 with the option's name and our explanation.
template <typename Parse>
CLI::Validator validator_from(Parse parse, const std::string& name)
{
    return CLI::Validator(
        [parse](std::string& value) {
            std::string error;
            return parse(value, &error) ? std::string() : error;
        },
        name);
}

} // namespace

const char* to_string(XdpMode m)
{
    switch (m) {
    case XdpMode::Auto: return "auto";
    case XdpMode::Native: return "native";
    case XdpMode::Generic: return "generic";
    }
    return "?";
}

const char* to_string(LogTarget t)
{
    switch (t) {
    case LogTarget::Auto: return "auto";
    case LogTarget::Journal: return "journal";
    case LogTarget::Stdout: return "stdout";
    }
    return "?";
}

std::optional<int> parse_command_line(int argc, const char* const* argv, Options& out)
{
    CLI::App app{"connwatchd: report inbound TCP connection attempts, detect port scans and "
                 "block scanners in XDP",
                 "connwatchd"};
    app.set_version_flag("--version", CONNWATCH_VERSION);
    app.option_defaults()->always_capture_default();

    std::string window = format_duration(out.window);
    std::string block_duration = format_duration(out.block_duration);
    std::vector<std::string> allow;

    app.add_option("-i,--interface", out.interfaces,
                   "Interface to watch (repeatable); default: the default-route interface")
        ->type_name("IF");
    const std::map<std::string, XdpMode> modes{
        {"auto", XdpMode::Auto}, {"native", XdpMode::Native}, {"generic", XdpMode::Generic}};
    std::string xdp_mode = to_string(out.xdp_mode);
    app.add_option("--xdp-mode", xdp_mode,
                   "XDP attach mode: native, generic, or auto (native, falling back to "
                   "generic with a warning)")
        ->check(CLI::IsMember({"auto", "native", "generic"}));
    app.add_option("--threshold", out.threshold,
                   "A source reaching more than this many distinct ports within the window "
                   "is a port scan")
        ->check(CLI::Range(1u, kMaxThreshold));
    app.add_option("--window", window,
                   "Port-scan window, sliding: ports seen in the previous WINDOW count "
                   "(e.g. 60s, 5m; at most 1d)")
        ->check(validator_from(
            [](const std::string& v, std::string* e) {
                auto d = parse_duration(v, e);
                if (d && (d->count() < 1 || *d > kMaxWindow)) {
                    *e = "window must be between 1s and 1d, not '" + v + "'";
                    return false;
                }
                return d.has_value();
            },
            "DURATION"));
    app.add_option("--block-duration", block_duration,
                   "How long a detected scanner stays blocked (e.g. 10m, 1h; 0 = until "
                   "removed)")
        ->check(validator_from([](const std::string& v, std::string* e) {
                    return parse_duration(v, e).has_value();
                },
                "DURATION"));
    app.add_flag("--monitor-only", out.monitor_only,
                 "Report port scans but never block");
    app.add_option("--allow", allow,
                   "Source prefix never blocked automatically (repeatable), e.g. "
                   "192.0.2.0/24, 2001:db8::/32")
        ->check(validator_from([](const std::string& v, std::string* e) {
                    return Cidr::parse(v, e).has_value();
                },
                "CIDR"));
    app.add_option("--allow-own-addresses", out.allow_own_addresses,
                   "Never block loopback and this host's own addresses (true/false)")
        ->default_str(out.allow_own_addresses ? "true" : "false");
    const std::map<std::string, LogTarget> targets{
        {"auto", LogTarget::Auto}, {"journal", LogTarget::Journal}, {"stdout", LogTarget::Stdout}};
    std::string log_target = to_string(out.log_target);
    app.add_option("--log-target", log_target,
                   "Where events go: auto (journald when run by systemd, else stdout), "
                   "journal, stdout")
        ->check(CLI::IsMember({"auto", "journal", "stdout"}));
    app.add_option("--max-blocks", out.max_blocks,
                   "Capacity of the blocklist; when full, a new automatic block is refused, "
                   "counted and logged")
        ->check(CLI::Range(1u, kMaxBlocksLimit));

    app.add_flag("--verbose", out.verbose,
                 "Show libbpf's messages, including the verifier's log when loading fails");

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "connwatchd: " << e.what() << "\n"
                  << "Run 'connwatchd --help' for the list of options.\n";
        return 2;
    }
    // Validated above; these conversions cannot fail.
    out.xdp_mode = modes.at(xdp_mode);
    out.log_target = targets.at(log_target);
    out.window = *parse_duration(window);
    out.block_duration = *parse_duration(block_duration);
    for (const auto& a : allow)
        out.allow.push_back(*Cidr::parse(a));
    return std::nullopt;
}

} // namespace connwatch
