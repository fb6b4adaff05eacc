// SPDX-License-Identifier: GPL-2.0-only
// The one owner of blocks and allow entries: the kernel's lists (through
// BlockMaps), what they do not say (origin, reason, wall-clock times), the state
// file, the allowlist's reconciliation, expiry, and the policy — an allow entry
// wins over a block, always.
//
// It does not log (the Manager says what happened, once): every operation
// returns what it did or why it refused.
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "blocks/block_index.h"
#include "blocks/block_maps.h"
#include "blocks/state.h"
#include "common/block_kinds.h"

namespace connwatch {

struct BlockCounts {
    size_t scan = 0, manual = 0, crowdsec = 0;
    size_t total() const { return scan + manual + crowdsec; }
    void count(BlockOrigin o)
    {
        (o == BlockOrigin::Manual ? manual : o == BlockOrigin::Crowdsec ? crowdsec : scan)++;
    }
};

// A block that fell due: its prefix and the wall-clock time it expired at.
struct Expired {
    Cidr prefix;
    std::time_t when = 0;
};

class BlockTable {
public:
    BlockTable(BlockMaps& maps, std::string state_path);

    // ---- start-up
    struct Restored {
        size_t kept = 0;     // entries the (pinned) kernel maps still held
        size_t restored = 0; // manual blocks put back from the state file
        size_t restored_crowdsec = 0; // mirrored CrowdSec decisions put back from it
        std::string warning; // the state file could not be read, ...
    };
    // Reads the state file: metadata of the blocks the kernel still holds, and
    // the manual blocks a reboot took out of the kernel; runtime allow entries.
    Restored restore();

    // ---- the allowlist
    // Makes the kernel's allowlist exactly configured + runtime + own, and lifts
    // the blocks an entry now covers (returned). All or nothing: when the
    // entries do not fit, or the kernel refuses one, the allowlist is left as
    // it was and the error says why.
    struct AllowUpdate {
        std::string error; // empty: done
        std::vector<Cidr> lifted;
    };
    AllowUpdate set_allow_sources(std::vector<Cidr> configured, std::vector<Cidr> own);
    // connwatchctl allow / disallow: a runtime entry, kept in the state file.
    AllowUpdate allow(const Cidr& prefix);
    AllowUpdate disallow(const Cidr& prefix);
    // Every entry in force and where it comes from (runtime, then configured,
    // then own, when a prefix has several sources).
    std::vector<std::pair<Cidr, AllowSource>> allow_entries() const;
    size_t allow_size() const { return applied_.size(); }
    // The entry that covers `prefix`, if any.
    std::optional<Cidr> allow_covering(const Cidr& prefix) const;

    // ---- blocks
    // A manual block; refused (the text says why and what to do) when an allow
    // entry covers it, when it is dangerous (see danger()) and not forced, or
    // when its list is full. A zero or absent duration: until removed.
    // Returns the record made.
    std::variant<BlockRecord, std::string> block(const Cidr& prefix,
                                                 std::optional<std::chrono::seconds> duration,
                                                 std::string reason, bool force);
    // Why a block of prefix would be dangerous enough to need force, or "":
    // wider than /8 (IPv4) or /16 (IPv6) -- 0.0.0.0/0 and ::/0 among them --
    // or covering an own address of the host (its neighbours, its gateway).
    std::string danger(const Cidr& prefix) const;
    // False when it was not blocked.
    bool unblock(const Cidr& prefix);

