// SPDX-License-Identifier: GPL-2.0-only
#include "protocol/protocol.h"

#include <iterator>
#include <stdexcept>
#include <type_traits>

namespace connwatch::protocol {

std::string_view to_string(Command c)
{
    // The names are the wire's "command" values: never change one.
    switch (c) {
    case Command::Status: return "status";
    case Command::List: return "list";
    case Command::Block: return "block";
    case Command::Unblock: return "unblock";
    case Command::Allow: return "allow";
    case Command::Disallow: return "disallow";
    case Command::Flush: return "flush";
    case Command::Reload: return "reload";
    case Command::BlockMany: return "block-many";
    case Command::UnblockMany: return "unblock-many";
    }
    return "?";
}

std::string describe(const RpFilterStatus& r)
{
    if (r.mode == "off")
        return "off";
    if (!r.active)
        return r.mode + ", not checking: no route mirror (the log says why)";
    if (r.mode != "auto" || r.interfaces.empty())
        return r.mode;
    std::string each;
    for (const auto& [name, mode] : r.interfaces)
        each += (each.empty() ? "" : ", ") + name + " " + mode;
    return r.mode + " (" + each + ")";
}

std::optional<Command> command_from(std::string_view s)
{
    for (Command c : kCommands)
        if (to_string(c) == s)
            return c;
    return std::nullopt;
}

namespace {

// Request's alternative number N is the request of Command N, and kCommands[N] is
// Command N: command_of() is then an index, and a reordering fails the build.
template <Command C, class T>
constexpr bool alternative_is()
{
    constexpr auto n = static_cast<std::size_t>(C);
    return kCommands[n] == C && std::is_same_v<std::variant_alternative_t<n, Request>, T>;
}
static_assert(std::variant_size_v<Request> == std::size(kCommands));
static_assert(alternative_is<Command::Status, StatusRequest>() &&
              alternative_is<Command::List, ListRequest>() &&
              alternative_is<Command::Block, BlockRequest>() &&
              alternative_is<Command::Unblock, UnblockRequest>() &&
              alternative_is<Command::Allow, AllowRequest>() &&
              alternative_is<Command::Disallow, DisallowRequest>() &&
              alternative_is<Command::Flush, FlushRequest>() &&
              alternative_is<Command::Reload, ReloadRequest>() &&
              alternative_is<Command::BlockMany, BlockManyRequest>() &&
              alternative_is<Command::UnblockMany, UnblockManyRequest>());

} // namespace

Command command_of(const Request& r)
{
    return kCommands[r.index()];
}

Request make_request(Command c, const std::optional<Cidr>& prefix,
                     const std::optional<std::chrono::seconds>& duration, std::string reason,
                     bool force)
{
    auto need_prefix = [&] {
        if (!prefix)
            throw std::invalid_argument("'" + std::string(to_string(c)) +
                                        "' needs an address or prefix");
        return *prefix;
    };
    switch (c) {
    case Command::Status: return StatusRequest{};
    case Command::List: return ListRequest{};
    case Command::Block: return BlockRequest{need_prefix(), duration, std::move(reason), force};
    case Command::Unblock: return UnblockRequest{need_prefix()};
    case Command::Allow: return AllowRequest{need_prefix()};
    case Command::Disallow: return DisallowRequest{need_prefix()};
    case Command::Flush: return FlushRequest{};
    case Command::Reload: return ReloadRequest{};
    case Command::BlockMany: return BlockManyRequest{};
    case Command::UnblockMany: return UnblockManyRequest{};
    }
    throw std::invalid_argument("unknown command");
}

} // namespace connwatch::protocol
