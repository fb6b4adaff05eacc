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

namespace {

// Each check returns an error text, empty when the value is good.
std::string duration_of(const nlohmann::json& d, std::optional<std::chrono::seconds>& out)
{
    if (!d.is_string())
        return "malformed request: \"duration\" must be a string like \"1h\"";
    std::string err;
    out = parse_duration(d.get<std::string>(), &err);
    return out ? "" : err;
}

std::string reason_of(const nlohmann::json& t, std::string& out)
{
    if (!t.is_string())
        return "malformed request: \"reason\" must be a string";
    out = t.get<std::string>();
    // It ends up in journald fields and in classic log lines: one short line.
    if (out.size() > 256)
        return "reason too long (at most 256 bytes)";
    if (std::any_of(out.begin(), out.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
        return "reason must not contain control characters";
    return "";
}

std::string prefix_of(const nlohmann::json& p, Cidr& out)
{
    if (!p.is_string())
        return "malformed request: \"prefix\" must be a string";
    std::string err;
    auto c = Cidr::parse(p.get<std::string>(), &err);
    if (!c)
        return err;
    out = *c;
    return "";
}

// The fields a command takes besides "command" and "protocol".
bool takes_field(Command c, std::string_view key)
{
    switch (c) {
    case Command::Block: return key == "prefix" || key == "duration" || key == "reason" || key == "force";
    case Command::Unblock:
    case Command::Allow:
    case Command::Disallow: return key == "prefix";
    case Command::List: return key == "origin" || key == "match" || key == "limit";
    case Command::BlockMany: return key == "entries" || key == "force";
    case Command::UnblockMany: return key == "prefixes";
    default: return false;
    }
}

const char* kKnownFields[] = {"command", "prefix", "duration", "reason", "force", "protocol",
                              "origin",  "match",  "limit",    "entries", "prefixes"};

std::variant<Request, std::string> parse_list(const nlohmann::json& j)
{
    ListRequest r;
    if (auto o = j.find("origin"); o != j.end()) {
        if (!o->is_string())
            return std::string("malformed request: \"origin\" must be a string");
        r.origin = block_origin_from(o->get<std::string>());
        if (!r.origin)
            return "unknown origin '" + o->get<std::string>() + "' (known: scan, manual, crowdsec)";
    }
    if (auto m = j.find("match"); m != j.end()) {
        Cidr c;
        if (auto err = prefix_of(*m, c); !err.empty())
            return err == "malformed request: \"prefix\" must be a string"
                       ? "malformed request: \"match\" must be a string"
                       : err;
        r.match = c;
    }
    if (auto l = j.find("limit"); l != j.end()) {
        if (!l->is_number_integer() || (l->is_number_integer() && !l->is_number_unsigned() &&
                                        l->get<int64_t>() < 0))
            return std::string("malformed request: \"limit\" must be a whole number, 0 or more");
        r.limit = l->get<uint64_t>();
    }
    return r;
}

std::string force_of(const nlohmann::json& j, bool& force)
{
    if (auto f = j.find("force"); f != j.end()) {
        if (!f->is_boolean())
            return "malformed request: \"force\" must be true or false";
        force = f->get<bool>();
    }
    return "";
}

std::variant<Request, std::string> parse_block_many(const nlohmann::json& j)
{
    BlockManyRequest r;
    if (auto err = force_of(j, r.force); !err.empty())
        return err;
    auto e = j.find("entries");
    if (e == j.end() || !e->is_array())
        return std::string("malformed request: 'block-many' needs \"entries\", a list");
    if (e->size() > kMaxBulkEntries)
        return "too many entries in one request (at most " + std::to_string(kMaxBulkEntries) +
               "): send them in several";
    r.entries.reserve(e->size());
    for (std::size_t i = 0; i < e->size(); i++) {
        const auto& x = (*e)[i];
        auto at = [i](const std::string& why) {
            return "entries[" + std::to_string(i) + "]: " + why;
        };
        if (!x.is_object())
            return at("malformed request: an entry must be an object");
        BulkBlock b;
        for (const auto& [key, value] : x.items())
            if (key != "prefix" && key != "duration" && key != "reason")
                return at("malformed request: unknown field \"" + key + "\"");
        auto p = x.find("prefix");
        if (p == x.end())
            return at("an entry needs an address or prefix");
        if (auto err = prefix_of(*p, b.prefix); !err.empty())
            return at(err);
        if (auto d = x.find("duration"); d != x.end())
            if (auto err = duration_of(*d, b.duration); !err.empty())
                return at(err);
        if (auto t = x.find("reason"); t != x.end())
            if (auto err = reason_of(*t, b.reason); !err.empty())
                return at(err);
        r.entries.push_back(std::move(b));
    }
    return r;
}

std::variant<Request, std::string> parse_unblock_many(const nlohmann::json& j)
{
    UnblockManyRequest r;
    auto e = j.find("prefixes");
    if (e == j.end() || !e->is_array())
        return std::string("malformed request: 'unblock-many' needs \"prefixes\", a list");
    if (e->size() > kMaxBulkEntries)
        return "too many prefixes in one request (at most " + std::to_string(kMaxBulkEntries) +
               "): send them in several";
    r.prefixes.reserve(e->size());
    for (std::size_t i = 0; i < e->size(); i++) {
        Cidr c;
        if (auto err = prefix_of((*e)[i], c); !err.empty())
            return "prefixes[" + std::to_string(i) + "]: " + err;
        r.prefixes.push_back(c);
    }
    return r;
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
        if (std::find(std::begin(kKnownFields), std::end(kKnownFields), key) ==
            std::end(kKnownFields))
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
    // A field another command takes: refused as it always was ("'list' takes
    // no prefix"), one word per field.
    for (const char* key : kKnownFields) {
        if (!j.contains(key) || std::string_view(key) == "command" ||
            std::string_view(key) == "protocol" || takes_field(*command, key))
            continue;
        return "'" + name + "' takes no " + key;
    }
    switch (*command) {
    case Command::List: return parse_list(j);
    case Command::BlockMany: return parse_block_many(j);
    case Command::UnblockMany: return parse_unblock_many(j);
    default: break;
    }
    std::optional<Cidr> prefix;
    if (auto p = j.find("prefix"); p != j.end()) {
        Cidr c;
        if (auto err = prefix_of(*p, c); !err.empty())
            return err;
        prefix = c;
    } else if (takes_prefix(*command)) {
        return "'" + name + "' needs an address or prefix";
    }
    std::optional<std::chrono::seconds> duration;
    if (auto d = j.find("duration"); d != j.end())
        if (auto err = duration_of(*d, duration); !err.empty())
            return err;
    std::string reason;
    if (auto t = j.find("reason"); t != j.end())
        if (auto err = reason_of(*t, reason); !err.empty())
            return err;
    bool force = false;
    if (auto err = force_of(j, force); !err.empty())
        return err;
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
            if constexpr (std::is_same_v<T, ListRequest>) {
                if (req.origin)
                    j["origin"] = std::string(to_string(*req.origin));
                if (req.match)
                    j["match"] = req.match->str();
                if (req.limit)
                    j["limit"] = *req.limit;
            }
            if constexpr (std::is_same_v<T, BlockManyRequest>) {
                j["entries"] = nlohmann::json::array();
                for (const auto& e : req.entries) {
                    nlohmann::json x{{"prefix", e.prefix.str()}};
                    if (e.duration)
                        x["duration"] = format_duration(*e.duration);
                    if (!e.reason.empty())
                        x["reason"] = e.reason;
                    j["entries"].push_back(std::move(x));
                }
                if (req.force)
                    j["force"] = true;
            }
            if constexpr (std::is_same_v<T, UnblockManyRequest>) {
                j["prefixes"] = nlohmann::json::array();
                for (const auto& p : req.prefixes)
                    j["prefixes"].push_back(p.str());
            }
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

namespace {

// A JSON string as dump() writes it: printable ASCII without '"' or '\\'
// as it is, anything else through the library.
void append_string(std::string& out, std::string_view s)
{
    bool plain = std::all_of(s.begin(), s.end(), [](char ch) {
        auto c = static_cast<unsigned char>(ch);
        return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
    });
    if (plain) {
        out += '"';
        out += s;
        out += '"';
    } else {
        out += nlohmann::json(std::string(s)).dump(-1, ' ', false,
                                                   nlohmann::json::error_handler_t::replace);
    }
}

} // namespace

std::string request_line(const Request& r)
{
    std::string out;
    if (const auto* b = std::get_if<BlockManyRequest>(&r)) {
        out.reserve(64 + 64 * b->entries.size());
        out += "{\"command\":\"block-many\",\"entries\":[";
        for (size_t i = 0; i < b->entries.size(); i++) {
            const auto& e = b->entries[i];
            out += i ? ",{" : "{";
            if (e.duration) {
                out += "\"duration\":";
                append_string(out, format_duration(*e.duration));
                out += ',';
            }
            out += "\"prefix\":";
            append_string(out, e.prefix.str());
            if (!e.reason.empty()) {
                out += ",\"reason\":";
                append_string(out, e.reason);
            }
            out += '}';
        }
        out += ']';
        if (b->force)
            out += ",\"force\":true";
    } else if (const auto* u = std::get_if<UnblockManyRequest>(&r)) {
        out.reserve(64 + 24 * u->prefixes.size());
        out += "{\"command\":\"unblock-many\",\"prefixes\":[";
        for (size_t i = 0; i < u->prefixes.size(); i++) {
            if (i)
                out += ',';
            append_string(out, u->prefixes[i].str());
        }
        out += ']';
    } else {
        return request_json(r).dump() + "\n";
    }
    if (kVersion != 1)
        out += ",\"protocol\":" + std::to_string(kVersion);
    out += "}\n";
    return out;
}

} // namespace connwatch::protocol
