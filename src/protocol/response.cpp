// SPDX-License-Identifier: GPL-2.0-only
// Responses on the wire. The keys are public interface (docs/CONTROL.md, scripts
// reading `connwatchctl --json`): never rename one.
#include "base/error.h"
#include "protocol/wire.h"

namespace connwatch::protocol {

namespace {

Cidr prefix_at(const nlohmann::json& j)
{
    auto text = j.at("prefix").get<std::string>();
    std::string err;
    if (auto c = Cidr::parse(text, &err))
        return *c;
    throw Error("invalid \"prefix\" in connwatchd's answer: " + err);
}

// A text of a closed vocabulary (origin, source) back into its enum.
template <class Enum, class From>
Enum word_at(const nlohmann::json& j, const char* key, From from)
{
    auto text = j.at(key).get<std::string>();
    if (auto v = from(text))
        return *v;
    throw Error("invalid \"" + std::string(key) + "\" in connwatchd's answer: '" + text + "'");
}

} // namespace

void to_json(nlohmann::json& j, const Interface& v)
{
    j = {{"name", v.name}, {"xdp_mode", v.xdp_mode}};
}

void from_json(const nlohmann::json& j, Interface& v)
{
    j.at("name").get_to(v.name);
    j.at("xdp_mode").get_to(v.xdp_mode);
}

// The CrowdSec link's two halves, their keys the fields' names (docs/CONTROL.md).
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CrowdsecStatus::Bouncer, lapi_url, last_pull, decisions,
                                   failing_since, failed_pulls)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CrowdsecStatus::Watcher, url, login, alerts_sent,
                                   alerts_queued, alerts_dropped, failing_since)

void to_json(nlohmann::json& j, const StatusResponse& v)
{
    // An object, not an array of pairs: {"syn": 12, ...} is what scripts index.
    nlohmann::json counters = nlohmann::json::object();
    for (const auto& [name, value] : v.counters)
        counters[name] = value;
    j = {{"version", v.version},
         {"pid", v.pid},
         {"interfaces", v.interfaces},
         {"missing_interfaces", v.missing_interfaces},
         {"threshold", v.threshold},
         {"window", v.window},
         {"block_duration", v.block_duration},
         {"monitor_only", v.monitor_only},
         {"max_blocks", v.max_blocks},
         {"blocks", v.blocks},
         {"allow", v.allow},
         {"counters", counters}};
    if (v.crowdsec) {
        nlohmann::json cs = nlohmann::json::object();
        if (v.crowdsec->bouncer)
            cs["bouncer"] = *v.crowdsec->bouncer;
        if (v.crowdsec->watcher)
            cs["watcher"] = *v.crowdsec->watcher;
        j["crowdsec"] = std::move(cs);
    }
    if (v.rp_filter) {
        // An object by interface name: {"eth0": "strict"} is what scripts index.
        nlohmann::json ifs = nlohmann::json::object();
        for (const auto& [name, mode] : v.rp_filter->interfaces)
            ifs[name] = mode;
        j["rp_filter"] = {{"mode", v.rp_filter->mode},
                          {"active", v.rp_filter->active},
                          {"interfaces", std::move(ifs)}};
    }
}

void from_json(const nlohmann::json& j, StatusResponse& v)
{
    j.at("version").get_to(v.version);
    j.at("pid").get_to(v.pid);
    j.at("interfaces").get_to(v.interfaces);
    v.missing_interfaces = j.value("missing_interfaces", std::vector<std::string>{});
    j.at("threshold").get_to(v.threshold);
    j.at("window").get_to(v.window);
    j.at("block_duration").get_to(v.block_duration);
    j.at("monitor_only").get_to(v.monitor_only);
    j.at("max_blocks").get_to(v.max_blocks);
    j.at("blocks").get_to(v.blocks);
    j.at("allow").get_to(v.allow);
    v.counters.clear();
    for (const auto& [name, value] : j.at("counters").items())
        v.counters.emplace_back(name, value.get<uint64_t>());
    v.crowdsec.reset();
    if (auto it = j.find("crowdsec"); it != j.end()) {
        CrowdsecStatus cs;
        if (auto b = it->find("bouncer"); b != it->end())
            cs.bouncer = b->get<CrowdsecStatus::Bouncer>();
        if (auto w = it->find("watcher"); w != it->end())
            cs.watcher = w->get<CrowdsecStatus::Watcher>();
        v.crowdsec = std::move(cs);
    }
    v.rp_filter.reset();
    if (auto it = j.find("rp_filter"); it != j.end()) {
        RpFilterStatus r;
        it->at("mode").get_to(r.mode);
        it->at("active").get_to(r.active);
        for (const auto& [name, mode] : it->at("interfaces").items())
            r.interfaces.emplace_back(name, mode.get<std::string>());
        v.rp_filter = std::move(r);
    }
}

