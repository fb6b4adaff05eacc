// SPDX-License-Identifier: GPL-2.0-only
#include "config/options.h"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>

#include "base/clock.h"
#include "common/duration.h"
#include "metrics/metrics.h"

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

// An absolute path of at most max_len bytes (a Unix socket's is 107), or empty
// where that means "off".
CLI::Validator absolute_path(const std::string& key, std::size_t max_len, bool empty_ok)
{
    return validator_from(
        [=](const std::string& v, std::string* e) {
            if ((v.empty() && empty_ok) || (!v.empty() && v[0] == '/' && v.size() <= max_len))
                return true;
            *e = key + " must be an absolute path of at most " + std::to_string(max_len) +
                 " bytes" + (empty_ok ? ", or empty" : "");
            return false;
        },
        "");
}

// The config file named on the command line (--config F or --config=F), or
// the default.
std::string config_path(int argc, const char* const* argv, const std::string& default_config)
{
    std::string path = default_config;
    for (int i = 1; i < argc; i++) {
        std::string_view a = argv[i];
        if (a == "--config" && i + 1 < argc)
            path = argv[i + 1];
        else if (a.rfind("--config=", 0) == 0)
            path = std::string(a.substr(9));
    }
    return path;
}

bool on_command_line(int argc, const char* const* argv, const std::string& key)
{
    std::string flag = "--" + key;
    for (int i = 1; i < argc; i++) {
        std::string_view a = argv[i];
        if (a == flag || a.rfind(flag + "=", 0) == 0)
            return true;
    }
    return false;
}

// The line of `key = ...` (or a bare `key`) in an INI file, 0 if not found.
// Keys inside a [section] are seen by CLI11 as "section.key".
int line_of_key(const std::string& path, const std::string& key)
{
    std::ifstream in(path);
    std::string line, section;
    for (int n = 1; std::getline(in, line); n++) {
        auto b = line.find_first_not_of(" \t");
        if (b == std::string::npos || line[b] == '#' || line[b] == ';')
            continue;
        if (line[b] == '[') {
            auto e = line.find(']', b);
            section = line.substr(b + 1, e == std::string::npos ? e : e - b - 1);
            continue;
        }
        auto e = line.find_first_of(" \t=", b);
        std::string k = line.substr(b, e == std::string::npos ? e : e - b);
        if ((section.empty() ? k : section + "." + k) == key)
            return n;
    }
    return 0;
}

int line_of_section(const std::string& path)
{
    std::ifstream in(path);
    std::string line;
    for (int n = 1; std::getline(in, line); n++) {
        auto b = line.find_first_not_of(" \t");
        if (b != std::string::npos && line[b] == '[')
            return n;
    }
    return 0;
}

// CLI11 keeps one value of a key repeated in the file and says nothing. Only
// the list keys may repeat; anything else set twice is a mistake to point at.
std::string duplicate_key_error(const std::string& path)
{
    std::ifstream in(path);
    std::map<std::string, int> first;
    std::string line;
    for (int n = 1; std::getline(in, line); n++) {
        auto b = line.find_first_not_of(" \t");
        if (b == std::string::npos || line[b] == '#' || line[b] == ';' || line[b] == '[')
            continue;
        auto e = line.find_first_of(" \t=", b);
        std::string k = line.substr(b, e == std::string::npos ? e : e - b);
        if (k == "interface" || k == "allow")
            continue;
        auto [it, fresh] = first.emplace(k, n);
        if (!fresh)
            return path + ":" + std::to_string(n) + ": '" + k + "' is set again (first on line " +
                   std::to_string(it->second) + "); only interface and allow may repeat";
    }
    return "";
}

// Names the key a CLI11 error is about: the first "--key" in the message
// ("--threshold: Value 0 ...", "Could not convert: --monitor-only = perhaps"),
// or the KEY of "INI was not able to parse KEY".
std::string key_of_error(const std::string& what)
{
    const std::string ini = "INI was not able to parse ";
    if (auto p = what.find(ini); p != std::string::npos)
        return what.substr(p + ini.size());
    auto p = what.find("--");
    if (p == std::string::npos)
        return "";
    auto e = what.find_first_not_of("abcdefghijklmnopqrstuvwxyz-", p + 2);
    return what.substr(p + 2, e == std::string::npos ? e : e - p - 2);
}

} // namespace

