// SPDX-License-Identifier: GPL-2.0-only
#include "blocks/state.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/unique_fd.h"
#include "blocks/json_envelope.h"

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
    // Each record is read as soon as it is whole and then dropped from the
    // parser's tree: a million-block file costs its records, not a JSON
    // document of them (several times their size).
    State st;
    std::string section;
    std::size_t index[2] = {0, 0}; // blocks, allow
    auto cb = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        using E = nlohmann::json::parse_event_t;
        if (event == E::key && depth == 1) {
            section = parsed.get<std::string>();
            index[0] = index[1] = 0;
        }
        bool element_end = depth == 2 && (event == E::object_end || event == E::array_end ||
                                          event == E::value);
        if (!element_end || (section != "blocks" && section != "allow"))
            return true;
        bool blocks = section == "blocks";
        std::size_t i = index[blocks ? 0 : 1]++;
        try {
            if (blocks)
                st.blocks.push_back(block_from(parsed));
            else
                st.allow.push_back(cidr_from(parsed));
        } catch (const BadRecord& e) {
            if (problems)
                problems->push_back(section + "[" + std::to_string(i) + "]: " + e.what());
        }
        return false;
    };
    auto j = nlohmann::json::parse(text, cb, /*allow_exceptions=*/false);
    check_json_envelope(j, kStateVersion);
    list_at(j, "blocks");
    list_at(j, "allow");
    return st;
}

