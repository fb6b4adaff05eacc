// SPDX-License-Identifier: GPL-2.0-only
// The control protocol between connwatchctl and connwatchd (docs/CONTROL.md), as
// types: one request type and one response type per command, and the Handler the
// daemon implements. The JSON form of these types is in protocol/wire.h; the
// server (control/server.h) and the client (protocol/client.h) only move lines.
// Nothing here touches the kernel: connwatchctl links this without libbpf.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/address.h"
#include "common/block_kinds.h"

namespace connwatch::protocol {

// The version this build speaks. A request without "protocol" is version 1, so
// clients and scripts written before the field existed keep working.
inline constexpr int kVersion = 1;

// A request larger than this is refused: every real request is under 1 KiB.
inline constexpr std::size_t kMaxRequestBytes = 64 * 1024;

enum class Command {
    Status, List, Block, Unblock, Allow, Disallow, Flush, Reload, BlockMany, UnblockMany
};
inline constexpr Command kCommands[] = {Command::Status,   Command::List,     Command::Block,
                                        Command::Unblock,  Command::Allow,    Command::Disallow,
                                        Command::Flush,    Command::Reload,   Command::BlockMany,
                                        Command::UnblockMany};

// The most entries one block-many or unblock-many request carries. With the
// request size limit, it bounds the work one request makes the daemon's event
// loop do: a long list is sent as many requests (connwatchctl does).
inline constexpr std::size_t kMaxBulkEntries = 4096;

std::string_view to_string(Command c); // "status", ...
std::optional<Command> command_from(std::string_view s);

// Who asked, as the kernel saw it at connect() (SO_PEERCRED).
struct Peer {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
};

struct StatusRequest {};
// Which blocks a list answer holds; every field optional (absent: all).
struct ListRequest {
    std::optional<BlockOrigin> origin;
    // Blocks that overlap this prefix: inside it (it covers them) or covering it
    // (a wider block that applies to its addresses).
    std::optional<Cidr> match;
    std::optional<uint64_t> limit; // at most this many blocks

    bool operator==(const ListRequest&) const = default;
};
struct FlushRequest {};
struct ReloadRequest {};
struct BlockRequest {
    Cidr prefix;
    std::optional<std::chrono::seconds> duration; // absent or 0: until removed
    std::string reason;                           // at most 256 bytes, no control characters
    // Block even what is dangerous (a prefix wider than /8 or /16, or one that
    // covers an own address of the host). Sent only when true, so that a
    // connwatchd from before the field still takes every other block.
    bool force = false;
};
struct UnblockRequest {
    Cidr prefix;
};
struct AllowRequest {
    Cidr prefix;
};
struct DisallowRequest {
    Cidr prefix;
};
// One line of a bulk block: the block request's fields, without force (which
// the request gives for all of them).
struct BulkBlock {
    Cidr prefix;
    std::optional<std::chrono::seconds> duration; // absent or 0: until removed
    std::string reason;