    // ---- flush: every block removed, a slice at a time (a million blocks take
    // seconds; the event loop runs between slices). flush_begin() starts one
    // (or, while one is under way, does nothing: the caller joins it); each
    // flush_step() removes up to `max` blocks -- the exact ones in batches
    // (bpf_map_delete_batch), their sources' scan state reset -- and says
    // whether the flush is complete. A block made after flush_begin() (its
    // kernel entry's creation time is later) is kept. The removals write no
    // journal line each: the state file gets a snapshot when the flush is
    // complete.
    void flush_begin(uint64_t now_ns);
    bool flush_step(size_t max);
    bool flushing() const { return flush_.has_value(); }
    // What the last flush completed removed, by origin.
    const BlockCounts& flushed() const { return flushed_; }
    // A flush whole (tests, small tables): begin, step until complete.
    BlockCounts flush();
    // Exact blocks a flush_step() removes at most (a slice of the kernel's
    // walk, one delete batch): tens of milliseconds.
    static constexpr size_t kFlushSlice = 16384;
    // The kernel made a block on a scan: remember why. `blocked` is the
    // scanner's address, or its prefix (ipv4-prefix, ipv6-prefix).
    void record_scan_block(const Cidr& blocked, std::string reason, std::time_t created,
                           std::time_t expires);
    void record_scan_block(const Address& src, std::string reason, std::time_t created,
                           std::time_t expires)
    {
        record_scan_block(Cidr::host(src), std::move(reason), created, expires);
    }

    // The kernel finds an automatic prefix block (ipv4-prefix, ipv6-prefix) by
    // masking a source to the length configured now: after a change of
    // length, the blocks of another length are moved to the CIDR trie (same
    // deadline, origin scan), which matches any length. Called at start and
    // on reload, before the new lengths reach the kernel. Returns those that
    // did not fit the trie (max-cidr-blocks): they stay, but no longer match.
    std::vector<Cidr> move_prefix_blocks(unsigned ipv4_prefix, unsigned ipv6_prefix);
    // The automatic prefix block whose kernel key is the address a (the
    // prefix's first address), if the table knows one.
    std::optional<Cidr> prefix_block_at(const Address& a) const;
    // The kernel refused the automatic block of `unit` (the scanner, or its
    // prefix: ipv4-prefix, ipv6-prefix): block_addr is full. Makes
    // room as docs/SECURITY.md ("A full blocklist") says: removes the oldest
    // replaceable automatic block -- an exact scan block with the earliest
    // deadline that is not a repeat offence (the kernel's history says
    // offence >= 2 for this very block); never a manual or CrowdSec block,
    // nor a scan block without a deadline (block-duration 0: until removed)
    // -- and puts src's block `b` in its place, with its record (reason,
    // wall-clock created and expires). O(log n) amortised: the index's heap
    // of scan blocks, each candidate checked with the kernel first (gone
    // meanwhile: forgotten; renewed: re-indexed; escalated: marked, never
    // a candidate again) before it is removed.
    //
    // A candidate found already due is removed as expired (the sweep's work,
    // done early). Should the kernel take the freed room first (another
    // scanner's block on another CPU), a further one is tried, up to
    // kMaxReplaceTries. Nothing replaceable: nothing removed, made == false
    // (refused as before).
    struct Replacement {
        std::vector<Cidr> replaced; // removed to make room (reason replaced)
        std::vector<Cidr> expired;  // found due on the way, removed as expired
        bool made = false;          // src's block is in the kernel
    };
    Replacement replace_oldest_scan_block(const Cidr& unit, const cw_block& b,
                                          std::string reason, std::time_t created,
                                          std::time_t expires);
    static constexpr int kMaxReplaceTries = 3;

    // ---- CrowdSec decisions (origin crowdsec, docs/CROWDSEC.md)
    // Mirrors a ban decision of the LAPI: `prefix` blocked for `remaining`
    // from now. The policy of a manual block applies (an allow entry wins, a
    // dangerous prefix is refused: the LAPI is not trusted to cut off a whole
    // network or this host), never forced. A manual block of the same prefix is
    // the operator's and stays as it is; so does a scan block that lasts at
    // least as long (the fleet's copy of this host's own scan); a shorter scan
    // block becomes the decision.
    struct Mirror {
        enum class Outcome { Added, Updated, Kept, Refused } outcome = Outcome::Refused;
        std::string why; // Refused: the reason
    };
    Mirror mirror(const Cidr& prefix, std::chrono::seconds remaining, std::string reason);
    // Many at once (a pull's decisions; a startup pull of a community
    // blocklist is 100 k): mirror()'s policy entry by entry, the kernel's maps
    // written in batches. Result i is item i's.
    struct MirrorItem {
        Cidr prefix;
        std::chrono::seconds remaining;
        std::string reason;
    };
    std::vector<Mirror> mirror_many(std::vector<MirrorItem> items);
    // Lifts the block of prefix if it is a mirrored decision (never a manual or
    // scan block of the same prefix). False when there was none.
    bool withdraw(const Cidr& prefix);
    // withdraw() for many, in batches; returns the prefixes lifted.
    std::vector<Cidr> withdraw_many(const std::vector<Cidr>& prefixes);
    // The prefixes blocked by mirrored decisions.
    std::vector<Cidr> mirrored() const;

