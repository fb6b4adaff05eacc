// SPDX-License-Identifier: GPL-2.0-only
#include "blocks/state.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/unique_fd.h"

namespace connwatch {

namespace {

constexpr int kStateVersion = 1;
// The problems a warning names one by one; the rest are only counted, so that a
// file of garbage records still makes one readable line.
constexpr std::size_t kProblemsNamed = 3;

// A record that cannot be used: the message says which field and why.
struct BadRecord : std::runtime_error {
    using std::runtime_error::runtime_error;
};

Cidr cidr_from(const nlohmann::json& j)
{
    if (!j.is_string())
        throw BadRecord("the prefix is not a string");
    std::string err;
    auto c = Cidr::parse(j.get<std::string>(), &err);
    if (!c)
        throw BadRecord(err);
    return *c;
}

// Wall-clock seconds. Only a whole number: nlohmann converts a float to an
// integer with a plain cast, undefined behaviour when it does not fit (1e300).
// At most 2^33 s (year 2242): an expiry is turned into a monotonic deadline in
// nanoseconds (u64, kernel's clock), which a later one would overflow; a block
// made today ends by 2036 + 3660 days at the latest (parse_duration's cap).
constexpr int64_t kMaxTime = int64_t{1} << 33;

std::time_t time_from(const nlohmann::json& b, const char* key)
{
    auto it = b.find(key);
    if (it == b.end())
        throw BadRecord(std::string("no \"") + key + "\"");
    if (!it->is_number_integer() || (it->is_number_unsigned() && it->get<uint64_t>() > INT64_MAX) ||
        it->get<int64_t>() < 0 || it->get<int64_t>() > kMaxTime)
        throw BadRecord(std::string("\"") + key + "\" is not a time (Unix seconds, before 2242)");
    return static_cast<std::time_t>(it->get<int64_t>());
}

BlockRecord block_from(const nlohmann::json& b)
{
    if (!b.is_object())
        throw BadRecord("not an object");
    BlockRecord r;
    auto prefix = b.find("prefix");
    if (prefix == b.end())
        throw BadRecord("no \"prefix\"");
    r.prefix = cidr_from(*prefix);
    auto origin = b.find("origin");
    if (origin == b.end() || !origin->is_string())
        throw BadRecord("no \"origin\" string");
    auto o = block_origin_from(origin->get<std::string>());
    if (!o)
        throw BadRecord("unknown block origin '" + origin->get<std::string>() + "'");
    r.origin = *o;
    if (auto reason = b.find("reason"); reason != b.end()) {
        if (!reason->is_string())
            throw BadRecord("\"reason\" is not a string");
        r.reason = reason->get<std::string>();
    }
    r.created = time_from(b, "created");
    r.expires = time_from(b, "expires");
    return r;
}

const nlohmann::json& list_at(const nlohmann::json& j, const char* key)
{
    auto it = j.find(key);
    if (it == j.end() || !it->is_array())
        throw std::runtime_error(std::string("no \"") + key + "\" list");
    return *it;
}

// The whole file, none when it does not exist, or why it cannot be read.
std::optional<std::string> read_file(const std::string& path)
{
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT)
            return std::nullopt;
        throw std::runtime_error(std::strerror(errno));
    }
    std::string text;
    char buf[8192];
    for (;;) {
        ssize_t n = read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw std::runtime_error(std::strerror(errno));
        if (n == 0)
            return text;
        text.append(buf, static_cast<std::size_t>(n));
    }
}

} // namespace

State parse_state(std::string_view text, std::vector<std::string>* problems)
{
    auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded())
        throw std::runtime_error("not JSON");
    if (!j.is_object())
        throw std::runtime_error("not a JSON object");
    auto version = j.find("version");
    if (version == j.end() || !version->is_number_integer() ||
        *version != nlohmann::json(kStateVersion))
        throw std::runtime_error("unknown version " +
                                 (version == j.end() ? std::string("(none)") : version->dump()));
    State st;
    const auto& blocks = list_at(j, "blocks");
    const auto& allow = list_at(j, "allow");
    for (std::size_t i = 0; i < blocks.size(); i++) {
        try {
            st.blocks.push_back(block_from(blocks[i]));
        } catch (const BadRecord& e) {
            if (problems)
                problems->push_back("blocks[" + std::to_string(i) + "]: " + e.what());
        }
    }
    for (std::size_t i = 0; i < allow.size(); i++) {
        try {
            st.allow.push_back(cidr_from(allow[i]));
        } catch (const BadRecord& e) {
            if (problems)
                problems->push_back("allow[" + std::to_string(i) + "]: " + e.what());
        }
    }
    return st;
}

std::string format_state(const State& state)
{
    nlohmann::json j{{"version", kStateVersion},
                     {"blocks", nlohmann::json::array()},
                     {"allow", nlohmann::json::array()}};
    for (const auto& b : state.blocks)
        j["blocks"].push_back({{"prefix", b.prefix.str()},
                               {"origin", to_string(b.origin)},
                               {"reason", b.reason},
                               {"created", b.created},
                               {"expires", b.expires}});
    for (const auto& a : state.allow)
        j["allow"].push_back(a.str());
    return j.dump(1) + "\n";
}

State load_state(const std::string& path, std::string* warning)
{
    std::vector<std::string> problems;
    State st;
    try {
        // An empty file is not a state file (save_state never writes one): it
        // is moved aside and said, like any other.
        auto text = read_file(path);
        if (!text)
            return st;
        st = parse_state(*text, &problems);
    } catch (const std::exception& e) {
        std::error_code ec;
        std::filesystem::rename(path, path + ".corrupt", ec);
        if (warning)
            *warning = "the state file " + path + " could not be read (" + e.what() +
                       "); moved it to " + path + ".corrupt and started without it";
        return State{};
    }
    if (problems.empty())
        return st;
    std::error_code ec;
    std::filesystem::copy_file(path, path + ".corrupt",
                               std::filesystem::copy_options::overwrite_existing, ec);
    if (warning) {
        std::string named;
        for (std::size_t i = 0; i < problems.size() && i < kProblemsNamed; i++)
            named += (named.empty() ? "" : "; ") + problems[i];
        if (problems.size() > kProblemsNamed)
            named += "; " + std::to_string(problems.size() - kProblemsNamed) + " more";
        *warning = "the state file " + path + " has " + std::to_string(problems.size()) +
                   " unreadable record" + (problems.size() == 1 ? "" : "s") + " (" + named +
                   "), skipped; kept " + std::to_string(st.blocks.size()) + " blocks and " +
                   std::to_string(st.allow.size()) + " allow entries" +
                   (ec ? " (copying the file aside failed: " + ec.message() + ")"
                       : "; the file as it was is in " + path + ".corrupt");
    }
    return st;
}

void save_state(const std::string& path, const State& state)
{
    std::string text = format_state(state);

    auto dir = std::filesystem::path(path).parent_path();
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    std::string tmp = path + ".tmp";
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        throw Error("Failed to write " + tmp, errno_code(errno));
    UniqueFd guard(fd);
    size_t off = 0;
    while (off < text.size()) {
        ssize_t n = write(fd, text.data() + off, text.size() - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw Error("Failed to write " + tmp, errno_code(errno));
        }
        off += static_cast<size_t>(n);
    }
    if (fsync(fd) != 0)
        throw Error("Failed to write " + tmp, errno_code(errno));
    if (rename(tmp.c_str(), path.c_str()) != 0)
        throw Error("Failed to replace " + path, errno_code(errno));
    UniqueFd dfd(open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dfd)
        fsync(dfd.get());
}

} // namespace connwatch