cw_config kernel_config(const Options& o)
{
    auto ns = [](std::chrono::seconds s) { return static_cast<uint64_t>(s.count()) * kNsPerSec; };
    cw_config c{};
    c.window_ns = ns(o.window);
    c.block_ns = ns(o.block_duration);
    c.dedup_ns = ns(defaults::kDedupInterval);
    c.threshold = o.threshold;
    c.monitor_only = o.monitor_only ? 1 : 0;
    return c;
}

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

std::optional<int> parse_command_line(int argc, const char* const* argv, Options& out,
                                      const std::string& default_config, std::string* error)
{
    // One message per failure: to the caller, or to stderr with the hint.
    auto fail = [&](const std::string& msg, bool hint) {
        if (error) {
            *error = msg;
        } else {
            std::cerr << "connwatchd: " << msg << "\n";
            if (hint)
                std::cerr << "Run 'connwatchd --help' for the list of options; man "
                             "connwatchd.conf for the file.\n";
        }
        return 2;
    };
    CLI::App app{"connwatchd: report inbound TCP connection attempts, detect port scans and "
                 "block scanners in XDP",
                 "connwatchd"};
    app.set_version_flag("--version", CONNWATCH_VERSION);
    app.option_defaults()->always_capture_default()->multi_option_policy(
        CLI::MultiOptionPolicy::Throw);

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

    app.add_option("--metrics-listen", out.metrics_listen,
                   "Address of the Prometheus endpoint /metrics, HOST:PORT (IPv6 as "
                   "[::1]:9467); empty disables it")
        ->type_name("HOST:PORT")
        ->check(validator_from(
            [](const std::string& v, std::string* e) {
                *e = check_listen_address(v);
                return e->empty();
            },
            ""));
    app.add_option("--control-socket", out.control_socket,
                   "Unix socket connwatchctl talks to")
        ->type_name("PATH")
        ->check(absolute_path("control-socket", 107, false));
    app.add_option("--control-group", out.control_group,
                   "Group whose members may use the control socket (besides root); if it "
                   "does not exist, only root may")
        ->type_name("GROUP");
    app.add_option("--state-dir", out.state_dir,
                   "Where manual blocks and allow entries are kept across reboots")
        ->type_name("DIR")
        ->check(absolute_path("state-dir", 4096, false));
    app.add_option("--pin-dir", out.pin_dir,
                   "bpffs directory where the blocklists are pinned so that blocks survive a "
                   "restart (empty: not pinned)")
        ->type_name("DIR")
        ->check(absolute_path("pin-dir", 4096, true));
    app.add_flag("--verbose", out.verbose,
                 "Show libbpf's messages, including the verifier's log when loading fails");
    app.add_flag("--check-config", out.check_config,
                 "Validate the configuration and the command line, print the result, exit");
    app.set_config("--config", default_config,
                   "Configuration file (INI; every key is also a flag of the same name, "
                   "and the command line wins). A missing default file means defaults")
        ->type_name("FILE");
    app.allow_config_extras(false);

    // CLI11 reports an unreadable file only as "not readable (missing?)"; say why.
    std::string path = config_path(argc, argv, default_config);
    bool explicit_config = on_command_line(argc, argv, "config");
    if (std::ifstream probe(path); !probe && (explicit_config || errno != ENOENT))
        return fail("cannot read the configuration file " + path + ": " + std::strerror(errno),
                    false);

    if (auto dup = duplicate_key_error(path); !dup.empty())
        return fail(dup, false);

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        // Say where: the file and line when the bad key came from the file.
        std::string what = e.what();
        std::string key = key_of_error(what);
        int line = key.empty() ? 0 : line_of_key(path, key);
        if (line == 0 && what.rfind("INI was not able to parse", 0) == 0) {
            // CLI11 reads [section] headers as key prefixes it then cannot
            // match; connwatchd.conf has no sections.
            if (int l = line_of_section(path); l > 0) {
                line = l;
                key = "[section]";
                what = "sections are not used in this file: put every key at the top "
                       "level";
            }
        }
        std::string where;
        if (line > 0 && !on_command_line(argc, argv, key)) {
            where = path + ":" + std::to_string(line) + ": ";
            if (what.rfind("INI was not able to parse", 0) == 0 && key != "[section]")
                what = "unknown key '" + key + "'";
        }
        return fail(where + what, true);
    }
    out.config_file = path;
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
