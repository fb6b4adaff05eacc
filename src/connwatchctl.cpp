// SPDX-License-Identifier: GPL-2.0-only
// connwatchctl: talks to connwatchd over its control socket (docs/CONTROL.md).
// See man/connwatchctl.8. Exit codes: 0 done, 1 the daemon refused the request,
// 2 usage error, 3 connwatchd is not running, 4 permission denied.
#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <optional>
#include <string>

#include "common/duration.h"
#include "common/format.h"
#include "common/ssh_session.h"
#include "config/defaults.h"
#include "protocol/block_file.h"
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
    if (s.rp_filter)
        std::printf("Rp-filter:   %s\n", describe(*s.rp_filter).c_str());
    if (s.crowdsec) {
        const char* label = "CrowdSec:    ";
        if (const auto& b = s.crowdsec->bouncer) {
            std::printf("%sbouncer of %s: %llu decisions mirrored, last pull %s", label,
                        b->lapi_url.c_str(), static_cast<unsigned long long>(b->decisions),
                        when(b->last_pull).c_str());
            if (b->failing_since)
                std::printf("; failing since %s (%llu failed pulls)",
                            format_timestamp(b->failing_since).c_str(),
                            static_cast<unsigned long long>(b->failed_pulls));
            std::printf("\n");
            label = "             ";
        }
        if (const auto& w = s.crowdsec->watcher) {
            std::printf("%swatcher %s at %s: %llu alerts sent, %llu queued, %llu dropped", label,
                        w->login.c_str(), w->url.c_str(),
                        static_cast<unsigned long long>(w->alerts_sent),
                        static_cast<unsigned long long>(w->alerts_queued),
                        static_cast<unsigned long long>(w->alerts_dropped));
            if (w->failing_since)
                std::printf("; failing since %s", format_timestamp(w->failing_since).c_str());
            std::printf("\n");
        }
    }
    std::printf("Counters:\n");
    for (const auto& [name, value] : s.counters)
        std::printf("  %-20s %llu\n", name.c_str(), static_cast<unsigned long long>(value));
}

// Indents every line of text but the first by `by` spaces.
std::string indented(const std::string& text, size_t by)
{
    std::string out;
    for (char c : text) {
        out += c;
        if (c == '\n')
            out.append(by, ' ');
    }
    return out;
}

