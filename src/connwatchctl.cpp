// SPDX-License-Identifier: GPL-2.0-only
// connwatchctl: talks to connwatchd over its control socket (docs/CONTROL.md).
// See man/connwatchctl.8. Exit codes: 0 done, 1 the daemon refused the request,
// 2 usage error, 3 connwatchd is not running, 4 permission denied.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <string>

#include "common/duration.h"
#include "common/format.h"
#include "common/ssh_session.h"
#include "config/defaults.h"
#include "protocol/client.h"
#include "protocol/wire.h"

using namespace connwatch;
using namespace connwatch::protocol;

namespace {

enum Exit { kOk = 0, kRefused = 1, kUsage = 2, kNotRunning = 3, kDenied = 4 };

int exit_code(CallError::Kind k)
{
    switch (k) {
    case CallError::Kind::BadSocketPath: return kUsage;
    case CallError::Kind::Denied: return kDenied;
    case CallError::Kind::NotRunning: return kNotRunning;
    }
    return kNotRunning;
}

std::string when(std::time_t t)
{
    return t ? format_timestamp(t) : "never";
}

void print(const StatusResponse& s)
{
    std::printf("connwatchd %s, pid %lld\n", s.version.c_str(), static_cast<long long>(s.pid));
    std::string ifs;
    for (const auto& i : s.interfaces)
        ifs += (ifs.empty() ? "" : ", ") + i.name + " (" + i.xdp_mode + ")";
    for (const auto& name : s.missing_interfaces)
        ifs += (ifs.empty() ? "" : ", ") + name + " (missing: not watched until it is back)";
    std::printf("Interfaces:  %s\n", ifs.c_str());
    std::printf("Scans:       more than %u ports within %s; %s\n", s.threshold, s.window.c_str(),
                s.monitor_only ? "monitor-only, never blocking"
                               : ("blocking for " + s.block_duration).c_str());
    std::printf("Blocks:      %llu of at most %u\n", static_cast<unsigned long long>(s.blocks),
                s.max_blocks);
    std::printf("Allowlist:   %llu prefixes\n", static_cast<unsigned long long>(s.allow));
    std::printf("Counters:\n");
    for (const auto& [name, value] : s.counters)
        std::printf("  %-20s %llu\n", name.c_str(), static_cast<unsigned long long>(value));
}

void print(const ListResponse& l)
{
    if (l.blocks.empty()) {
        std::printf("No blocks.\n");
    } else {
        std::printf("%-43s %-7s %-19s %s\n", "PREFIX", "ORIGIN", "EXPIRES", "REASON");
        for (const auto& b : l.blocks)
            std::printf("%-43s %-7s %-19s %s\n", b.prefix.str().c_str(),
                        std::string(to_string(b.origin)).c_str(), when(b.expires).c_str(),
                        b.reason.c_str());
    }
    std::printf("\nAllowlist (never blocked automatically):\n");
    for (const auto& a : l.allow)
        std::printf("  %-43s %s\n", a.prefix.str().c_str(),
                    std::string(to_string(a.source)).c_str());
}

void print(const BlockResponse& b)
{
    std::printf("Blocked %s until %s\n", b.prefix.str().c_str(),
                b.expires ? format_timestamp(b.expires).c_str() : "removed");
}

void print(const FlushResponse& f)
{
    std::printf("Removed %llu blocks\n", static_cast<unsigned long long>(f.removed));
}

// A successful answer, read as the command's response type (which throws when
// it is not one), printed for a person.
void print_answer(const Request& req, const nlohmann::json& answer)
{
    Command c = command_of(req);
    std::string name(to_string(c));
    switch (c) {
    case Command::Status: return print(answer.get<StatusResponse>());
    case Command::List: return print(answer.get<ListResponse>());
    case Command::Block: return print(answer.get<BlockResponse>());
    case Command::Flush: return print(answer.get<FlushResponse>());
    case Command::Unblock:
    case Command::Allow:
    case Command::Disallow:
        std::printf("%s %s: done\n", name.c_str(),
                    answer.get<PrefixResponse>().prefix.str().c_str());
        return;
    case Command::Reload:
        answer.get<ReloadResponse>();
        std::printf("%s: done\n", name.c_str());
        return;
    }
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"connwatchctl: manage connwatchd's blocklist and allowlist", "connwatchctl"};
    app.set_version_flag("--version", CONNWATCH_VERSION);
    app.require_subcommand(1);
    std::string socket_path = defaults::kControlSocket;
    bool json = false;
    app.add_option("--socket", socket_path, "connwatchd's control socket")
        ->capture_default_str()
        ->type_name("PATH");
    app.add_flag("--json", json, "Print the daemon's answer as JSON, for scripts");

