// SPDX-License-Identifier: GPL-2.0-only
// PROVISIONAL: the interface agreed with the protocol branch, types only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/address.h"
#include "common/block_kinds.h"

namespace connwatch::protocol {
inline constexpr int kVersion = 1;
enum class Command { Status, List, Block, Unblock, Allow, Disallow, Flush, Reload };
struct Peer { pid_t pid = 0; uid_t uid = 0; gid_t gid = 0; };
struct StatusRequest {}; struct ListRequest {}; struct FlushRequest {}; struct ReloadRequest {};
struct BlockRequest { Cidr prefix; std::optional<std::chrono::seconds> duration; std::string reason; };
struct UnblockRequest { Cidr prefix; };
struct AllowRequest { Cidr prefix; };
struct DisallowRequest { Cidr prefix; };
using Request = std::variant<StatusRequest, ListRequest, BlockRequest, UnblockRequest,
                             AllowRequest, DisallowRequest, FlushRequest, ReloadRequest>;
struct Interface { std::string name; std::string xdp_mode; };
struct StatusResponse {
    std::string version; int64_t pid = 0; std::vector<Interface> interfaces;
    uint32_t threshold = 0; std::string window; std::string block_duration;
    bool monitor_only = false; uint32_t max_blocks = 0; uint64_t blocks = 0; uint64_t allow = 0;
    std::vector<std::pair<std::string, uint64_t>> counters;
};
struct BlockEntry { Cidr prefix; BlockOrigin origin; std::string reason;
                    std::time_t created = 0; std::time_t expires = 0; int64_t expires_in = -1; };
struct AllowEntry { Cidr prefix; AllowSource source; };
struct ListResponse { std::vector<BlockEntry> blocks; std::vector<AllowEntry> allow; };
struct BlockResponse { Cidr prefix; std::time_t expires = 0; };
struct PrefixResponse { Cidr prefix; };
struct FlushResponse { uint64_t removed = 0; };
struct ReloadResponse {};
struct Refusal { std::string error; };
template <class T> using Answer = std::variant<T, Refusal>;
class Handler {
public:
    virtual ~Handler() = default;
    virtual Answer<StatusResponse> status(const Peer&) = 0;
    virtual Answer<ListResponse> list(const Peer&) = 0;
    virtual Answer<BlockResponse> block(const BlockRequest&, const Peer&) = 0;
    virtual Answer<PrefixResponse> unblock(const UnblockRequest&, const Peer&) = 0;
    virtual Answer<PrefixResponse> allow(const AllowRequest&, const Peer&) = 0;
    virtual Answer<PrefixResponse> disallow(const DisallowRequest&, const Peer&) = 0;
    virtual Answer<FlushResponse> flush(const Peer&) = 0;
    virtual Answer<ReloadResponse> reload(const Peer&) = 0;
};
} // namespace connwatch::protocol
