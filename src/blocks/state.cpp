// SPDX-License-Identifier: GPL-2.0-only
#include "blocks/state.h"

#include <fcntl.h>
#include <unistd.h>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
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

std::string dump(const nlohmann::json& j)
{
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A JSON string as nlohmann's dump() writes it: printable ASCII without '"'
// or '\\' as it is (every address, nearly every reason), anything else
// through the library's escaping (and its replacement of invalid UTF-8).
void append_string(std::string& out, std::string_view s)
{
    bool plain = std::all_of(s.begin(), s.end(), [](char ch) {
        auto c = static_cast<unsigned char>(ch);
        return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
    });
    if (!plain) {
        out += dump(std::string(s));
        return;
    }
    out += '"';
    out += s;
    out += '"';
}

void append_number(std::string& out, std::int64_t v)
{
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, static_cast<std::size_t>(end - buf));
}

// Cidr::str() without its two strings: an IPv4 prefix by hand.
void append_prefix(std::string& out, const Cidr& c)
{
    if (!c.address().is_v4()) {
        out += c.str();
        return;
    }
    const auto& b = c.address().bytes();
    for (int i = 12; i < 16; i++) {
        append_number(out, b[static_cast<std::size_t>(i)]);
        out += i < 15 ? '.' : '/';
    }
    append_number(out, c.length());
}

// One record as the snapshot holds it: the object nlohmann dumps for
// {prefix, origin, reason, created, expires} (its keys in their sorted order),
// written by hand (a million of them).
void append_record(std::string& out, const Cidr& prefix, BlockOrigin origin,
                   std::string_view reason, std::time_t created, std::time_t expires)
{
    out += "{\"created\":";
    append_number(out, created);
    out += ",\"expires\":";
    append_number(out, expires);
    out += ",\"origin\":\"";
    out += to_string(origin);
    out += "\",\"prefix\":\"";
    append_prefix(out, prefix);
    out += "\",\"reason\":";
    append_string(out, reason);
    out += '}';
}

// The state file's text, block by block: `each(emit)` calls emit(prefix,
// origin, reason, created, expires) for every block, in the file's order;
// `drain(out, last)` takes what is made so far whenever it likes (a writer
// keeps memory to a slice), and all of it when `last`.
template <typename EachBlock, typename Drain>
void emit_state(std::size_t blocks, EachBlock each, const std::vector<Cidr>& allow, Drain drain)
{
    std::string out = "{\n \"version\": " + std::to_string(kStateVersion) + ",\n \"blocks\": [";
    std::size_t i = 0;
    each([&](const Cidr& prefix, BlockOrigin origin, std::string_view reason, std::time_t created,
             std::time_t expires) {
        out += i++ ? ",\n  " : "\n  ";
        append_record(out, prefix, origin, reason, created, expires);
        drain(out, false);
    });
    out += blocks == 0 ? "],\n \"allow\": [" : "\n ],\n \"allow\": [";
    for (std::size_t k = 0; k < allow.size(); k++) {
        out += k ? ",\n  " : "\n  ";
        append_string(out, allow[k].str());
    }
    out += allow.empty() ? "]\n}\n" : "\n ]\n}\n";
    drain(out, true);
}

} // namespace

std::string format_state(const State& state)
{
    // Record by record, as parse_state reads it: never one tree of them all.
    std::string text;
    emit_state(
        state.blocks.size(),
        [&](auto&& emit) {
            for (const auto& b : state.blocks)
                emit(b.prefix, b.origin, b.reason, b.created, b.expires);
        },
        state.allow, [&](std::string& out, bool) {
            text += out;
            out.clear();
        });
    return text;
}

// ---- the journal --------------------------------------------------------------------

std::string journal_add(const BlockRecord& r)
{
    // By hand, not through a JSON object: a bulk import writes a million of
    // these. Only the reason needs the library's escaping.
    std::string out = "{\"add\":{\"prefix\":\"";
    append_prefix(out, r.prefix);
    out += "\",\"origin\":\"";
    out += to_string(r.origin);
    out += "\",\"reason\":";
    append_string(out, r.reason);
    out += ",\"created\":";
    append_number(out, r.created);
    out += ",\"expires\":";
    append_number(out, r.expires);
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

namespace {

void write_all(int fd, std::string_view text, const std::string& name)
{
    while (!text.empty()) {
        ssize_t n = write(fd, text.data(), text.size());
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw Error("Failed to write " + name, errno_code(errno));
        }
        text.remove_prefix(static_cast<size_t>(n));
    }
}

// PATH.tmp, opened for a new text (its directory made if need be).
UniqueFd open_tmp(const std::string& path)
{
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    std::string tmp = path + ".tmp";
    UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd)
        throw Error("Failed to write " + tmp, errno_code(errno));
    return fd;
}

void sync_dir(const std::string& path)
{
    auto dir = std::filesystem::path(path).parent_path();
    UniqueFd dfd(open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dfd)
        fsync(dfd.get());
}