    std::string prefix, duration, reason;
    auto prefix_check = CLI::Validator(
        [](std::string& v) {
            std::string err;
            return Cidr::parse(v, &err) ? std::string() : err;
        },
        "ADDR[/LEN]");

    app.add_subcommand("status", "Show what connwatchd watches, its settings and counters");
    app.add_subcommand("list", "List the blocks, soonest expiry first, and the allowlist");
    auto* block = app.add_subcommand("block", "Block a source address or prefix");
    block->add_option("prefix", prefix, "Address or prefix to block")->required()->check(
        prefix_check);
    block->add_option("--duration", duration, "How long (e.g. 10m, 1h, 2d; 0 = until removed); "
                                               "default: until removed")
        ->check(CLI::Validator(
            [](std::string& v) {
                std::string err;
                return parse_duration(v, &err) ? std::string() : err;
            },
            "DURATION"));
    block->add_option("--reason", reason, "Why, shown by list and logged");
    bool force = false;
    block->add_flag("--force", force,
                    "Block even a prefix wider than /8 (IPv4) or /16 (IPv6), one that covers an "
                    "address of this host, or one that covers this ssh session's client");
    app.add_subcommand("unblock", "Remove a block")
        ->add_option("prefix", prefix, "Address or prefix, as listed")
        ->required()
        ->check(prefix_check);
    app.add_subcommand("allow", "Never block this prefix automatically; lifts blocks it covers")
        ->add_option("prefix", prefix, "Address or prefix")
        ->required()
        ->check(prefix_check);
    app.add_subcommand("disallow", "Remove a prefix added with allow")
        ->add_option("prefix", prefix, "Address or prefix")
        ->required()
        ->check(prefix_check);
    app.add_subcommand("flush", "Remove every block");
    app.add_subcommand("reload", "Re-read the configuration; fails with the reason if it is "
                                 "invalid (the running one is kept)");
    // --json is accepted after the subcommand too ("connwatchctl list --json").
    for (auto* sub : app.get_subcommands([](CLI::App*) { return true; }))
        sub->add_flag("--json", json, "Print the daemon's answer as JSON");

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "connwatchctl: " << e.what() << "\nRun 'connwatchctl --help'.\n";
        return kUsage;
    }
    // CLI11 has validated every argument: these parse.
    Request req = make_request(*command_from(app.get_subcommands().front()->get_name()),
                               prefix.empty() ? std::nullopt : Cidr::parse(prefix),
                               duration.empty() ? std::nullopt : parse_duration(duration),
                               reason, force);

    // The one refusal that is the client's own: only it knows the session.
    if (auto* b = std::get_if<BlockRequest>(&req); b && !force) {
        if (auto why = ssh_session_conflict(b->prefix, std::getenv("SSH_CONNECTION"));
            !why.empty()) {
            if (json)
                std::printf("%s\n", error_response(why).dump().c_str());
            else
                std::fprintf(stderr, "connwatchctl: %s\n", why.c_str());
            return kRefused;
        }
    }

    try {
        auto answer = call(socket_path, req);
        if (auto refusal = refusal_in(answer)) {
            if (json)
                std::printf("%s\n", answer.dump().c_str());
            else
                std::fprintf(stderr, "connwatchctl: %s\n", refusal->error.c_str());
            return refusal->error.rfind("permission denied", 0) == 0 ? kDenied : kRefused;
        }
        // --json prints the answer as it came (docs/CONTROL.md promises that).
        if (json)
            std::printf("%s\n", answer.dump(2).c_str());
        else
            print_answer(req, answer);
        return kOk;
    } catch (const CallError& e) {
        std::fprintf(stderr, "connwatchctl: %s\n", e.what());
        return exit_code(e.kind());
    } catch (const std::exception& e) {
        // A field missing or invalid: a connwatchd of another version, or not one.
        std::fprintf(stderr, "connwatchctl: connwatchd's answer is not one this connwatchctl "
                             "understands (%s)\n", e.what());
        return kNotRunning;
    }
}