void to_json(nlohmann::json& j, const BlockEntry& v)
{
    j = {{"prefix", v.prefix.str()},
         {"origin", std::string(to_string(v.origin))},
         {"reason", v.reason},
         {"created", v.created},
         {"expires", v.expires},
         {"expires_in", v.expires_in},
         {"offence", v.offence}};
}

void from_json(const nlohmann::json& j, BlockEntry& v)
{
    v.prefix = prefix_at(j);
    v.origin = word_at<BlockOrigin>(j, "origin", block_origin_from);
    j.at("reason").get_to(v.reason);
    j.at("created").get_to(v.created);
    j.at("expires").get_to(v.expires);
    j.at("expires_in").get_to(v.expires_in);
    v.offence = j.value("offence", 0u);
}

void to_json(nlohmann::json& j, const AllowEntry& v)
{
    j = {{"prefix", v.prefix.str()}, {"source", std::string(to_string(v.source))}};
}

void from_json(const nlohmann::json& j, AllowEntry& v)
{
    v.prefix = prefix_at(j);
    v.source = word_at<AllowSource>(j, "source", allow_source_from);
}

void to_json(nlohmann::json& j, const ListResponse& v)
{
    j = {{"blocks", v.blocks}, {"allow", v.allow}}; // an empty list is [], never null
}

void from_json(const nlohmann::json& j, ListResponse& v)
{
    j.at("blocks").get_to(v.blocks);
    j.at("allow").get_to(v.allow);
}

void to_json(nlohmann::json& j, const BlockResponse& v)
{
    j = {{"prefix", v.prefix.str()}, {"expires", v.expires}};
}

void from_json(const nlohmann::json& j, BlockResponse& v)
{
    v.prefix = prefix_at(j);
    j.at("expires").get_to(v.expires);
}

void to_json(nlohmann::json& j, const PrefixResponse& v)
{
    j = {{"prefix", v.prefix.str()}};
}

void from_json(const nlohmann::json& j, PrefixResponse& v)
{
    v.prefix = prefix_at(j);
}

void to_json(nlohmann::json& j, const FlushResponse& v)
{
    j = {{"removed", v.removed}};
}

void from_json(const nlohmann::json& j, FlushResponse& v)
{
    j.at("removed").get_to(v.removed);
}

void to_json(nlohmann::json& j, const ReloadResponse&)
{
    j = nlohmann::json::object();
}

void from_json(const nlohmann::json&, ReloadResponse&) {}

void to_json(nlohmann::json& j, const BulkRefusal& v)
{
    j = {{"index", v.index}, {"error", v.error}};
}

void from_json(const nlohmann::json& j, BulkRefusal& v)
{
    j.at("index").get_to(v.index);
    j.at("error").get_to(v.error);
}

void to_json(nlohmann::json& j, const BlockManyResponse& v)
{
    j = {{"added", v.added}, {"present", v.present}, {"refused", v.refused}};
}

void from_json(const nlohmann::json& j, BlockManyResponse& v)
{
    j.at("added").get_to(v.added);
    j.at("present").get_to(v.present);
    j.at("refused").get_to(v.refused);
}

void to_json(nlohmann::json& j, const UnblockManyResponse& v)
{
    j = {{"removed", v.removed}, {"absent", v.absent}};
}

void from_json(const nlohmann::json& j, UnblockManyResponse& v)
{
    j.at("removed").get_to(v.removed);
    j.at("absent").get_to(v.absent);
}

nlohmann::json error_response(const std::string& message)
{
    return {{"ok", false}, {"error", message}};
}

std::optional<Refusal> refusal_in(const nlohmann::json& j)
{
    if (!j.is_object())
        return Refusal{"unknown error"};
    if (auto ok = j.find("ok"); ok != j.end() && *ok == true)
        return std::nullopt;
    auto e = j.find("error");
    return Refusal{e != j.end() && e->is_string() ? e->get<std::string>() : "unknown error"};
}

} // namespace connwatch::protocol