// `list`, printed as the answer arrives: connwatchctl holds one block at a
// time, whatever the length of the list. With --json the text is what
// dump(2) made of the whole answer before lists were streamed, byte for byte
// (the same document: scripts reading it need no change).
int list(const std::string& socket_path, const ListRequest& req, bool json)
{
    std::vector<AllowEntry> allow;
    std::vector<nlohmann::json> allow_json;
    size_t blocks = 0;
    bool opened = false; // --json: "{ "allow": [...], "blocks": [" is out
    auto open = [&] {
        if (opened)
            return;
        opened = true;
        nlohmann::json a = allow_json;
        std::printf("{\n  \"allow\": %s,\n  \"blocks\": [", indented(a.dump(2), 2).c_str());
    };
    auto on_allow = [&](const nlohmann::json& j) {
        if (json)
            allow_json.push_back(j);
        else
            allow.push_back(j.get<AllowEntry>());
    };
    auto on_block = [&](const nlohmann::json& j) {
        if (json) {
            open();
            std::printf("%s    %s", blocks ? ",\n" : "\n", indented(j.dump(2), 4).c_str());
        } else {
            auto b = j.get<BlockEntry>();
            // The columns scripts read since the first release; a repeat
            // offence is said after the reason, where nothing followed before.
            if (!blocks)
                std::printf("%-43s %-8s %-19s %s\n", "PREFIX", "ORIGIN", "EXPIRES", "REASON");
            std::string reason = b.reason;
            if (b.offence > 1)
                reason += (reason.empty() ? "" : " ") + std::string("(offence ") +
                          std::to_string(b.offence) + ")";
            std::printf("%-43s %-8s %-19s %s\n", b.prefix.str().c_str(),
                        std::string(to_string(b.origin)).c_str(), when(b.expires).c_str(),
                        reason.c_str());
        }
        blocks++;
    };
    auto answer = call_list(socket_path, req, on_allow, on_block);
    if (auto refusal = refusal_in(answer)) {
        if (json)
            std::printf("%s\n", answer.dump().c_str());
        else
            std::fprintf(stderr, "connwatchctl: %s\n", refusal->error.c_str());
        return refusal->error.rfind("permission denied", 0) == 0 ? kDenied : kRefused;
    }
    if (json) {
        open();
        std::printf("%s]", blocks ? "\n  " : "");
        for (const auto& [key, value] : answer.items())
            if (key != "allow" && key != "blocks")
                std::printf(",\n  \"%s\": %s", key.c_str(), indented(value.dump(2), 2).c_str());
        std::printf("\n}\n");
        return kOk;
    }
    if (!blocks)
        std::printf("No blocks.\n");
    std::printf("\nAllowlist (never blocked automatically):\n");
    for (const auto& a : allow)
        std::printf("  %-43s %s\n", a.prefix.str().c_str(),
                    std::string(to_string(a.source)).c_str());
    return kOk;
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
    case Command::List:
    case Command::BlockMany:
    case Command::UnblockMany: return; // printed as they come (list, apply_file)
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

// ---- block --file, unblock --file ------------------------------------------------------

// A request stays under the daemon's limit (kMaxRequestBytes) with room to
// spare: an entry's JSON is its texts plus at most this much
// ({"duration":"","prefix":"","reason":""}, and a comma).
constexpr size_t kEntryOverhead = 48;
constexpr size_t kBatchBytes = kMaxRequestBytes - 4096;

struct FileTotals {
    uint64_t done = 0;    // added, or removed
    uint64_t present = 0; // already blocked, or (unblock) not blocked
    uint64_t refused = 0; // lines refused: malformed, or by the daemon
    nlohmann::json refusals = nlohmann::json::array(); // --json: {"line","error"}
};

// The lines of `path` ("-": standard input), sent in batches as block-many or
// unblock-many requests. A line that does not parse, or that the daemon
// refuses, is said with its number; the others are applied.
int apply_file(const std::string& socket_path, const std::string& path, bool unblock,
               const std::optional<std::chrono::seconds>& duration, const std::string& reason,
               bool force, bool json)
{
    std::FILE* in = path == "-" ? stdin : std::fopen(path.c_str(), "r");
    if (!in) {
        std::fprintf(stderr, "connwatchctl: cannot read %s: %s\n", path.c_str(),
                     std::strerror(errno));
        return kUsage;
    }
    const std::string name = path == "-" ? "(standard input)" : path;
    FileTotals t;
    auto refuse = [&](uint64_t line, const std::string& why) {
        t.refused++;
        if (json)
            t.refusals.push_back({{"line", line}, {"error", why}});
        else
            std::fprintf(stderr, "connwatchctl: %s:%llu: %s\n", name.c_str(),
                         static_cast<unsigned long long>(line), why.c_str());
    };
    BlockManyRequest blocks;
    blocks.force = force;
    UnblockManyRequest unblocks;
    std::vector<uint64_t> lines; // the line of each entry in the batch
    size_t bytes = 0;
    const char* ssh = std::getenv("SSH_CONNECTION");

    // A batch is sent, and its answer read when the next batch is ready to
    // go: the daemon applies one while this parses the next. false (and the
    // exit code in rc) when the daemon refused a request as a whole, or could
    // not be asked.
    int rc = kOk;
    std::optional<PendingCall> pending;
    std::vector<uint64_t> pending_lines; // the line of each entry in the batch sent
    auto collect = [&]() -> bool {
        if (!pending)
            return true;
        auto answer = pending->wait();
        pending.reset();
        if (auto refusal = refusal_in(answer)) {
            std::fprintf(stderr, "connwatchctl: %s (lines %llu to %llu not applied)\n",
                         refusal->error.c_str(),
                         static_cast<unsigned long long>(pending_lines.front()),
                         static_cast<unsigned long long>(pending_lines.back()));
            rc = refusal->error.rfind("permission denied", 0) == 0 ? kDenied : kRefused;
            return false;
        }
        if (unblock) {
            auto r = answer.get<UnblockManyResponse>();
            t.done += r.removed;
            t.present += r.absent;
        } else {
            auto r = answer.get<BlockManyResponse>();
            t.done += r.added;
            t.present += r.present;
            for (const auto& x : r.refused)
                refuse(x.index < pending_lines.size() ? pending_lines[x.index] : 0, x.error);
        }
        return true;
    };
    auto flush = [&]() -> bool {
        if (lines.empty())
            return collect();
        Request req = unblock ? Request(std::move(unblocks)) : Request(std::move(blocks));
        if (!collect())
            return false;
        pending.emplace(socket_path, req);
        pending_lines.swap(lines);
        // The lists back, emptied but with their room: a new one a batch
        // made malloc give its heap's top back and fault it in again (a
        // third of connwatchctl's CPU time, in the kernel).
        if (unblock) {
            unblocks = std::move(std::get<UnblockManyRequest>(req));
            unblocks.prefixes.clear();
        } else {
            blocks = std::move(std::get<BlockManyRequest>(req));
            blocks.entries.clear();
        }
        lines.clear();
        bytes = 0;
        return true;
    };

    char* buf = nullptr;
    size_t cap = 0;
    uint64_t number = 0;
    bool ok = true;
    for (ssize_t n; ok && (n = getline(&buf, &cap, in)) >= 0;) {
        number++;
        auto parsed = parse_block_line(std::string_view(buf, static_cast<size_t>(n)));
        if (auto* why = std::get_if<std::string>(&parsed)) {
            refuse(number, *why);
            continue;
        }
        auto* e = std::get_if<BulkBlock>(&parsed);
        if (!e)
            continue;
        bytes += kEntryOverhead + e->prefix.str().size();
        if (unblock) {
            unblocks.prefixes.push_back(e->prefix);
        } else {
            if (!e->duration)
                e->duration = duration;
            if (e->reason.empty())
                e->reason = reason;
            // The client's own refusal, as for one block: only it knows the session.
            if (!force) {
                if (auto why = ssh_session_conflict(e->prefix, ssh); !why.empty()) {
                    refuse(number, why);
                    continue;
                }
            }
            // Escaped quotes and backslashes at worst; the duration as text.
            bytes += 2 * e->reason.size() + (e->duration ? format_duration(*e->duration).size() : 0);
            blocks.entries.push_back(std::move(*e));
        }
        lines.push_back(number);
        if (lines.size() >= kMaxBulkEntries || bytes >= kBatchBytes)
            ok = flush();
    }
    std::free(buf);
    bool read_error = std::ferror(in);
    if (in != stdin)
        std::fclose(in);
    if (ok)
        ok = flush();
    if (ok)
        ok = collect();
    if (read_error) {
        std::fprintf(stderr, "connwatchctl: reading %s failed after line %llu\n", name.c_str(),
                     static_cast<unsigned long long>(number));
        rc = rc == kOk ? kRefused : rc;
    }
    if (rc == kOk && t.refused)
        rc = kRefused;
    if (json) {
        nlohmann::json j{{unblock ? "removed" : "added", t.done},
                         {unblock ? "absent" : "present", t.present},
                         {"refused", t.refusals},
                         {"ok", rc == kOk}};
        std::printf("%s\n", j.dump(2).c_str());
    } else if (unblock) {
        std::printf("Removed %llu blocks; %llu were not blocked; %llu lines refused\n",
                    static_cast<unsigned long long>(t.done),
                    static_cast<unsigned long long>(t.present),
                    static_cast<unsigned long long>(t.refused));
    } else {
        std::printf("Added %llu blocks; %llu already present; %llu lines refused\n",
                    static_cast<unsigned long long>(t.done),
                    static_cast<unsigned long long>(t.present),
                    static_cast<unsigned long long>(t.refused));
    }
    return rc;
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
    auto* list_cmd = app.add_subcommand("list", "List the blocks (prefix blocks by address, then "
                                                "addresses) and the allowlist");
    std::string origin, match;
    uint64_t limit = 0;
    list_cmd->add_option("--origin", origin, "Only blocks of this origin")
        ->check(CLI::IsMember({"scan", "manual", "crowdsec"}))
        ->type_name("ORIGIN");
    list_cmd->add_option("--match", match, "Only blocks that overlap this prefix: inside it, or "
                                           "covering it")
        ->check(prefix_check);
    auto* limit_opt = list_cmd->add_option("--limit", limit, "At most this many blocks")
                          ->type_name("N");
    std::string file;
    auto* block = app.add_subcommand("block", "Block a source address or prefix, or those "
                                              "listed in a file");
    auto* block_prefix = block->add_option("prefix", prefix, "Address or prefix to block")
                             ->check(prefix_check);
    block->add_option("--file", file, "Block every address or prefix listed in FILE (- for "
                                      "standard input), one a line, with an optional duration "
                                      "and reason")
        ->excludes(block_prefix)
        ->type_name("FILE");
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
    auto* unblock = app.add_subcommand("unblock", "Remove a block, or those listed in a file");
    auto* unblock_prefix = unblock->add_option("prefix", prefix, "Address or prefix, as listed")
                               ->check(prefix_check);
    unblock->add_option("--file", file, "Remove the block of every address or prefix listed in "
                                        "FILE (- for standard input), one a line")
        ->excludes(unblock_prefix)
        ->type_name("FILE");
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
    auto* sub = app.get_subcommands().front();
    if ((sub == block || sub == unblock) && file.empty() && prefix.empty()) {
        std::cerr << "connwatchctl: " << sub->get_name()
                  << " needs an address or prefix, or --file FILE\nRun 'connwatchctl --help'.\n";
        return kUsage;
    }
    try {
        if (!file.empty())
            return apply_file(socket_path, file, sub == unblock,
                              duration.empty() ? std::nullopt : parse_duration(duration), reason,
                              force, json);
        if (sub == list_cmd) {
            ListRequest lr;
            if (!origin.empty())
                lr.origin = block_origin_from(origin);
            if (!match.empty())
                lr.match = Cidr::parse(match);
            if (limit_opt->count())
                lr.limit = limit;
            return list(socket_path, lr, json);
        }
    } catch (const CallError& e) {
        std::fprintf(stderr, "connwatchctl: %s\n", e.what());
        return exit_code(e.kind());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "connwatchctl: connwatchd's answer is not one this connwatchctl "
                             "understands (%s)\n", e.what());
        return kNotRunning;
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