// PATH.tmp, written whole: to the disk, then over PATH, then the directory.
void replace_with_tmp(int fd, const std::string& path,
                      const std::function<void(const char*)>& hook = {})
{
    std::string tmp = path + ".tmp";
    if (fsync(fd) != 0)
        throw Error("Failed to write " + tmp, errno_code(errno));
    if (hook)
        hook("written");
    if (rename(tmp.c_str(), path.c_str()) != 0)
        throw Error("Failed to replace " + path, errno_code(errno));
    sync_dir(path);
}

// The text of a snapshot is made and written in slices of this size.
constexpr std::size_t kSlice = 1 << 20;

} // namespace

void write_atomically(const std::string& path, const std::string& text)
{
    UniqueFd fd = open_tmp(path);
    write_all(fd.get(), text, path + ".tmp");
    replace_with_tmp(fd.get(), path);
}

void write_snapshot(const std::string& path, SnapshotSource& src, const std::atomic<bool>* cancel,
                    const std::function<void(const char*)>& hook)
{
    // The file's order: by prefix (Cidr's order: address, then length), the
    // records and the sharing hosts merged.
    auto by_prefix = [](const BlockRecord& a, const BlockRecord& b) { return a.prefix < b.prefix; };
    if (!std::is_sorted(src.records.begin(), src.records.end(), by_prefix))
        std::sort(src.records.begin(), src.records.end(), by_prefix);
    std::sort(src.sharing.begin(), src.sharing.end(), [](const auto& a, const auto& b) {
        return std::memcmp(a.first.b, b.first.b, sizeof(a.first.b)) < 0;
    });
    UniqueFd fd = open_tmp(path);
    const std::string tmp = path + ".tmp";
    bool first = true;
    auto drain = [&](std::string& out, bool last) {
        if (!last && out.size() < kSlice)
            return;
        if (cancel && cancel->load(std::memory_order_relaxed))
            throw Error("cancelled");
        write_all(fd.get(), out, tmp);
        out.clear();
        if (first && hook)
            hook("writing");
        first = false;
    };
    emit_state(
        src.blocks(),
        [&](auto&& emit) {
            std::size_t r = 0;
            for (const auto& [key, id] : src.sharing) {
                Cidr host = Cidr::host(Address(key));
                for (; r < src.records.size() && src.records[r].prefix < host; r++) {
                    const auto& b = src.records[r];
                    emit(b.prefix, b.origin, b.reason, b.created, b.expires);
                }
                const auto& sh = id < src.shared.size() ? src.shared[id] : SnapshotSource::Shared{};
                emit(host, BlockOrigin::Manual, sh.reason, sh.created, sh.expires);
            }
            for (; r < src.records.size(); r++) {
                const auto& b = src.records[r];
                emit(b.prefix, b.origin, b.reason, b.created, b.expires);
            }
        },
        src.allow, drain);
    replace_with_tmp(fd.get(), path, hook);
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
    struct stat before {};
    if (fstat(fd.get(), &before) != 0)
        throw Error("Failed to write " + path, errno_code(errno));
    try {
        write_all(fd.get(), lines, path);
    } catch (const Error&) {
        // Half the lines, or half a line: cut off, or the next line appended
        // would join a torn one and be lost with it (the caller writes a
        // snapshot instead). A file system that refuses this too leaves a
        // bad line that the next load skips and says.
        if (ftruncate(fd.get(), before.st_size) != 0) {
        }
        throw;
    }
    unsynced_ = true;
    journal_lines_ += count;
}

struct StateFile::Compaction {
    SnapshotSource src;
    std::string path, journal;
    uint64_t from = 0;      // the journal's length at the copy: the lines the snapshot holds
    std::size_t lines = 0;  // how many lines that is
    uint64_t copied = 0;    // the journal up to here is in PATH.journal.tmp (from `from` on)
    std::string error;      // the thread's failure; read once `done`
    std::function<void(const char*)> hook;
    std::atomic<bool> cancel{false}, done{false};
    std::thread thread;
};

StateFile::StateFile(std::string path) : path_(std::move(path)) {}

StateFile::StateFile(StateFile&&) noexcept = default;

StateFile::~StateFile()
{
    compact_cancel();
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

namespace {

// Empties the journal: the snapshot just written holds it.
void empty_journal(const std::string& path)
{
    // Emptied, not removed: the next append needs no directory sync to exist.
    UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd || fsync(fd.get()) != 0)
        throw Error("Failed to empty " + path, errno_code(errno));
}

} // namespace

void StateFile::rewrite(const State& st)
{
    compact_cancel(); // this snapshot is newer
    save_state(path_, st);
    empty_journal(journal_path());
    journal_lines_ = 0;
    unsynced_ = false;
}

void StateFile::rewrite(SnapshotSource src)
{
    compact_cancel();
    write_snapshot(path_, src);
    empty_journal(journal_path());
    journal_lines_ = 0;
    unsynced_ = false;
}

// ---- compaction ---------------------------------------------------------------------