    bool operator==(const BulkBlock&) const = default;
};
struct BlockManyRequest {
    std::vector<BulkBlock> entries; // at most kMaxBulkEntries
    bool force = false;             // sent only when true, as for block
};
struct UnblockManyRequest {
    std::vector<Cidr> prefixes; // at most kMaxBulkEntries
};
using Request = std::variant<StatusRequest, ListRequest, BlockRequest, UnblockRequest,
                             AllowRequest, DisallowRequest, FlushRequest, ReloadRequest,
                             BlockManyRequest, UnblockManyRequest>;
Command command_of(const Request& r);

// The request of command c from the fields a client has (the parser and
// connwatchctl both build requests this way). Fields the command does not take
// are ignored; a command that takes a prefix throws std::invalid_argument
// without one. Validation of the values is the caller's (parse_request's).
Request make_request(Command c, const std::optional<Cidr>& prefix = std::nullopt,
                     const std::optional<std::chrono::seconds>& duration = std::nullopt,
                     std::string reason = {}, bool force = false);

struct Interface {
    std::string name;
    std::string xdp_mode; // "native" or "generic", as attached
};
// The CrowdSec link (docs/CROWDSEC.md), when configured. Times are Unix
// seconds, 0 = never / not failing.
// The two halves are declared outside CrowdsecStatus: clang counts a nested struct
// with default member initializers as not default-constructible until the enclosing
// class is complete, which std::optional<Nested> and nlohmann's get<>() need.
struct CrowdsecBouncerStatus {
    std::string lapi_url;
    int64_t last_pull = 0;     // the last successful pull
    uint64_t decisions = 0;    // blocks mirrored now
    int64_t failing_since = 0; // the first failed pull of the outage under way
    uint64_t failed_pulls = 0; // failed in a row
};
struct CrowdsecWatcherStatus {
    std::string url, login;
    uint64_t alerts_sent = 0, alerts_queued = 0, alerts_dropped = 0;
    int64_t failing_since = 0; // sending alerts fails since then
};
struct CrowdsecStatus {
    using Bouncer = CrowdsecBouncerStatus;
    using Watcher = CrowdsecWatcherStatus;
    std::optional<Bouncer> bouncer;
    std::optional<Watcher> watcher;
};
// The reverse-path check of a scanner's source (rp-filter; docs/SECURITY.md).
struct RpFilterStatus {
    std::string mode;    // as configured: "auto", "strict", "loose" or "off"
    bool active = false; // checking now: false for "off", or while the route mirror is down
    // For "auto": each watched interface and the mode its rp_filter sysctls
    // give it ("strict", "loose", "off"), in the daemon's order (a JSON
    // object on the wire: read back, by name); empty otherwise (every
    // interface then has `mode`).
    std::vector<std::pair<std::string, std::string>> interfaces;
};
// `connwatchctl status`'s words for it: "auto (eth0 strict, eth1 off)",
// "strict", "off", "strict, not checking: no route mirror (the log says why)".
std::string describe(const RpFilterStatus& r);

struct StatusResponse {
    std::string version;
    int64_t pid = 0;
    std::vector<Interface> interfaces; // attached now
    // Configured but absent (deleted after start): attached again when they
    // come back. Absent from the JSON of a connwatchd before this field.
    std::vector<std::string> missing_interfaces;
    uint32_t threshold = 0;
    std::string window;         // as the configuration writes it: "1m"
    std::string block_duration; // "10m"; "0" = until removed
    bool monitor_only = false;
    uint32_t max_blocks = 0;
    uint64_t blocks = 0;
    uint64_t allow = 0;
    std::vector<std::pair<std::string, uint64_t>> counters; // name -> value
    // Absent when CrowdSec is not configured (and from a connwatchd before it).
    std::optional<CrowdsecStatus> crowdsec;
    // Absent from a connwatchd before the field.
    std::optional<RpFilterStatus> rp_filter;
};
struct BlockEntry {
    Cidr prefix;
    BlockOrigin origin = BlockOrigin::Scan;
    std::string reason;
    std::time_t created = 0; // Unix seconds
    std::time_t expires = 0; // Unix seconds; 0 = until removed
    int64_t expires_in = -1; // seconds from now; -1 = until removed
    // A scan block with escalation on: which offence of its source it is
    // (1 = the first of its chain); 0 = not counted. Absent from the JSON of
    // a connwatchd before repeat offenders: read as 0.
    uint32_t offence = 0;
};
struct AllowEntry {
    Cidr prefix;
    AllowSource source = AllowSource::Configuration;
};
// The list answer read whole (small lists, tests). The daemon writes it in
// pieces (ListStream), and connwatchctl reads it so (protocol/client.h).
struct ListResponse {
    std::vector<BlockEntry> blocks; // as listed: prefix blocks by address, then addresses
    std::vector<AllowEntry> allow;
};
// The blocks of a list answer, handed out a page at a time as the client takes
// the answer: the daemon never holds the whole list.
class BlockCursor {
public:
    virtual ~BlockCursor() = default;
    // Appends at most `max` blocks, after those handed out before, to `out`.
    // False when there are no more (out may have got some all the same).
    // May append none and return true: it looked at a bounded number of
    // entries, none of which matched.
    virtual bool next(std::vector<BlockEntry>& out, std::size_t max) = 0;
};
struct ListStream {
    std::vector<AllowEntry> allow; // small: the allowlist's capacity bounds it
    std::unique_ptr<BlockCursor> blocks;
};
struct BlockResponse {
    Cidr prefix;
    std::time_t expires = 0; // Unix seconds; 0 = until removed
};
struct PrefixResponse { // unblock, allow, disallow
    Cidr prefix;
};
// A bulk request's entries are answered by their index in it (0-based).
struct BulkRefusal {
    uint64_t index = 0;
    std::string error;

    bool operator==(const BulkRefusal&) const = default;
};
struct BlockManyResponse {
    uint64_t added = 0;
    uint64_t present = 0; // already blocked: left as they are
    std::vector<BulkRefusal> refused;
};
struct UnblockManyResponse {
    uint64_t removed = 0;
    uint64_t absent = 0; // were not blocked
};
struct FlushResponse {
    uint64_t removed = 0;
};
struct ReloadResponse {};

// The daemon declines; the text is for the operator, and says what to do.
struct Refusal {
    std::string error;
};
template <class T>
using Answer = std::variant<T, Refusal>;

// What connwatchd implements; one method per command. An exception thrown here
// becomes an error answer (protocol::dispatch), never a dropped connection.
class Handler {
public:
    virtual ~Handler() = default;
    virtual Answer<StatusResponse> status(const Peer&) = 0;
    virtual Answer<ListStream> list(const ListRequest&, const Peer&) = 0;
    virtual Answer<BlockResponse> block(const BlockRequest&, const Peer&) = 0;
    virtual Answer<PrefixResponse> unblock(const UnblockRequest&, const Peer&) = 0;
    virtual Answer<PrefixResponse> allow(const AllowRequest&, const Peer&) = 0;
    virtual Answer<PrefixResponse> disallow(const DisallowRequest&, const Peer&) = 0;
    virtual Answer<FlushResponse> flush(const Peer&) = 0;
    // A flush made a slice at a time, so that a million blocks do not hold
    // the daemon's loop: each call of the returned function does one slice
    // and gives the answer once the flush is complete (nullopt: not yet; the
    // server calls it again after the rest of the loop). By default flush(),
    // whole, at the first call.
    using FlushSteps = std::function<std::optional<Answer<FlushResponse>>()>;
    virtual FlushSteps flush_steps(const Peer& p)
    {
        return [this, p]() -> std::optional<Answer<FlushResponse>> { return flush(p); };
    }
    virtual Answer<ReloadResponse> reload(const Peer&) = 0;
    virtual Answer<BlockManyResponse> block_many(const BlockManyRequest&, const Peer&) = 0;
    virtual Answer<UnblockManyResponse> unblock_many(const UnblockManyRequest&, const Peer&) = 0;
};

} // namespace connwatch::protocol
