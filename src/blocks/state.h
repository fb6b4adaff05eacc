// SPDX-License-Identifier: GPL-2.0-only
// What connwatchd keeps across restarts and reboots, besides the pinned maps:
// the metadata of every block (origin, reason, times in wall-clock seconds) and
// the allow entries added at run time.
//
// On disk: a snapshot, PATH (state.json, written whole and atomically, rarely),
// and a journal, PATH.journal: the changes since the snapshot, one JSON object
// a line, appended and synced as they happen. A change costs a line, not a
// rewrite of every block. When the journal has grown past the snapshot's size
// the owner writes a new snapshot and cuts the journal to the lines after it
// (StateFile); a large snapshot is written by a thread of its own
// (compaction), the event loop appending lines meanwhile.
#pragma once

#include <atomic>
#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
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

// What a snapshot is made of, copied in one cheap pass on the event loop's
// thread (BlockTable): the blocks that keep a record of their own, and the
// manual exact blocks that share one (an address and the number of its
// record: 18 bytes a block, where a BlockRecord with its string is ~80).
// The file it makes is format_state()'s for the same blocks, byte for byte.
struct SnapshotSource {
    std::vector<BlockRecord> records; // any order
    struct Shared {
        std::string reason;
        std::time_t created = 0, expires = 0;
    };
    std::vector<Shared> shared;                        // by number
    std::vector<std::pair<cw_addr, uint16_t>> sharing; // a manual host block, its number
    std::vector<Cidr> allow;
    std::size_t blocks() const { return records.size() + sharing.size(); }
};

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
    explicit StateFile(std::string path);
    // Stops a compaction under way (compact_cancel) and syncs what is not
    // yet: a clean exit leaves every line on the disk.
    ~StateFile();
    StateFile(StateFile&&) noexcept;
    StateFile& operator=(StateFile&&) = delete;
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
    // A new snapshot of src, written here and now, then an empty journal. A
    // crash between the two leaves a journal that the new snapshot already
    // holds: replayed, it changes nothing. Throws Error.
    void rewrite(SnapshotSource src);
    void rewrite(const State& st);

    // ---- compaction: a snapshot written by a thread of its own -----------------------
    // The event loop copies the blocks (SnapshotSource: milliseconds at a
    // million) and goes on; the thread formats them, writes PATH.tmp, fsyncs
    // it, renames it over PATH and fsyncs the directory, then copies the
    // journal's lines appended since the copy into PATH.journal.tmp.
    // compact_poll() on the loop then adds the few lines appended since,
    // syncs it and renames it over the journal. A crash at any point leaves
    // the old snapshot with the whole journal, or the new one with the whole
    // journal (its older lines change nothing when replayed over a snapshot
    // that holds them: each sets or removes one key), or the new one with the
    // lines after it: the state as it was, every time, in the format an
    // older connwatchd reads.
    //
    // Starts one for src (the state now: append() every line before this);
    // does nothing while one is under way. Throws Error (no thread).
    void compact_begin(SnapshotSource src);
    bool compacting() const { return compaction_ != nullptr; }
    // Never waits: nullopt while the thread works; when it is done, "" (the
    // snapshot and the shorter journal are in place) or why it failed (then
    // the journal is whole: nothing is lost, the owner tries again). Throws
    // nothing.
    std::optional<std::string> compact_poll();
    // Stops the thread between two slices of its work and waits for it
    // (a stop: a compaction of a million blocks takes seconds). The journal
    // is whole: the next start replays it.
    void compact_cancel();
    // Tests only: called at each step of a compaction (on the thread that
    // takes it): "writing" (the first part of PATH.tmp written), "written"
    // (PATH.tmp whole and synced), "renamed" (PATH replaced), "copied"
    // (PATH.journal.tmp has the lines the thread saw), then on the loop's
    // thread "tail" (PATH.journal.tmp whole and synced) and "replaced" (the
    // journal renamed, the directory not synced yet).
    std::function<void(const char* step)> compaction_hook;

    std::size_t journal_lines() const { return journal_lines_; }
    const std::string& path() const { return path_; }
    std::string journal_path() const { return path_ + ".journal"; }

    struct Compaction; // one under way: the thread's job (state.cpp)

private:
    std::string path_;
    std::size_t journal_lines_ = 0;
    bool unsynced_ = false;
    std::unique_ptr<Compaction> compaction_;
};

// Writes src as the state file PATH (through PATH.tmp, fsynced, renamed,
// the directory fsynced), a slice at a time: never the whole text in memory.
// Sorts src's lists (the file is in prefix order).
// `cancel`, when given and set, stops it between slices (Error "cancelled",
// PATH untouched). `hook` as StateFile::compaction_hook. Throws Error.
void write_snapshot(const std::string& path, SnapshotSource& src,
                    const std::atomic<bool>* cancel = nullptr,
                    const std::function<void(const char*)>& hook = {});

} // namespace connwatch
