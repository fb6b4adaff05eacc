// SPDX-License-Identifier: GPL-2.0-only
#include "blocks/offenders.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "base/unique_fd.h"
#include "blocks/json_envelope.h"
#include "blocks/state.h"

namespace connwatch {

namespace {

constexpr int kVersion = 1;
constexpr int64_t kNsPerSec = 1'000'000'000;
// As state.json's times: whole Unix seconds before 2242, durations below
// parse_duration's cap of 3660 days.
constexpr int64_t kMaxTime = int64_t{1} << 33;
constexpr uint64_t kMaxBlockSeconds = 3660ull * 86400;
constexpr std::size_t kProblemsNamed = 3;

OffenderRecord record_from(const nlohmann::json& j)
{
    if (!j.is_object())
        throw std::runtime_error("not an object");
    OffenderRecord r;
    auto src = j.find("source");
    if (src == j.end() || !src->is_string())
        throw std::runtime_error("no \"source\" string");
    std::string err;
    auto a = Address::parse(src->get<std::string>(), &err);
    if (!a)
        throw std::runtime_error(err);
    r.source = *a;
    auto number = [&](const char* key, uint64_t max) {
        auto it = j.find(key);
        if (it == j.end() || !it->is_number_unsigned() || it->get<uint64_t>() > max)
            throw std::runtime_error(std::string("\"") + key + "\" is not a number from 0 to " +
                                     std::to_string(max));
        return it->get<uint64_t>();
    };
    r.offences = static_cast<uint32_t>(number("offences", UINT32_MAX));
    if (r.offences == 0)
        throw std::runtime_error("\"offences\" is 0");
    r.until = static_cast<std::time_t>(number("until", kMaxTime));
    r.block_seconds = number("block", kMaxBlockSeconds);
    return r;
}

} // namespace

std::string format_offenders(const std::vector<OffenderRecord>& records)
{
    std::string out = "{\n \"version\": " + std::to_string(kVersion) + ",\n \"offenders\": [";
    for (std::size_t i = 0; i < records.size(); i++) {
        const auto& r = records[i];
        nlohmann::json j = {{"source", r.source.str()},
                            {"offences", r.offences},
                            {"until", static_cast<int64_t>(r.until)},
                            {"block", r.block_seconds}};
        out += (i ? ",\n  " : "\n  ") + j.dump();
    }
    out += records.empty() ? "]\n}\n" : "\n ]\n}\n";
    return out;
}

std::vector<OffenderRecord> parse_offenders(std::string_view text,
                                            std::vector<std::string>* problems)
{
    auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    check_json_envelope(j, kVersion);
    auto list = j.find("offenders");
    if (list == j.end() || !list->is_array())
        throw std::runtime_error("no \"offenders\" list");
    std::vector<OffenderRecord> out;
    for (std::size_t i = 0; i < list->size(); i++) {
        try {
            out.push_back(record_from((*list)[i]));
        } catch (const std::exception& e) {
            if (problems)
                problems->push_back("offenders[" + std::to_string(i) + "]: " + e.what());
        }
    }
    return out;
}

std::vector<OffenderRecord> offenders_from_kernel(
    const std::vector<std::pair<cw_addr, cw_offender>>& entries, std::chrono::seconds window,
    uint64_t mono_now, std::time_t wall_now, std::size_t max)
{
    std::vector<OffenderRecord> out;
    for (const auto& [key, o] : entries) {
        if (o.offences == 0)
            continue;
        // Signed: a block may end ahead of now, or have ended "before boot".
        int64_t ahead_ns = static_cast<int64_t>(o.until_ns - mono_now);
        int64_t until = static_cast<int64_t>(wall_now) + ahead_ns / kNsPerSec;
        if (until + window.count() <= wall_now || until < 0 || until > kMaxTime)
            continue; // outside the window: it can escalate nothing any more
        out.push_back({Address(key), o.offences, static_cast<std::time_t>(until),
                       std::min<uint64_t>(o.block_ns / kNsPerSec, kMaxBlockSeconds)});
    }
    std::sort(out.begin(), out.end(), [](const OffenderRecord& a, const OffenderRecord& b) {
        return a.until > b.until;
    });
    if (out.size() > max)
        out.resize(max);
    return out;
}

std::vector<std::pair<cw_addr, cw_offender>> offenders_to_kernel(
    const std::vector<OffenderRecord>& records, std::chrono::seconds window, uint64_t mono_now,
    std::time_t wall_now)
{
    std::vector<std::pair<cw_addr, cw_offender>> out;
    for (const auto& r : records) {
        if (r.until + window.count() <= wall_now)
            continue;
        cw_offender o{};
        // Wraps below zero for a block that ended before this boot: the
        // kernel's signed comparison reads it back as "that long ago".
        o.until_ns = mono_now + static_cast<uint64_t>(
                                    (static_cast<int64_t>(r.until) - wall_now) * kNsPerSec);
        o.block_ns = r.block_seconds * static_cast<uint64_t>(kNsPerSec);
        o.offences = r.offences;
        out.emplace_back(r.source.to_abi(), o);
    }
    return out;
}

std::vector<OffenderRecord> load_offenders(const std::string& path, std::string* warning)
{
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        if (errno != ENOENT && warning)
            *warning = "Cannot read " + path + ": " + std::strerror(errno) +
                       "; repeat offenders start without their history";
        return {};
    }
    std::string text;
    char buf[8192];
    for (;;) {
        ssize_t n = read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        text.append(buf, static_cast<std::size_t>(n));
    }
    std::vector<std::string> problems;
    try {
        auto records = parse_offenders(text, &problems);
        if (!problems.empty() && warning) {
            std::string named;
            for (std::size_t i = 0; i < problems.size() && i < kProblemsNamed; i++)
                named += (i ? "; " : "") + problems[i];
            if (problems.size() > kProblemsNamed)
                named += "; and " + std::to_string(problems.size() - kProblemsNamed) + " more";
            *warning = path + ": skipped " + std::to_string(problems.size()) +
                       " unreadable records (" + named + ")";
        }
        return records;
    } catch (const std::exception& e) {
        std::string aside = path + ".corrupt";
        bool moved = std::rename(path.c_str(), aside.c_str()) == 0;
        if (warning)
            *warning = path + " is not an offenders file (" + e.what() + ")" +
                       (moved ? ", moved aside to " + aside : std::string()) +
                       "; repeat offenders start without their history";
        return {};
    }
}

void save_offenders(const std::string& path, const std::vector<OffenderRecord>& records)
{
    write_atomically(path, format_offenders(records));
}

} // namespace connwatch