    // Once a tick: removes the blocks due at now_ns (the kernel already
    // ignores them; this frees their room), found in the deadline index, not
    // by walking the map; and reads one slice of the kernel's blocklist to
    // learn the blocks whose events were lost (a full ring buffer) and forget
    // those that vanished (reconciliation: a whole round takes
    // kReconcileRounds ticks or more). `left` is the maintained count.
    struct Sweep {
        std::vector<Expired> expired;
        BlockCounts left;
    };
    Sweep sweep_expired(uint64_t now_ns);

    // ---- many at once (connwatchctl block --file): block()'s policy entry by
    // entry, the kernel's maps written in batches.
    struct BulkItem {
        Cidr prefix;
        std::optional<std::chrono::seconds> duration; // absent or 0: until removed
        std::string reason;
    };
    struct BulkResult {
        std::vector<BlockRecord> added;
        size_t present = 0; // already blocked (or twice in the list): left as they are
        std::vector<std::pair<size_t, std::string>> refused; // index in items, why
    };
    BulkResult block_many(const std::vector<BulkItem>& items, bool force);
    struct BulkRemoval {
        std::vector<Cidr> removed;
        size_t absent = 0; // not blocked
    };
    BulkRemoval unblock_many(const std::vector<Cidr>& prefixes);

    // ---- views
    // A page of the blocks: the prefix blocks first, in address order (Cidr's),
    // then the single addresses in the kernel's own order (its hash buckets:
    // a walk that resumes where it stopped, whatever was added or removed
    // meanwhile, with no copy of a million entries). Those that pass the
    // filter, from `from` on; `budget` bounds the entries looked at, so that
    // a page of a rare filter costs a bounded time. A page may hold more than
    // `max` (the kernel hands out whole buckets); the caller keeps the rest.
    // Blocks added or removed during a listing are listed or not, none twice.
    struct ListFilter {
        std::optional<BlockOrigin> origin;
        // Blocks overlapping it: inside it, or covering it.
        std::optional<Cidr> match;
        bool passes(const BlockRecord& r) const;
    };
    struct ListCursor {
        bool hosts = false;        // past the prefix blocks
        std::optional<Cidr> after; // the last prefix block looked at
        uint64_t bucket = 0;       // where the kernel walk goes on (BlockMaps' slice cursor)
    };
    struct ListPage {
        std::vector<BlockRecord> records;
        ListCursor next;
        bool end = false;
    };
    ListPage list_page(const ListFilter& filter, const ListCursor& from, size_t max,
                       size_t budget) const;
    // Kept, not walked: what the index and the prefix list hold.
    BlockCounts counts() const;
    // The userspace memory the blocks take (index, prefix list, records), in
    // bytes: docs/SCALE.md, the bench.
    size_t memory_bytes() const;

