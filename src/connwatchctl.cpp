// SPDX-License-Identifier: GPL-2.0-only
// connwatchctl: talks to connwatchd over its control socket (docs/CONTROL.md).
// See man/connwatchctl.8. Exit codes: 0 done, 1 the daemon refused the request,
// 2 usage error, 3 connwatchd is not running, 4 permission denied.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "control/server.h"
#include "common/duration.h"
#include "common/format.h"

using namespace connwatch;

namespace {

enum Exit { kOk = 0, kRefused = 1, kUsage = 2, kNotRunning = 3, kDenied = 4 };

struct Failure {
    int code;
    std::string message;
};

// One request, one response line.
nlohmann::json ask_daemon(const std::string& path, const nlohmann::json& request)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof(addr.sun_path))
        throw Failure{kUsage, "socket path too long: " + path};
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd)
        throw Failure{kNotRunning, std::string("socket: ") + std::strerror(errno)};
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        int err = errno;
        if (err == EACCES || err == EPERM)
            throw Failure{kDenied, "permission denied on " + path +
                                       ": run as root or as a member of the connwatch group"};
        throw Failure{kNotRunning, "connwatchd is not running (" + path + ": " +
                                       std::strerror(err) +
                                       "); start it with 'systemctl start connwatchd'"};
    }
    std::string out = request.dump() + "\n";
    // The daemon may answer and close before reading a word (a refused peer):
    // then the send fails, and the answer is waiting to be read all the same.
    std::string send_error;
    if (send(fd.get(), out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size()))
        send_error = std::string("sending to connwatchd: ") + std::strerror(errno);
    std::string in;
    char buf[65536];
    for (;;) {
        // A reload re-reads the configuration and may attach interfaces: give
        // it time, but never hang forever on a stuck daemon.
        pollfd p{fd.get(), POLLIN, 0};
        if (poll(&p, 1, 30000) <= 0)
            throw Failure{kNotRunning, "connwatchd did not answer within 30 s"};
        ssize_t n = recv(fd.get(), buf, sizeof(buf), 0);
        if (n <= 0)
            break;
        in.append(buf, static_cast<size_t>(n));
        if (in.find('\n') != std::string::npos)
            break;
    }
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        throw Failure{kNotRunning,
                      send_error.empty() ? "connwatchd sent no valid answer" : send_error};
    return j;
}

std::string when(std::time_t t)
{
    return t ? format_timestamp(t) : "never";
}

void print_status(const nlohmann::json& j)
{
    std::printf("connwatchd %s, pid %d\n", j.value("version", "?").c_str(), j.value("pid", 0));
    std::string ifs;
    for (const auto& i : j["interfaces"])
        ifs += (ifs.empty() ? "" : ", ") + i.value("name", "?") + " (" +
               i.value("xdp_mode", "?") + ")";
    std::printf("Interfaces:  %s\n", ifs.c_str());
    std::printf("Scans:       more than %u ports within %s; %s\n", j.value("threshold", 0u),
                j.value("window", "?").c_str(),
                j.value("monitor_only", false)
                    ? "monitor-only, never blocking"
                    : ("blocking for " + j.value("block_duration", std::string("?"))).c_str());
    std::printf("Blocks:      %zu of at most %u\n", j.value("blocks", size_t{0}),
                j.value("max_blocks", 0u));
    std::printf("Allowlist:   %zu prefixes\n", j.value("allow", size_t{0}));
    std::printf("Counters:\n");
    for (const auto& [k, v] : j["counters"].items())
        std::printf("  %-20s %llu\n", k.c_str(), v.get<unsigned long long>());
}

void print_list(const nlohmann::json& j)
{
    const auto& blocks = j["blocks"];
    if (blocks.empty()) {
        std::printf("No blocks.\n");
    } else {
        std::printf("%-43s %-7s %-19s %s\n", "PREFIX", "ORIGIN", "EXPIRES", "REASON");
        for (const auto& b : blocks)
            std::printf("%-43s %-7s %-19s %s\n", b.value("prefix", "").c_str(),
                        b.value("origin", "").c_str(),
                        when(b.value("expires", std::time_t{0})).c_str(),
                        b.value("reason", "").c_str());
    }
    std::printf("\nAllowlist (never blocked automatically):\n");
    for (const auto& a : j["allow"])
        std::printf("  %-43s %s\n", a.value("prefix", "").c_str(), a.value("source", "").c_str());
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"connwatchctl: manage connwatchd's blocklist and allowlist", "connwatchctl"};
    app.set_version_flag("--version", CONNWATCH_VERSION);
    app.require_subcommand(1);
    std::string socket_path = kDefaultControlSocket;
    bool json = false;
    app.add_option("--socket", socket_path, "connwatchd's control socket")
        ->capture_default_str()
        ->type_name("PATH");
    app.add_flag("--json", json, "Print the daemon's answer as JSON, for scripts");

    Request req;
    std::string prefix, duration;
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
    block->add_option("--reason", req.reason, "Why, shown by list and logged");
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
    req.command = app.get_subcommands().front()->get_name();
    if (!prefix.empty())
        req.prefix = Cidr::parse(prefix);
    if (!duration.empty())
        req.duration = parse_duration(duration);

    try {
        auto resp = ask_daemon(socket_path, request_json(req));
        if (!resp.value("ok", false)) {
            std::string err = resp.value("error", std::string("unknown error"));
            if (json)
                std::printf("%s\n", resp.dump().c_str());
            else
                std::fprintf(stderr, "connwatchctl: %s\n", err.c_str());
            return err.rfind("permission denied", 0) == 0 ? kDenied : kRefused;
        }
        if (json) {
            std::printf("%s\n", resp.dump(2).c_str());
        } else if (req.command == "status") {
            print_status(resp);
        } else if (req.command == "list") {
            print_list(resp);
        } else if (req.command == "block") {
            std::printf("Blocked %s until %s\n", resp.value("prefix", "").c_str(),
                        resp.value("expires", std::time_t{0})
                            ? format_timestamp(resp.value("expires", std::time_t{0})).c_str()
                            : "removed");
        } else if (req.command == "flush") {
            std::printf("Removed %zu blocks\n", resp.value("removed", size_t{0}));
        } else if (req.prefix) {
            std::printf("%s %s: done\n", req.command.c_str(), resp.value("prefix", "").c_str());
        } else {
            std::printf("%s: done\n", req.command.c_str());
        }
        return kOk;
    } catch (const Failure& f) {
        std::fprintf(stderr, "connwatchctl: %s\n", f.message.c_str());
        return f.code;
    }
}
