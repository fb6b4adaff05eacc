// SPDX-License-Identifier: GPL-2.0-only
#include "config/options.h"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "common/duration.h"
#include "config/config_file.h"

namespace connwatch {

namespace {

// A CLI11 validator from one of our parse functions, so a bad value is
// reported by CLI11 with the option's name and our explanation.
template <typename Parse>
CLI::Validator validator_from(Parse parse, const std::string& name = "")
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
    return validator_from([=](const std::string& v, std::string* e) {
        if ((v.empty() && empty_ok) || (!v.empty() && v[0] == '/' && v.size() <= max_len))
            return true;
        *e = key + " must be an absolute path of at most " + std::to_string(max_len) + " bytes" +
             (empty_ok ? ", or empty" : "");
        return false;
    });
}

// Why path is not a readable PEM bundle with a certificate, or "". Read at
// load, so that a typo is a configuration error, not a failed pull later.
std::string pem_bundle_problem(const std::string& path)
{
    std::ifstream in(path);
    if (!in)
        return std::string("cannot be read: ") + std::strerror(errno);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad())
        return std::string("cannot be read: ") + std::strerror(errno);
    if (text.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
        return "holds no PEM certificate (-----BEGIN CERTIFICATE-----)";
    return "";
}

// The names of an enum's values, as written on the command line and in the
// file; to_string() and the option read the same table.
template <typename Enum>
using Names = std::initializer_list<std::pair<Enum, const char*>>;

const Names<XdpMode> kXdpModes{
    {XdpMode::Auto, "auto"}, {XdpMode::Native, "native"}, {XdpMode::Generic, "generic"}};
const Names<RpFilter> kRpFilters{{RpFilter::Auto, "auto"},
                                  {RpFilter::Strict, "strict"},
                                  {RpFilter::Loose, "loose"},
                                  {RpFilter::Off, "off"}};
const Names<LogTarget> kLogTargets{
    {LogTarget::Auto, "auto"}, {LogTarget::Journal, "journal"}, {LogTarget::Stdout, "stdout"}};

template <typename Enum>
const char* name_of(Names<Enum> names, Enum value)
{
    for (const auto& [v, name] : names)
        if (v == value)
            return name;
    return "?";
}

// An option whose value is one of `names`.
template <typename Enum>
CLI::Option* add_choice(CLI::App& app, const std::string& flag, Enum& target, Names<Enum> names,
                        const std::string& help)
{
    std::vector<std::string> accepted;
    for (const auto& [v, name] : names)
        accepted.push_back(name);
    return app
        .add_option_function<std::string>(
            flag,
            [&target, names](const std::string& value) {
                for (const auto& [v, name] : names)
                    if (value == name)
                        target = v;
            },
            help)
        ->default_str(name_of(names, target))
        ->check(CLI::IsMember(accepted));
}

// A duration option (parse_duration) of at least `min`, and at most `max`
// if given.
CLI::Option* add_duration(CLI::App& app, const std::string& key, std::chrono::seconds& target,
                          const std::string& help, std::chrono::seconds min = {},
                          std::optional<std::chrono::seconds> max = {})
{
    return app
        .add_option_function<std::string>(
            "--" + key, [&target](const std::string& v) { target = *parse_duration(v); }, help)
        ->default_str(format_duration(target))
        ->check(validator_from(
            [=](const std::string& v, std::string* e) {
                auto d = parse_duration(v, e);
                if (d && (*d < min || (max && *d > *max))) {
                    *e = key + " must be " +
                         (max ? "between " + format_duration(min) + " and " + format_duration(*max)
                              : "at least " + format_duration(min)) +
                         ", not '" + v + "'";
                    return false;
                }
                return d.has_value();
            },
            "DURATION"));
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
    c.drop_tiny_frags = o.drop_tiny_fragments ? 1 : 0;
    switch (o.rp_filter) {
    case RpFilter::Auto: c.rp_filter = CW_RP_IFACE; break;
    case RpFilter::Strict: c.rp_filter = CW_RP_STRICT; break;
    case RpFilter::Loose: c.rp_filter = CW_RP_LOOSE; break;
    case RpFilter::Off: c.rp_filter = CW_RP_OFF; break;
    }
    if (o.max_new_blocks_per_second) {
        c.block_every_ns = kNsPerSec / o.max_new_blocks_per_second;
        c.block_slack_ns = uint64_t{o.max_new_blocks_burst - 1} * c.block_every_ns;
    }
    c.ipv4_prefix = static_cast<uint8_t>(o.ipv4_prefix);
    c.ipv6_prefix = static_cast<uint8_t>(o.ipv6_prefix);
    if (o.escalation_window.count() > 0 && o.block_duration.count() > 0) {
        c.escalation_window_ns = ns(o.escalation_window);
        c.escalation_factor_milli = o.escalation_factor_milli;
        c.max_block_ns = ns(o.max_block_duration);
    }
    return c;
}

std::optional<uint32_t> parse_factor(const std::string& text, std::string* error)
{
    auto refuse = [&](const std::string& why) -> std::optional<uint32_t> {
        if (error)
            *error = "escalation-factor must be a number from 1 to 100 with at most three "
                     "decimals (e.g. 2, 1.5), not '" +
                     text + "'" + why;
        return std::nullopt;
    };
    uint64_t whole = 0, milli = 0;
    size_t i = 0, digits = 0;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9' && digits < 4; i++, digits++)
        whole = whole * 10 + static_cast<uint64_t>(text[i] - '0');
    if (digits == 0)
        return refuse("");
    if (i < text.size() && text[i] == '.') {
        size_t decimals = 0;
        for (i++; i < text.size() && text[i] >= '0' && text[i] <= '9'; i++, decimals++) {
            if (decimals == 3)
                return refuse(": at most three decimals");
            milli = milli * 10 + static_cast<uint64_t>(text[i] - '0');
        }
        if (decimals == 0)
            return refuse("");
        for (; decimals < 3; decimals++)
            milli *= 10;
    }
    if (i != text.size())
        return refuse("");
    uint64_t v = whole * 1000 + milli;
    if (v < kMinEscalationFactorMilli)
        return refuse(": below 1 a repeat offender's blocks would get shorter");
    if (v > kMaxEscalationFactorMilli)
        return refuse("");
    return static_cast<uint32_t>(v);
}

std::string format_factor(uint32_t milli)
{
    std::string s = std::to_string(milli / 1000);
    if (uint32_t frac = milli % 1000) {
        std::string f = std::to_string(frac + 1000).substr(1); // three digits
        while (f.back() == '0')
            f.pop_back();
        s += "." + f;
    }
    return s;
}

std::string escalation_conflict(const Options& o)
{
    if (o.escalation_window.count() == 0 || o.block_duration.count() == 0)
        return "";
    if (o.max_block_duration < o.block_duration)
        return "max-block-duration (" + format_duration(o.max_block_duration) +
               ") is shorter than block-duration (" + format_duration(o.block_duration) +
               "): with escalation on (escalation-window " + format_duration(o.escalation_window) +
               "), set max-block-duration to at least block-duration";
    return "";
}

std::string escalation_warning(const Options& o)
{
    if (o.escalation_window.count() == 0 || o.block_duration.count() == 0 ||
        o.monitor_only || o.max_new_blocks_per_second == 0)
        return "";
    // What a flood of spoofed sources, each scanned again as soon as its
    // block ends, could keep blocked at once: every token spent on a block
    // of max-block-duration.
    long double reach = static_cast<long double>(o.max_new_blocks_per_second) *
                            static_cast<long double>(o.max_block_duration.count()) +
                        o.max_new_blocks_burst;
    if (reach <= o.max_blocks / 2.0L)
        return "";
    return "Escalation is on: spoofed repeat scans at max-new-blocks-per-second (" +
           std::to_string(o.max_new_blocks_per_second) + ") with blocks of max-block-duration (" +
           format_duration(o.max_block_duration) + ") could fill more than half of max-blocks (" +
           std::to_string(o.max_blocks) +
           ") over time; lower max-block-duration or the rate, or raise max-blocks "
           "(docs/SECURITY.md, \"Repeat offenders\")";
}

const char* to_string(XdpMode m)
{
    return name_of(kXdpModes, m);
}

const char* to_string(RpFilter r)
{
    return name_of(kRpFilters, r);
}

const char* to_string(LogTarget t)
{
    return name_of(kLogTargets, t);
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

    // Filled while CLI11 parses; `out` only gets it whole and valid.
    Options o = out;

    app.add_option("-i,--interface", o.interfaces,
                   "Interface to watch (repeatable); default: the default-route interface")
        ->type_name("IF");
    add_choice(app, "--xdp-mode", o.xdp_mode, kXdpModes,
               "XDP attach mode: native, generic, or auto (native, falling back to "
               "generic with a warning)");
    app.add_option("--threshold", o.threshold,
                   "A source reaching more than this many distinct ports within the window "
                   "is a port scan")
        ->check(CLI::Range(1u, kMaxThreshold));
    add_duration(app, "window", o.window,
                 "Port-scan window, sliding: ports seen in the previous WINDOW count "
                 "(e.g. 60s, 5m; at most 1d)",
                 std::chrono::seconds{1}, kMaxWindow);
    add_duration(app, "block-duration", o.block_duration,
                 "How long a detected scanner stays blocked (e.g. 10m, 1h; 0 = until "
                 "removed)");
    app.add_flag("--monitor-only", o.monitor_only, "Report port scans but never block");
    std::vector<std::string> allow;
    app.add_option("--allow", allow,
                   "Source prefix never blocked automatically (repeatable), e.g. "
                   "192.0.2.0/24, 2001:db8::/32")
        ->check(validator_from(
            [](const std::string& v, std::string* e) { return Cidr::parse(v, e).has_value(); },
            "CIDR"));
    app.add_option("--allow-own-addresses", o.allow_own_addresses,
                   "Never block loopback and this host's own addresses (true/false)")
        ->default_str(o.allow_own_addresses ? "true" : "false");
    app.add_option("--drop-tiny-fragments", o.drop_tiny_fragments,
                   "Drop TCP fragments and IPv6 header chains that hide the TCP header "
                   "(RFC 1858, 3128, 7112); they count as probes either way (true/false)")
        ->default_str(o.drop_tiny_fragments ? "true" : "false");
    add_choice(app, "--rp-filter", o.rp_filter, kRpFilters,
               "Reverse-path check of a scanner's source before it is blocked: strict (the "
               "route back must leave by the interface the scan came in on), loose (some "
               "route back must exist), off; auto: each interface's rp_filter sysctl. A "
               "source that fails is reported as spoofed, never blocked");
    add_choice(app, "--log-target", o.log_target, kLogTargets,
               "Where events go: auto (journald when run by systemd, else stdout), "
               "journal, stdout");
    app.add_option("--max-blocks", o.max_blocks,
                   "Capacity of the blocklist; when full, a new automatic block is refused, "
                   "counted and logged")
        ->check(CLI::Range(1u, kMaxBlocksLimit));
    app.add_option("--max-cidr-blocks", o.max_cidr_blocks,
                   "Capacity of the CIDR blocklist (prefixes blocked with connwatchctl); when "
                   "full, a new prefix block is refused")
        ->check(CLI::Range(1u, kMaxCidrBlocksLimit));
    app.add_option("--max-new-blocks-per-second", o.max_new_blocks_per_second,
                   "At most this many automatic blocks per second (after a burst of "
                   "max-new-blocks-burst); beyond it scans are reported, not blocked; 0: no "
                   "bound")
        ->check(CLI::Range(0u, kMaxNewBlocksLimit));
    app.add_option("--max-new-blocks-burst", o.max_new_blocks_burst,
                   "How many automatic blocks may be made at once before "
                   "max-new-blocks-per-second applies")
        ->check(CLI::Range(1u, kMaxNewBlocksLimit));
    app.add_option("--ipv4-prefix", o.ipv4_prefix,
                   "Count and block IPv4 sources per prefix of this length (32: per address; "
                   "a prefix holding an allowlisted or own address stays per address)")
        ->check(CLI::Range(kMinIpv4Prefix, 32u));
    app.add_option("--ipv6-prefix", o.ipv6_prefix,
                   "Count and block IPv6 sources per prefix of this length: a scanner owns a "
                   "/64 and rotates addresses in it (128: per address; a prefix holding an "
                   "allowlisted or own address stays per address)")
        ->check(CLI::Range(kMinIpv6Prefix, 128u));

    add_duration(app, "escalation-window", o.escalation_window,
                 "Repeat offenders: a source blocked again within this long after its "
                 "previous automatic block ended gets escalation-factor times that block's "
                 "duration (0 = no escalation)");
    app.add_option_function<std::string>(
           "--escalation-factor",
           [&o](const std::string& v) { o.escalation_factor_milli = *parse_factor(v); },
           "Each repeat offence's block lasts this many times the previous one "
           "(1 to 100, e.g. 2 or 1.5), up to max-block-duration")
        ->default_str(format_factor(o.escalation_factor_milli))
        ->check(validator_from(
            [](const std::string& v, std::string* e) { return parse_factor(v, e).has_value(); },
            "FACTOR"));
    add_duration(app, "max-block-duration", o.max_block_duration,
                 "The longest an escalated block lasts (at least block-duration)",
                 std::chrono::seconds{1});

    app.add_option("--metrics-listen", o.metrics_listen,
                   "Address of the Prometheus endpoint /metrics, HOST:PORT (IPv6 as "
                   "[::1]:9467); empty disables it")
        ->type_name("HOST:PORT")
        ->check(validator_from([](const std::string& v, std::string* e) {
            *e = check_listen_address(v);
            return e->empty();
        }));
    app.add_option("--control-socket", o.control_socket, "Unix socket connwatchctl talks to")
        ->type_name("PATH")
        ->check(absolute_path("control-socket", 107, false));
    app.add_option("--control-group", o.control_group,
                   "Group whose members may use the control socket (besides root); if it "
                   "does not exist, only root may")
        ->type_name("GROUP");
    app.add_option("--state-dir", o.state_dir,
                   "Where manual blocks and allow entries are kept across reboots")
        ->type_name("DIR")
        ->check(absolute_path("state-dir", 4096, false));
    app.add_option("--pin-dir", o.pin_dir,
                   "bpffs directory where the blocklists are pinned so that blocks survive a "
                   "restart, and the links so that the program stays attached through a "
                   "crash or a restart (empty: not pinned)")
        ->type_name("DIR")
        ->check(absolute_path("pin-dir", 4096, true));
    app.add_option("--crowdsec-lapi-url", o.crowdsec_lapi_url,
                   "CrowdSec Local API whose ban decisions are mirrored into the blocklists, "
                   "e.g. http://127.0.0.1:8080/ (empty: no bouncer)")
        ->type_name("URL")
        ->check(validator_from([](const std::string& v, std::string* e) {
            if (v.empty() || v.rfind("http://", 0) == 0 || v.rfind("https://", 0) == 0)
                return true;
            *e = "crowdsec-lapi-url must start with http:// or https://, or be empty";
            return false;
        }));
    app.add_option("--crowdsec-bouncer-key-file", o.crowdsec_bouncer_key_file,
                   "File holding the key 'cscli bouncers add' printed (not readable by "
                   "every user)")
        ->type_name("FILE")
        ->check(absolute_path("crowdsec-bouncer-key-file", 4096, true));
    add_duration(app, "crowdsec-poll-interval", o.crowdsec_poll_interval,
                 "How often new and deleted decisions are pulled from the LAPI",
                 std::chrono::seconds{1}, std::chrono::seconds{3600});
    app.add_option("--crowdsec-machine-credentials-file", o.crowdsec_machine_credentials_file,
                   "The url/login/password file 'cscli machines add -f' wrote: each detected "
                   "scan is sent to that LAPI as an alert (empty: no alerts)")
        ->type_name("FILE")
        ->check(absolute_path("crowdsec-machine-credentials-file", 4096, true));
    app.add_option("--crowdsec-ca-file", o.crowdsec_ca_file,
                   "PEM bundle of the certificates that sign an https:// LAPI's certificate "
                   "(a private CA); empty: the system's store")
        ->type_name("FILE")
        ->check(absolute_path("crowdsec-ca-file", 4096, true))
        ->check(validator_from([](const std::string& v, std::string* e) {
            if (v.empty())
                return true;
            std::string why = pem_bundle_problem(v);
            if (why.empty())
                return true;
            *e = "crowdsec-ca-file " + v + ": " + why;
            return false;
        }));
    app.add_flag("--verbose", o.verbose,
                 "Show libbpf's messages, including the verifier's log when loading fails");
    // Not from the file (connwatchd(8)): there it would make the service exit
    // at every start.
    app.add_flag("--check-config", o.check_config,
                 "Validate the configuration and the command line, print the result, exit")
        ->configurable(false);
    app.add_flag("--detach", o.detach,
                 "Detach the program a connwatchd that did not stop cleanly left attached "
                 "(its links pinned in pin-dir), keep the blocklists, exit")
        ->configurable(false);

    auto file = std::make_shared<ConfigFile>(app);
    app.config_formatter(file);
    CLI::Option* config =
        app.set_config("--config", default_config,
                       "Configuration file (INI; every key is also a flag of the same name, "
                       "and the command line wins). A missing default file means defaults");
    // CLI11 checks the --config option right before it opens the file.
    config->type_name("FILE")->check(CLI::Validator(
        [f = file.get(), config](std::string& path) {
            f->check_file(path, config->count() > 0);
            return std::string();
        },
        ""));
    app.allow_config_extras(false);
    file->watch(app);

    // CLI11 (2.1 at least) reads `--key=` as `--key` alone and takes the next
    // argument as the value: `--metrics-listen= --threshold 5` set the endpoint
    // to "--threshold". `--key=` means an empty value (that is how the file
    // writes it, and what `metrics-listen`, `pin-dir` accept as "off"), so it is
    // handed to CLI11 as `--key ""`, which CLI11 reads as meant.
    std::vector<std::string> args;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a.size() > 3 && a.rfind("--", 0) == 0 && a.back() == '=' &&
            a.find('=') == a.size() - 1) {
            args.push_back(a.substr(0, a.size() - 1));
            args.emplace_back();
        } else {
            args.push_back(std::move(a));
        }
    }
    std::vector<const char*> split{argc > 0 ? argv[0] : "connwatchd"};
    for (const auto& a : args)
        split.push_back(a.c_str());

    try {
        app.parse(static_cast<int>(split.size()), split.data());
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const ConfigFileError& e) {
        return fail(e.what(), e.hint());
    } catch (const CLI::ParseError& e) {
        return fail(file->blame(e) + e.what(), true);
    }
    o.config_file = file->path();
    if (o.crowdsec_lapi_url.empty() != o.crowdsec_bouncer_key_file.empty())
        return fail(std::string(o.crowdsec_lapi_url.empty() ? "crowdsec-bouncer-key-file"
                                                            : "crowdsec-lapi-url") +
                        " is set but not " +
                        (o.crowdsec_lapi_url.empty() ? "crowdsec-lapi-url" : "crowdsec-bouncer-key-file") +
                        ": the bouncer needs both (or neither)",
                    true);
    if (auto conflict = escalation_conflict(o); !conflict.empty()) {
        // Named where it was set: the cap's line, else the duration's.
        std::string at = file->where("max-block-duration");
        if (at.empty())
            at = file->where("block-duration");
        if (at.empty())
            at = file->where("escalation-window");
        return fail(at + conflict, true);
    }
    for (const auto& a : allow)
        o.allow.push_back(*Cidr::parse(a)); // validated above
    out = std::move(o);
    return std::nullopt;
}

} // namespace connwatch