    // Scan blocks whose reason (the scan's line) is kept for list and the state
    // file; past it a scan block is listed without one (it was logged when
    // made). Manual and prefix blocks always keep theirs.
    static constexpr size_t kMaxScanRecords = 16384;
    // Records that manual exact blocks share (a reason with its creation and
    // expiry times: a bulk import's request makes one), numbered in 16 bits
    // in the index's entry; past this many distinct ones a block gets a
    // record of its own.
    static constexpr size_t kMaxSharedRecords = 65535;
    // Manual exact blocks whose record is shared (none of their own), and the
    // shared records in use.
    size_t shared_blocks() const { return shared_blocks_; }
    size_t shared_records() const { return shared_ids_.size(); }
    // The block's record as list shows it and the state file keeps it
    // (nullopt: not blocked, as far as the table knows).
    std::optional<BlockRecord> record(const Cidr& prefix) const;
    // Reconciliation: at least this many exact blocks read a tick, and enough
    // that a whole round takes at most kReconcileRounds ticks, up to kMax.
    // (Idle at a million blocks the slice is most of connwatchd's CPU time:
    // ~0.5 us a block, docs/SCALE.md.)
    static constexpr size_t kReconcileMinSlice = 4096;
    static constexpr size_t kReconcileMaxSlice = 16384;
    static constexpr size_t kReconcileRounds = 120;
    // Deadlines handled a tick at most (the rest at the next ones): a million
    // blocks falling due at once must not stall the loop.
    static constexpr size_t kMaxDuePerTick = 65536;
    uint64_t manual_added() const { return manual_added_; }
    uint64_t removed(RemovalReason r) const;

    // ---- persistence
    // Writes what changed since the last write: its lines appended to the
    // journal, or -- when they could not be (a write failed; a flush writes
    // none) -- a new snapshot and an empty journal, at once. A failure leaves
    // the table dirty: the next call (the Manager's, every second) retries,
    // with a snapshot. Journal lines are synced to the disk at most once a
    // second (an fdatasync costs milliseconds: one per block made one by one
    // cost seconds per thousand): a call a second later, or the Manager's
    // tick, syncs what the calls before wrote.
    //
    // When the journal has outgrown the blocks (and after restore) it is
    // compacted into a new snapshot: at once when the blocks are fewer than
    // async_snapshot_from; otherwise by a thread of its own
    // (StateFile::compact_begin), the loop going on meanwhile -- at a million
    // blocks the snapshot is seconds of CPU, which a request or a tick must
    // not wait for. Each call sees whether that thread is done and puts the
    // shorter journal in place.
    //
    // `stopping` (SIGTERM): the lines are written and synced, a compaction
    // under way is abandoned (the journal is whole) and none begins; a
    // snapshot that correctness needs (see above) is still written.
    struct Save {
        std::string error; // why the write failed; empty: written, or nothing to write
        // Worth a line in the log: a failure that is new (the first, a different
        // error, or new changes that are not saved either), or the first write
        // that succeeds after failures (then `recovered`). The same failure
        // again at every retry is not: the log would repeat it every second.
        bool say = false;
        bool recovered = false;
    };
    Save save_if_dirty(bool stopping = false);
    // Blocks with a record (own or shared) from which a compaction is
    // written by a thread of its own.
    static constexpr size_t kAsyncSnapshotFrom = 16384;
    size_t async_snapshot_from = kAsyncSnapshotFrom; // tests set it lower
    bool compacting() const { return file_.compacting(); }
    StateFile& state_file() { return file_; } // tests: compaction_hook
    const std::string& state_path() const { return state_path_; }

private:
    // Before an exact block of host: moves an automatic prefix block keyed at
    // its address to the trie. False: the trie is full (nothing changed).
    bool free_prefix_key(const Cidr& host);
    bool remove(const Cidr& prefix, RemovalReason why);
    // The kernel holds (or just got) this block: index it.
    void note_block(const Cidr& prefix, const cw_block& b);
    // It is gone from the kernel: forget it and its record.
    void forget(const Cidr& prefix);
    bool present(const Cidr& prefix) const; // indexed: the kernel holds it
    bool keep_record(BlockRecord r); // false: a scan record past kMaxScanRecords
    bool erase_record(const Cidr& prefix);
    void reconcile();
    // What follows a block's removal from the kernel.
    void forget_removed(const Cidr& prefix, RemovalReason why);
    // Why block() (origin Manual: with the operator's fix) or mirror()
    // (origin Crowdsec: the reason alone, never forced) refuses prefix before
    // it asks the kernel, or "".
    std::string refusal(const Cidr& prefix, bool force, BlockOrigin origin) const;
    std::string full_message(const Cidr& prefix) const;
    // block_many's and mirror_many's end: writes the batch into the kernel's
    // maps and, for each entry written, indexes it, keeps its record (with
    // reasons[k]) and journals it. Entry k's record, or nullopt: its list is
    // full.
    std::vector<std::optional<BlockRecord>> commit(
        const std::vector<std::pair<Cidr, cw_block>>& batch, BlockOrigin origin,
        std::vector<std::string> reasons);
    std::string apply(const std::set<Cidr>& wanted, std::vector<Cidr>* lifted);
    std::set<Cidr> wanted(const std::vector<Cidr>& runtime) const;
    BlockRecord record_of(const Cidr& prefix, const cw_block& b) const;
    // The record kept for a block (its own, or a shared one), else what its
    // kernel entry says.
    BlockRecord record_for(const Cidr& prefix, const cw_block& b) const;
    // Drops an exact block's shared record, if it has one; true if it had.
    bool unshare(HostEntry& e);