namespace {

nlohmann::json record_json(const BlockRecord& b)
{
    return {{"prefix", b.prefix.str()},
            {"origin", to_string(b.origin)},
            {"reason", b.reason},
            {"created", b.created},
            {"expires", b.expires}};
}

std::string dump(const nlohmann::json& j)
{
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace

std::string format_state(const State& state)
{
    // Record by record, as parse_state reads it: never one tree of them all.
    std::string out = "{\n \"version\": " + std::to_string(kStateVersion) + ",\n \"blocks\": [";
    for (std::size_t i = 0; i < state.blocks.size(); i++)
        out += (i ? ",\n  " : "\n  ") + dump(record_json(state.blocks[i]));
    out += state.blocks.empty() ? "],\n \"allow\": [" : "\n ],\n \"allow\": [";
    for (std::size_t i = 0; i < state.allow.size(); i++)
        out += (i ? ",\n  " : "\n  ") + dump(state.allow[i].str());
    out += state.allow.empty() ? "]\n}\n" : "\n ]\n}\n";
    return out;
}

// ---- the journal --------------------------------------------------------------------

std::string journal_add(const BlockRecord& r)
{
    // By hand, not through a JSON object: a bulk import writes a million of
    // these. Only the reason needs the library's escaping.
    std::string out = "{\"add\":{\"prefix\":\"";
    out += r.prefix.str();
    out += "\",\"origin\":\"";
    out += to_string(r.origin);
    out += "\",\"reason\":";
    out += dump(r.reason);
    out += ",\"created\":";
    out += std::to_string(r.created);
    out += ",\"expires\":";
    out += std::to_string(r.expires);
    out += "}}\n";
    return out;
}

std::string journal_remove(const Cidr& prefix)
{
    return dump({{"remove", prefix.str()}}) + "\n";
}

std::string journal_allow(const std::vector<Cidr>& runtime)
{
    nlohmann::json list = nlohmann::json::array();
    for (const auto& c : runtime)
        list.push_back(c.str());
    return dump({{"allow", list}}) + "\n";
}

void apply_journal(std::string_view text, State& st, std::vector<std::string>* problems)
{
    std::map<Cidr, BlockRecord> blocks;
    for (auto& b : st.blocks)
        blocks[b.prefix] = std::move(b);
    std::size_t number = 0;
    while (!text.empty()) {
        auto nl = text.find('\n');
        if (nl == std::string_view::npos)
            break; // torn: the crash came while this line was written
        auto line = text.substr(0, nl);
        text.remove_prefix(nl + 1);
        number++;
        try {
            auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
            if (j.is_discarded() || !j.is_object() || j.size() != 1)
                throw BadRecord("not a journal record");
            if (auto a = j.find("add"); a != j.end()) {
                auto r = block_from(*a);
                blocks[r.prefix] = std::move(r);
            } else if (auto d = j.find("remove"); d != j.end()) {
                blocks.erase(cidr_from(*d));
            } else if (auto l = j.find("allow"); l != j.end()) {
                if (!l->is_array())
                    throw BadRecord("\"allow\" is not a list");
                std::vector<Cidr> allow;
                for (const auto& c : *l)
                    allow.push_back(cidr_from(c));
                st.allow = std::move(allow);
            } else {
                throw BadRecord("unknown record " + dump(j.begin().key()));
            }
        } catch (const BadRecord& e) {
            if (problems)
                problems->push_back("journal line " + std::to_string(number) + ": " + e.what());
        }
    }
    st.blocks.clear();
    st.blocks.reserve(blocks.size());
    for (auto& [c, r] : blocks)
        st.blocks.push_back(std::move(r));
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
    write_atomically(path, format_state(state));
}

void write_atomically(const std::string& path, const std::string& text)
{
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

namespace connwatch {

State StateFile::load(std::string* warning)
{
    std::string w;
    State st = load_state(path_, &w);
    journal_lines_ = 0;
    std::optional<std::string> text;
    try {
        text = read_file(journal_path());
    } catch (const std::exception& e) {
        w += (w.empty() ? "" : "; ") + std::string("the journal ") + journal_path() +
             " could not be read (" + e.what() + "): the changes since the last snapshot are "
             "lost";
    }
    if (text) {
        std::vector<std::string> problems;
        apply_journal(*text, st, &problems);
        journal_lines_ = static_cast<std::size_t>(std::count(text->begin(), text->end(), '\n'));
        // A torn last line goes, or the next line appended would join it
        // and be lost with it.
        if (!text->empty() && text->back() != '\n') {
            auto keep = text->rfind('\n');
            if (truncate(journal_path().c_str(),
                         keep == std::string::npos ? 0 : static_cast<off_t>(keep + 1)) != 0)
                w += (w.empty() ? "" : "; ") + std::string("cannot cut the torn last line off ") +
                     journal_path() + ": " + std::strerror(errno);
        }
        if (!problems.empty()) {
            std::error_code ec;
            std::filesystem::copy_file(journal_path(), journal_path() + ".corrupt",
                                       std::filesystem::copy_options::overwrite_existing, ec);
            std::string named;
            for (std::size_t i = 0; i < problems.size() && i < kProblemsNamed; i++)
                named += (named.empty() ? "" : "; ") + problems[i];
            if (problems.size() > kProblemsNamed)
                named += "; " + std::to_string(problems.size() - kProblemsNamed) + " more";
            w += (w.empty() ? "" : "; ") + std::string("the journal ") + journal_path() + " has " +
                 std::to_string(problems.size()) + " unreadable record" +
                 (problems.size() == 1 ? "" : "s") + " (" + named + "), skipped" +
                 (ec ? "" : "; the file as it was is in " + journal_path() + ".corrupt");
        }
    }
    if (warning)
        *warning = w;
    return st;
}

// The journal is opened for each append and each sync, never held open: a
// descriptor open for writing would keep its file system from being remounted
// read-only (EBUSY), and an administrator's remount must win over connwatchd.
// An open and a close per batch of changes cost microseconds; the sync, not
// these, is what costs (at most once a second, BlockTable::save_if_dirty).
void StateFile::append(const std::string& lines, std::size_t count)
{
    if (lines.empty())
        return;
    std::string path = journal_path();
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!fd)
        throw Error("Failed to write " + path, errno_code(errno));
    size_t off = 0;
    while (off < lines.size()) {
        ssize_t n = write(fd.get(), lines.data() + off, lines.size() - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw Error("Failed to write " + path, errno_code(errno));
        }
        off += static_cast<size_t>(n);
    }
    unsynced_ = true;
    journal_lines_ += count;
}

StateFile::~StateFile()
{
    try {
        sync();
    } catch (const Error&) {
        // At exit nothing is left to retry with; the lines are in the page cache.
    }
}

void StateFile::sync()
{
    if (!unsynced_)
        return;
    // The data, not the file's times: the lines are durable once this returns.
    // fdatasync() reaches the file's dirty pages through any descriptor of it.
    std::string path = journal_path();
    UniqueFd fd(open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
    if (!fd || fdatasync(fd.get()) != 0)
        throw Error("Failed to write " + path, errno_code(errno));
    unsynced_ = false;
}

void StateFile::rewrite(const State& st)
{
    save_state(path_, st);
    // Emptied, not removed: the next append needs no directory sync to exist.
    std::string path = journal_path();
    UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd || fsync(fd.get()) != 0)
        throw Error("Failed to empty " + path, errno_code(errno));
    journal_lines_ = 0;
    unsynced_ = false;
}

} // namespace connwatch
