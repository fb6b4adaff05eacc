// SPDX-License-Identifier: GPL-2.0-only
// The JSON form of the control protocol's types (protocol/protocol.h), exactly
// as docs/CONTROL.md shows it: one object per line each way. Both ends use these
// functions, so the daemon's answers and connwatchctl's reading of them cannot
// drift apart.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "protocol/protocol.h"

namespace connwatch::protocol {

// ---- requests -----------------------------------------------------------------------

// Parses and validates one request line. Returns the request, or an error text
// fit to send back ({"ok":false,"error":...}).
std::variant<Request, std::string> parse_request(std::string_view line);

// The request a client sends. "protocol" is left out while it is 1 (its default),
// so a new connwatchctl still talks to a connwatchd from before the field.
nlohmann::json request_json(const Request& r);

// ---- responses (nlohmann's ADL hooks) ------------------------------------------------
// The fields of a successful answer; dispatch() adds "ok". from_json throws
// (nlohmann::json::exception, or Error for a value that does not parse) when a
// field is missing or invalid: a typed reader must not print made-up defaults.

void to_json(nlohmann::json& j, const Interface& v);
void from_json(const nlohmann::json& j, Interface& v);
void to_json(nlohmann::json& j, const StatusResponse& v);
void from_json(const nlohmann::json& j, StatusResponse& v);
void to_json(nlohmann::json& j, const BlockEntry& v);
void from_json(const nlohmann::json& j, BlockEntry& v);
void to_json(nlohmann::json& j, const AllowEntry& v);
void from_json(const nlohmann::json& j, AllowEntry& v);
void to_json(nlohmann::json& j, const ListResponse& v);
void from_json(const nlohmann::json& j, ListResponse& v);
void to_json(nlohmann::json& j, const BlockResponse& v);
void from_json(const nlohmann::json& j, BlockResponse& v);
void to_json(nlohmann::json& j, const PrefixResponse& v);
void from_json(const nlohmann::json& j, PrefixResponse& v);
void to_json(nlohmann::json& j, const FlushResponse& v);
void from_json(const nlohmann::json& j, FlushResponse& v);
void to_json(nlohmann::json& j, const ReloadResponse& v);
void from_json(const nlohmann::json& j, ReloadResponse& v);

// {"ok":false,"error":message}
nlohmann::json error_response(const std::string& message);

// The Refusal a daemon's answer is: "ok" is anything but true. None for a
// successful answer.
std::optional<Refusal> refusal_in(const nlohmann::json& j);

// A daemon's answer, typed: the Refusal, or the response (which throws as
// from_json does when the answer is not one).
template <class T>
Answer<T> answer_from(const nlohmann::json& j)
{
    if (auto r = refusal_in(j))
        return *r;
    return j.get<T>();
}

// Calls the handler's method for the request and returns the whole answer line's
// object, with "ok". Lets no exception out: a Refusal and an exception alike
// become {"ok":false,"error":...}, so one bad request cannot hurt the daemon.
nlohmann::json dispatch(Handler& handler, const Request& request, const Peer& peer);

} // namespace connwatch::protocol
