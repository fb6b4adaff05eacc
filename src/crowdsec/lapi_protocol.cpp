// SPDX-License-Identifier: GPL-2.0-only
#include "crowdsec/lapi_protocol.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <set>
#include <stdexcept>

#include "base/unique_fd.h"
#include "common/format.h"

namespace connwatch::crowdsec {

namespace {

using Json = nlohmann::json;

std::string lower(std::string_view s)
{
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string rfc3339(std::time_t t)
{
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// A string member, or "" when absent or not a string.
std::string text_of(const Json& o, const char* key)
{
    auto it = o.find(key);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

constexpr size_t kMaxProblems = 5;

// Reads one decision of "new" (in_deleted false) or "deleted". nullopt when it
// is not one connwatch acts on (counted in `ignored`) or cannot be read
// (counted in `bad`, described in `problems`).
std::optional<Decision> decode_decision(const Json& j, bool in_deleted, StreamBatch& b)
{
    auto bad = [&](const std::string& why) -> std::optional<Decision> {
        b.bad++;
        if (b.problems.size() < kMaxProblems)
            b.problems.push_back(why);
        return std::nullopt;
    };
    if (!j.is_object())
        return bad("a decision that is not an object");
    auto type = j.find("type");
    auto scope = j.find("scope");
    auto value = j.find("value");
    if (type == j.end() || !type->is_string() || scope == j.end() || !scope->is_string() ||
        value == j.end() || !value->is_string())
        return bad("a decision without \"type\", \"scope\" and \"value\" strings");
    std::string v = value->get<std::string>();
    if (lower(type->get<std::string>()) != "ban") {
        b.ignored++;
        return std::nullopt;
    }
    Decision d;
    std::string s = lower(scope->get<std::string>());
    std::string why;
    if (s == "ip") {
        auto a = Address::parse(v, &why);
        if (!a)
            return bad("scope Ip, value '" + v + "': " + why);
        d.prefix = Cidr::host(*a);
    } else if (s == "range") {
        // The LAPI stores what it was given; a range with host bits set
        // ("192.0.2.7/24") still means the range.
        auto slash = v.find('/');
        auto a = Address::parse(std::string_view(v).substr(0, slash), &why);
        if (!a || slash == std::string::npos)
            return bad("scope Range, value '" + v + "': " + (why.empty() ? "no /length" : why));
        unsigned max = a->is_v4() ? 32 : 128, len = 0;
        std::string_view digits = std::string_view(v).substr(slash + 1);
        if (digits.empty() || digits.size() > 3 ||
            !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
            (len = static_cast<unsigned>(std::stoul(std::string(digits)))) > max)
            return bad("scope Range, value '" + v + "': prefix length must be 0.." +
                       std::to_string(max));
        d.prefix = Cidr(*a, len);
    } else {
        b.ignored++;
        return std::nullopt;
    }
    auto dur = j.find("duration");
    if (dur != j.end() && dur->is_string()) {
        auto parsed = parse_go_duration(dur->get<std::string>());
        if (!parsed)
            return bad("decision for " + v + ": duration '" + dur->get<std::string>() +
                       "' is not a Go duration");
        d.remaining = *parsed;
    } else if (!in_deleted) {
        return bad("decision for " + v + " without a \"duration\" string");
    } else {
        d.remaining = {};
    }
    auto id = j.find("id");
    if (id != j.end() && id->is_number_integer())
        d.id = id->get<int64_t>();
    d.origin = text_of(j, "origin");
    d.scenario = text_of(j, "scenario");
    return d;
}

void decode_list(const Json& doc, const char* key, bool in_deleted, std::vector<Decision>& out,
                 StreamBatch& b)
{
    auto it = doc.find(key);
    if (it == doc.end() || it->is_null())
        return;
    if (!it->is_array())
        throw std::runtime_error(std::string("\"") + key + "\" is neither a list nor null");
    out.reserve(it->size());
    for (const auto& j : *it)
        if (auto d = decode_decision(j, in_deleted, b))
            out.push_back(std::move(*d));
}

} // namespace

// ---- Go durations ------------------------------------------------------------------

std::optional<std::chrono::nanoseconds> parse_go_duration(std::string_view s)
{
    bool negative = false;
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
        negative = s[0] == '-';
        s.remove_prefix(1);
    }
    if (s == "0")
        return std::chrono::nanoseconds(0);
    if (s.empty())
        return std::nullopt;
    static constexpr struct {
        std::string_view name;
        int64_t ns;
    } kUnits[] = {
        // Longest first where one is a prefix of another ("ms" before "m").
        {"ns", 1},
        {"us", 1000},
        {"\xC2\xB5s", 1000}, // U+00B5 micro sign
        {"\xCE\xBCs", 1000}, // U+03BC Greek small letter mu
        {"ms", 1000000},
        {"s", 1000000000},
        {"m", 60LL * 1000000000},
        {"h", 3600LL * 1000000000},
    };
    __int128 total = 0;
    const __int128 limit = static_cast<__int128>(INT64_MAX) + (negative ? 1 : 0);
    while (!s.empty()) {
        __int128 whole = 0;
        size_t digits = 0;
        while (!s.empty() && s[0] >= '0' && s[0] <= '9') {
            whole = whole * 10 + (s[0] - '0');
            if (whole > limit)
                return std::nullopt;
            s.remove_prefix(1);
            digits++;
        }
        std::string_view fraction;
        if (!s.empty() && s[0] == '.') {
            s.remove_prefix(1);
            size_t n = 0;
            while (n < s.size() && s[n] >= '0' && s[n] <= '9')
                n++;
            fraction = s.substr(0, n);
            s.remove_prefix(n);
        }
        if (digits == 0 && fraction.empty())
            return std::nullopt;
        int64_t unit = 0;
        for (const auto& u : kUnits)
            if (s.substr(0, u.name.size()) == u.name) {
                unit = u.ns;
                s.remove_prefix(u.name.size());
                break;
            }
        if (!unit)
            return std::nullopt; // Go requires a unit after every number but a lone "0"
        total += whole * unit;
        // The fraction, digit by digit at its own scale; beyond a nanosecond it
        // is dropped, as Go does.
        __int128 scale = unit;
        for (char c : fraction) {
            scale /= 10;
            if (!scale)
                break;
            total += (c - '0') * scale;
        }
        if (total > limit)
            return std::nullopt;
    }
    return std::chrono::nanoseconds(static_cast<int64_t>(negative ? -total : total));
}

std::string go_duration(std::chrono::seconds s)
{
    return std::to_string(s.count()) + "s";
}

// ---- the stream --------------------------------------------------------------------

StreamBatch decode_stream(std::string_view json_text)
{
    // nlohmann's parser stops at a NUL byte and takes what came before it: an
    // answer with one is not the answer it looks like.
    if (json_text.find('\0') != std::string_view::npos)
        throw std::runtime_error("a NUL byte in the answer");
    Json doc;
    try {
        doc = Json::parse(json_text);
    } catch (const Json::exception& e) {
        throw std::runtime_error(std::string("not JSON (") + e.what() + ")");
    }
    if (!doc.is_object())
        throw std::runtime_error("not a JSON object with \"new\" and \"deleted\"");
    if (!doc.contains("new") && !doc.contains("deleted"))
        throw std::runtime_error("a JSON object with neither \"new\" nor \"deleted\"");
    StreamBatch b;
    decode_list(doc, "new", false, b.added, b);
    decode_list(doc, "deleted", true, b.deleted, b);
    return b;
}

std::string block_reason(const Decision& d)
{
    std::string r = "crowdsec";
    if (!d.scenario.empty())
        r += " " + d.scenario;
    if (!d.origin.empty())
        r += " (" + d.origin + (d.id ? ", decision " + std::to_string(d.id) : "") + ")";
    else if (d.id)
        r += " (decision " + std::to_string(d.id) + ")";
    return r;
}

// ---- alerts ------------------------------------------------------------------------

nlohmann::json make_alert(const ScanAlert& a)
{
    std::string src = a.src.str(), dst = a.dst.str();
    // A prefix block is sent as what it is (scope Range): the LAPI parses a
    // Range decision's value as a CIDR and its bouncers block the range.
    std::string scope = a.range ? "Range" : "Ip";
    std::string value = a.range ? a.range->str() : src;
    std::string ports = format_ports(a.ports);
    std::string when = rfc3339(a.when);
    Json meta = Json::array({
        {{"key", "source_ip"}, {"value", src}},
        {{"key", "destination_ip"}, {"value", dst}},
        {{"key", "ports"}, {"value", ports}},
        {{"key", "interface"}, {"value", a.ifname}},
        {{"key", "service"}, {"value", "connwatch"}},
    });
    Json decisions = Json::array();
    if (a.ban)
        decisions.push_back({{"duration", go_duration(*a.ban)},
                             {"origin", kOrigin},
                             {"scenario", kScenario},
                             {"scope", scope},
                             {"type", "ban"},
                             {"value", value}});
    return {
        {"scenario", kScenario},
        {"scenario_hash", ""},
        {"scenario_version", "1"},
        {"message", port_scan_message(value, a.dst, a.ports)},
        {"events_count", static_cast<int32_t>(a.ports.size())},
        {"start_at", when},
        {"stop_at", when},
        {"capacity", static_cast<int32_t>(a.threshold)},
        {"leakspeed", go_duration(a.window)},
        {"simulated", false},
        // false: the LAPI's profiles must not turn a monitor-only report into
        // a decision of their own (the default profile bans on remediation).
        {"remediation", a.ban.has_value()},
        {"events", Json::array({{{"timestamp", when}, {"meta", meta}}})},
        {"source", a.range ? Json{{"scope", scope}, {"value", value}, {"range", value}, {"ip", src}}
                           : Json{{"scope", scope}, {"value", value}, {"ip", src}}},
        {"decisions", decisions},
    };
}

std::chrono::seconds token_refresh_in(const std::string& expire, std::time_t now)
{
    constexpr std::chrono::seconds kAtMost = std::chrono::minutes(30);
    std::tm tm{};
    const char* end = strptime(expire.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return kAtMost;
    auto left = std::chrono::seconds(timegm(&tm) - now - 60);
    return std::clamp(left, std::chrono::seconds(0), kAtMost);
}

std::string login_body(const std::string& machine_id, const std::string& password)
{
    return Json{{"machine_id", machine_id},
                {"password", password},
                {"scenarios", Json::array({kScenario})}}
        .dump();
}

// ---- credentials -------------------------------------------------------------------

MachineCredentials parse_machine_credentials(std::string_view text)
{
    MachineCredentials c;
    size_t line_no = 0;
    while (!text.empty()) {
        auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        line_no++;
        auto trim = [](std::string_view v) {
            while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
                v.remove_prefix(1);
            while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r'))
                v.remove_suffix(1);
            return v;
        };
        line = trim(line);
        if (line.empty() || line[0] == '#' || line == "---")
            continue;
        auto colon = line.find(':');
        if (colon == std::string_view::npos)
            throw std::runtime_error("line " + std::to_string(line_no) +
                                     ": not 'key: value' (a file written by cscli machines add "
                                     "-f holds url, login and password)");
        std::string_view key = trim(line.substr(0, colon));
        std::string_view value = trim(line.substr(colon + 1));
        if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
            value.back() == value.front())
            value = value.substr(1, value.size() - 2);
        if (key == "url")
            c.url = value;
        else if (key == "login")
            c.login = value;
        else if (key == "password")
            c.password = value;
        // Other keys (certificates of newer versions) are not connwatch's.
    }
    for (auto [key, v] : {std::pair{"url", &c.url}, {"login", &c.login}, {"password", &c.password}})
        if (v->empty())
            throw std::runtime_error(std::string("no '") + key +
                                     ":' (a file written by cscli machines add -f holds url, "
                                     "login and password)");
    if (c.url.rfind("http://", 0) != 0 && c.url.rfind("https://", 0) != 0)
        throw std::runtime_error("url '" + c.url + "' is not http:// or https://");
    return c;
}

std::string parse_bouncer_key(std::string_view text)
{
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
        text.remove_suffix(1);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
        text.remove_prefix(1);
    if (text.empty())
        throw std::runtime_error("empty: put the key that 'cscli bouncers add NAME' printed in it");
    for (unsigned char c : text)
        if (c < 0x21 || c > 0x7e)
            throw std::runtime_error("the key is not one line of printable characters: put only "
                                     "the key that 'cscli bouncers add NAME' printed in it");
    return std::string(text);
}

std::string read_secret_file(const std::string& path)
{
    constexpr size_t kMax = 64 * 1024;
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd)
        throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
    struct stat st{};
    if (fstat(fd.get(), &st))
        throw std::runtime_error("cannot stat " + path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        throw std::runtime_error(path + " is not a regular file");
    if (st.st_mode & S_IROTH) {
        char mode[8];
        std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw std::runtime_error(path + " holds a secret but every user of this host may read it "
                                        "(mode " + mode + "): chmod o-r " + path +
                                 " (0600, or 0640 with group connwatch)");
    }
    if (static_cast<size_t>(st.st_size) > kMax)
        throw std::runtime_error(path + " is larger than 64 KiB: not a key or credentials file");
    std::string text(static_cast<size_t>(st.st_size), '\0');
    size_t got = 0;
    while (got < text.size()) {
        ssize_t n = read(fd.get(), text.data() + got, text.size() - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
        if (n == 0)
            break;
        got += static_cast<size_t>(n);
    }
    text.resize(got);
    return text;
}

std::string join_url(const std::string& base, std::string_view path)
{
    std::string url = base;
    if (url.empty() || url.back() != '/')
        url += '/';
    while (!path.empty() && path.front() == '/')
        path.remove_prefix(1);
    return url + std::string(path);
}

// ---- the ledger --------------------------------------------------------------------

std::vector<DecisionLedger::Change> DecisionLedger::apply(const StreamBatch& batch, bool startup,
                                                          int64_t now_s)
{
    std::set<Cidr> touched;
    if (startup) {
        for (const auto& [p, ids] : held_)
            touched.insert(p);
        held_.clear();
    }
    for (const auto& d : batch.deleted) {
        auto it = held_.find(d.prefix);
        if (it == held_.end())
            continue;
        // No id (0): every decision for the prefix is gone.
        if (d.id)
            it->second.erase(d.id);
        else
            it->second.clear();
        touched.insert(d.prefix);
    }
    for (const auto& d : batch.added) {
        // Rounded up: a decision with 0.4 s left still holds for that long.
        int64_t secs = std::chrono::ceil<std::chrono::seconds>(d.remaining).count();
        if (secs <= 0)
            continue; // already over
        held_[d.prefix][d.id] = now_s + secs;
        touched.insert(d.prefix);
    }
    std::vector<Change> out;
    for (const auto& p : touched) {
        auto it = held_.find(p);
        int64_t until = 0;
        if (it != held_.end()) {
            // Decisions past their time are dropped here (the LAPI says so
            // later, in "deleted"; the kernel already ignores the block).
            for (auto e = it->second.begin(); e != it->second.end();)
                e = e->second <= now_s ? it->second.erase(e) : std::next(e);
            for (const auto& [id, exp] : it->second)
                until = std::max(until, exp);
            if (it->second.empty())
                held_.erase(it);
        }
        out.push_back({p, until > now_s ? std::optional(std::chrono::seconds(until - now_s))
                                        : std::nullopt});
    }
    return out;
}

} // namespace connwatch::crowdsec