namespace {

// Copies src_fd's bytes from `from` to its end (as it is now) to dst_fd, in
// slices. Returns the offset just past the last '\n' copied (`from` if none):
// the journal's writer may be in the middle of a line.
uint64_t copy_lines(int src_fd, uint64_t from, int dst_fd, const std::string& src_name,
                    const std::string& dst_name)
{
    std::string buf(kSlice, '\0');
    uint64_t at = from, whole = from;
    for (;;) {
        ssize_t n = pread(src_fd, buf.data(), buf.size(), static_cast<off_t>(at));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw Error("Failed to read " + src_name, errno_code(errno));
        if (n == 0)
            break;
        write_all(dst_fd, std::string_view(buf.data(), static_cast<size_t>(n)), dst_name);
        if (auto* nl = static_cast<const char*>(memrchr(buf.data(), '\n', static_cast<size_t>(n))))
            whole = at + static_cast<uint64_t>(nl - buf.data()) + 1;
        at += static_cast<uint64_t>(n);
    }
    if (at != whole && ftruncate(dst_fd, static_cast<off_t>(whole - from)) != 0)
        throw Error("Failed to write " + dst_name, errno_code(errno));
    return whole;
}

void run_compaction(StateFile::Compaction& c) noexcept;

} // namespace

void StateFile::compact_begin(SnapshotSource src)
{
    if (compaction_)
        return;
    auto c = std::make_unique<Compaction>();
    c->src = std::move(src);
    c->path = path_;
    c->journal = journal_path();
    c->lines = journal_lines_;
    c->hook = compaction_hook;
    struct stat st {};
    if (stat(c->journal.c_str(), &st) == 0)
        c->from = static_cast<uint64_t>(st.st_size);
    else if (errno != ENOENT)
        throw Error("Failed to read " + c->journal, errno_code(errno));
    Compaction* job = c.get();
    try {
        c->thread = std::thread([job] { run_compaction(*job); });
    } catch (const std::system_error& e) {
        throw Error("Cannot start a thread to write " + path_ + ": " + e.what());
    }
    compaction_ = std::move(c);
}

namespace {

void run_compaction(StateFile::Compaction& c) noexcept
{
    try {
        write_snapshot(c.path, c.src, &c.cancel, c.hook);
        c.src = SnapshotSource{}; // its memory back now, not at the loop's poll
        if (c.hook)
            c.hook("renamed");
        // The lines appended since the copy (as far as they are whole now),
        // into the journal that will replace this one.
        const std::string tmp = c.journal + ".tmp";
        UniqueFd out(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (!out)
            throw Error("Failed to write " + tmp, errno_code(errno));
        UniqueFd in(open(c.journal.c_str(), O_RDONLY | O_CLOEXEC));
        if (!in && errno != ENOENT)
            throw Error("Failed to read " + c.journal, errno_code(errno));
        c.copied = in ? copy_lines(in.get(), c.from, out.get(), c.journal, tmp) : c.from;
        if (fdatasync(out.get()) != 0)
            throw Error("Failed to write " + tmp, errno_code(errno));
        if (c.hook)
            c.hook("copied");
    } catch (const std::exception& e) {
        c.error = e.what();
    }
    c.done.store(true, std::memory_order_release);
}

} // namespace

std::optional<std::string> StateFile::compact_poll()
{
    if (!compaction_ || !compaction_->done.load(std::memory_order_acquire))
        return std::nullopt;
    compaction_->thread.join();
    std::unique_ptr<Compaction> c = std::move(compaction_);
    const std::string journal = journal_path(), tmp = journal + ".tmp";
    if (!c->error.empty()) {
        unlink(tmp.c_str());
        return c->error;
    }
    try {
        // The lines appended since the thread's copy: few (a second's worth).
        UniqueFd out(open(tmp.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
        if (!out)
            throw Error("Failed to write " + tmp, errno_code(errno));
        UniqueFd in(open(journal.c_str(), O_RDONLY | O_CLOEXEC));
        if (!in && errno != ENOENT)
            throw Error("Failed to read " + journal, errno_code(errno));
        if (in)
            copy_lines(in.get(), c->copied, out.get(), journal, tmp);
        if (fdatasync(out.get()) != 0)
            throw Error("Failed to write " + tmp, errno_code(errno));
        if (c->hook)
            c->hook("tail");
        if (rename(tmp.c_str(), journal.c_str()) != 0)
            throw Error("Failed to replace " + journal, errno_code(errno));
        if (c->hook)
            c->hook("replaced");
        // Lines appended from now on go to the new file and are synced
        // there: its name must be on the disk before they count as durable.
        sync_dir(journal);
    } catch (const Error& e) {
        unlink(tmp.c_str());
        return std::string(e.what());
    }
    journal_lines_ -= std::min(c->lines, journal_lines_);
    unsynced_ = false; // every line is in the new file, synced
    return std::string();
}

void StateFile::compact_cancel()
{
    if (!compaction_)
        return;
    compaction_->cancel.store(true, std::memory_order_relaxed);
    compaction_->thread.join();
    compaction_.reset();
    // A PATH.tmp or PATH.journal.tmp left half written: nothing reads them,
    // the next write truncates them.
}

} // namespace connwatch
