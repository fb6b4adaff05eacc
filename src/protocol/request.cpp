// SPDX-License-Identifier: GPL-2.0-only
// Requests on the wire: parsing (the daemon's side) and encoding (the client's).
#include <algorithm>

#include "common/duration.h"
#include "protocol/wire.h"

namespace connwatch::protocol {

namespace {

bool takes_prefix(Command c)
{
    return c == Command::Block || c == Command::Unblock || c == Command::Allow ||
           c == Command::Disallow;
}

std::string known_commands()
{
    std::string out;
    for (Command c : kCommands)
        out += (out.empty() ? "" : ", ") + std::string(to_string(c));
    return out;
}

} // namespace

std::variant<Request, std::string> parse_request(std::string_view line)
{
    // The texts below are what clients have always been told: scripts may match them.
    if (line.size() > kMaxRequestBytes)
        return "request too large (at most " + std::to_string(kMaxRequestBytes) + " bytes)";
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
        return std::string("malformed request: expected one JSON object");
    auto cmd = j.find("command");
    if (cmd == j.end() || !cmd->is_string())
        return std::string("malformed request: \"command\" (a string) is missing");
    const std::string name = cmd->get<std::string>();
    auto command = command_from(name);
    if (!command)
        return "unknown command '" + name + "' (known: " + known_commands() + ")";

    for (const auto& [key, value] : j.items()) {
        if (key != "command" && key != "prefix" && key != "duration" && key != "reason" &&
            key != "force" && key != "protocol")
            return "malformed request: unknown field \"" + key + "\"";
    }
    if (auto v = j.find("protocol"); v != j.end()) {
        if (!v->is_number_integer())
            return std::string("malformed request: \"protocol\" must be a whole number");
        // Versions are never negotiated down: a client that needs version N
        // must hear that this daemon does not speak it.
        auto n = v->get<int64_t>();
        if (n < 1 || n > kVersion)
            return "unsupported protocol version " + std::to_string(n) +
                   " (this connwatchd speaks " + std::to_string(kVersion) + ")";
    }
    std::optional<Cidr> prefix;
    if (auto p = j.find("prefix"); p != j.end()) {
        if (!takes_prefix(*command))
            return "'" + name + "' takes no prefix";
        if (!p->is_string())
            return std::string("malformed request: \"prefix\" must be a string");
        std::string err;
        prefix = Cidr::parse(p->get<std::string>(), &err);
        if (!prefix)
            return err;
    } else if (takes_prefix(*command)) {
        return "'" + name + "' needs an address or prefix";
    }
    std::optional<std::chrono::seconds> duration;
    if (auto d = j.find("duration"); d != j.end()) {
        if (*command != Command::Block)
            return "'" + name + "' takes no duration";
        if (!d->is_string())
            return std::string("malformed request: \"duration\" must be a string like \"1h\"");
        std::string err;
        duration = parse_duration(d->get<std::string>(), &err);
        if (!duration)
            return err;
    }
    std::string reason;
    if (auto t = j.find("reason"); t != j.end()) {
        if (*command != Command::Block)
            return "'" + name + "' takes no reason";
        if (!t->is_string())
            return std::string("malformed request: \"reason\" must be a string");
        reason = t->get<std::string>();
        // It ends up in journald fields and in classic log lines: one short line.
        if (reason.size() > 256)
            return std::string("reason too long (at most 256 bytes)");
        if (std::any_of(reason.begin(), reason.end(),
                        [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
            return std::string("reason must not contain control characters");
    }
    bool force = false;
    if (auto f = j.find("force"); f != j.end()) {
        if (*command != Command::Block)
            return "'" + name + "' takes no force";
        if (!f->is_boolean())
            return std::string("malformed request: \"force\" must be true or false");
        force = f->get<bool>();
    }
    return make_request(*command, prefix, duration, std::move(reason), force);
}

nlohmann::json request_json(const Request& r)
{
    nlohmann::json j{{"command", std::string(to_string(command_of(r)))}};
    std::visit(
        [&j](const auto& req) {
            using T = std::decay_t<decltype(req)>;
            if constexpr (requires { req.prefix; })
                j["prefix"] = req.prefix.str();
            if constexpr (std::is_same_v<T, BlockRequest>) {
                if (req.duration)
                    j["duration"] = format_duration(*req.duration);
                if (!req.reason.empty())
                    j["reason"] = req.reason;
                // Only when set: an older connwatchd refuses fields it does
                // not know, and must keep taking every ordinary block.
                if (req.force)
                    j["force"] = true;
            }
        },
        r);
    if (kVersion != 1)
        j["protocol"] = kVersion;
    return j;
}

} // namespace connwatch::protocol
