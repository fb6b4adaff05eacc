// SPDX-License-Identifier: GPL-2.0-only
// What connwatchd keeps across restarts and reboots, besides the pinned maps:
// the metadata of every block (origin, reason, times in wall-clock seconds) and
// the allow entries added at run time.
//
// On disk: a snapshot, PATH (state.json, written whole and atomically, rarely),
// and a journal, PATH.journal: the changes since the snapshot, one JSON object
// a line, appended and synced as they happen. A change costs a line, not a
// rewrite of every block. When the journal has grown past the snapshot's size
// the owner writes a new snapshot and empties the journal (StateFile).
#pragma once

#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/unique_fd.h"
#include "common/address.h"
#include "common/block_kinds.h"

namespace connwatch {

struct BlockRecord {
    Cidr prefix;
    BlockOrigin origin = BlockOrigin::Scan;
    std::string reason;
    std::time_t created = 0;
    std::time_t expires = 0; // 0 = until removed

    bool operator==(const BlockRecord&) const = default;
};

struct State {
    std::vector<BlockRecord> blocks;
    std::vector<Cidr> allow; // added with connwatchctl allow

    bool operator==(const State&) const = default;
};

// The state file's text. A file that is not a state file at all (not JSON,
// another version, no "blocks" or "allow" list) throws std::runtime_error. A
// record that cannot be read ("blocks[2]: ...") is skipped and said in
// `problems`: one hand-edited or damaged entry must not cost every other block.
State parse_state(std::string_view text, std::vector<std::string>* problems);

// The text save_state() writes; parse_state() reads it back to the same State.
std::string format_state(const State& state);

// Reads the state file. A missing file is an empty state. A file that cannot be
// parsed is moved aside to PATH.corrupt: starting without the old blocks beats
// not starting at all. When only some records are bad, the others are kept and
// the file as it was is copied to PATH.corrupt (the next save drops the bad
// records). Either way `warning` says what happened.
State load_state(const std::string& path, std::string* warning);

// Writes PATH.tmp, fsyncs it, renames it over PATH and fsyncs the directory:
// after a crash at any point the file is the old state or the new, never half.
// Throws Error.
void save_state(const std::string& path, const State& state);
// The same for any text (offenders.json, blocks/offenders.h).
void write_atomically(const std::string& path, const std::string& text);

// ---- the journal -------------------------------------------------------------------
// One change, as its journal line (with the '\n'):
//   {"add":{"prefix":...,"origin":...,"reason":...,"created":...,"expires":...}}
//   {"remove":"PREFIX"}
//   {"allow":["PREFIX",...]}     the runtime allow entries, all of them
std::string journal_add(const BlockRecord& r);
std::string journal_remove(const Cidr& prefix);
std::string journal_allow(const std::vector<Cidr>& runtime);

// Applies a journal's lines to st, in order. A last line without its '\n' (a
// crash while it was written) is ignored. A line that cannot be read is
// skipped and said in `problems` ("journal line 7: ..."): it costs only itself.
// Replaying a journal over a snapshot that already holds its changes gives the
// same state: each change sets or removes one key.
void apply_journal(std::string_view text, State& st, std::vector<std::string>* problems);

// The snapshot and its journal.
class StateFile {
public:
    explicit StateFile(std::string path) : path_(std::move(path)) {}
    // Syncs what is not yet: a clean exit leaves every line on the disk.
    ~StateFile();
    StateFile(StateFile&&) = default;
    // The snapshot (load_state's rules: a missing file is an empty state, an
    // unreadable one moved aside) with the journal's changes applied; a journal
    // with bad lines is copied to PATH.journal.corrupt. `warning` says what
    // was wrong.
    State load(std::string* warning);
    // Appends the lines (journal_add(), ...): in the kernel's page cache when
    // this returns, so a crash of connwatchd loses none of them; on the disk
    // after sync(). Throws Error.
    void append(const std::string& lines, std::size_t count);
    // fdatasync()s what append() wrote since the last sync. Throws Error.
    void sync();
    bool unsynced() const { return unsynced_; }
    // A new snapshot of st, then an empty journal. A crash between the two
    // leaves a journal that the new snapshot already holds: replayed, it
    // changes nothing. Throws Error.
    void rewrite(const State& st);
    std::size_t journal_lines() const { return journal_lines_; }
    const std::string& path() const { return path_; }
    std::string journal_path() const { return path_ + ".journal"; }

private:
    std::string path_;
    std::size_t journal_lines_ = 0;
    bool unsynced_ = false;
};

} // namespace connwatch