    BlockMaps& maps_;
    std::string state_path_;
    // Every exact block the kernel holds, as far as connwatchd knows: address,
    // deadline, origin (24 bytes; block_index.h). Every prefix block, with its
    // kernel value (only userspace makes them; at most max-cidr-blocks), and
    // their deadlines.
    BlockIndex hosts_;
    std::map<Cidr, cw_block> cidrs_;
    std::set<std::pair<uint64_t, Cidr>> cidr_due_; // (expires_ns, prefix); stale ones skipped
    size_t cidr_scan_ = 0, cidr_crowdsec_ = 0;
    // What the kernel's entries do not say (reason, wall-clock times), for the
    // blocks that have it: manual and prefix blocks, and up to
    // kMaxScanRecords scan blocks. A block without a record is listed from
    // its kernel entry.
    std::map<Cidr, BlockRecord> meta_;
    size_t scan_records_ = 0;
    // Manual exact blocks do not each keep a record: most of a million-line
    // import say the same (a reason, the same times), so the record is kept
    // once, counted, and the block's index entry holds its number (1 up to
    // kMaxSharedRecords; 0 of the index means none). 24 bytes a block instead
    // of a ~140-byte map node (docs/SCALE.md).
    struct Shared {
        std::string reason;
        std::time_t created = 0, expires = 0;
        size_t refs = 0;
    };
    std::vector<Shared> shared_{1}; // [0] unused
    std::vector<uint16_t> shared_free_;
    std::map<std::tuple<std::string, std::time_t, std::time_t>, uint16_t> shared_ids_;
    size_t shared_blocks_ = 0;
    uint16_t share(const BlockRecord& r); // 0: no number left
    // A flush under way: the prefix blocks to remove, the kernel walk's
    // cursor, the sources with scan state (sorted), what was removed.
    struct Flush {
        uint64_t started_ns = 0;
        std::vector<Cidr> cidrs;
        size_t cidr_at = 0;
        uint64_t cursor = 0;
        bool hosts_started = false;
        std::optional<std::vector<cw_addr>> scanned;
        BlockCounts removed;
    };
    std::optional<Flush> flush_;
    BlockCounts flushed_;
    bool quiet_ = false; // removals write no journal line (a flush: a snapshot follows)
    uint64_t reconcile_cursor_ = 0;
    bool round_open_ = false;
    StateFile file_;
    // Journal lines not written yet (save_if_dirty writes them), and how many.
    std::string pending_;
    std::size_t pending_lines_ = 0;
    bool rewrite_ = false; // the next save writes a snapshot at once, not journal lines
    bool compact_ = false; // the next save compacts the journal into a snapshot
    // What a snapshot is written from: the records copied, the shared ones
    // by number (milliseconds at a million blocks).
    SnapshotSource snapshot_source() const;
    std::string write_changes(bool stopping);
    uint64_t synced_ns_ = 0; // when the journal was last synced (monotonic)
    void note(std::string line);
    std::vector<Cidr> configured_, runtime_, own_;
    std::set<Cidr> applied_; // what the kernel's allowlist holds, as we made it
    uint64_t manual_added_ = 0;
    std::map<RemovalReason, uint64_t> removed_;
    void mark_dirty();
    bool dirty_ = false;
    bool unsaid_change_ = false; // changed since the last failure was said
    std::string save_error_;     // the last write's failure; empty: it succeeded
};

} // namespace connwatch
