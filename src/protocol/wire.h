// SPDX-License-Identifier: GPL-2.0-only
// The JSON form of the control protocol's types (protocol/protocol.h), exactly
// as docs/CONTROL.md shows it: one object per line each way. Both ends use these
// functions, so the daemon's answers and connwatchctl's reading of them cannot
// drift apart.
#pragma once

#include <memory>
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
// Its line as sent (with the '\n'): request_json(r).dump(), but a bulk
// request's entries written by hand (a million-line import sends a thousand
// of them; the JSON tree of each cost more than the daemon's work on it).
std::string request_line(const Request& r);

// ---- responses (nlohmann's ADL hooks) ------------------------------------------------
// The fields of a successful answer; dispatch() adds "ok". from_json throws
// (nlohmann::json::exception, or Error for a value that does not parse) when a
// field is missing or invalid: a typed reader must not print made-up defaults.

// Declares the pair for one type; defined one by one in response.cpp.
#define CONNWATCH_WIRE_TYPE(T)                                                                  \
    void to_json(nlohmann::json& j, const T& v);                                               \
    void from_json(const nlohmann::json& j, T& v)

CONNWATCH_WIRE_TYPE(Interface);      // {"name","xdp_mode"}
CONNWATCH_WIRE_TYPE(StatusResponse); // {"version","pid","interfaces","missing_interfaces",
                                     //  "threshold","window",
                                     //  "block_duration","monitor_only","max_blocks",
                                     //  "blocks","allow","counters":{NAME: VALUE},
                                     //  "crowdsec"?, "rp_filter"?:{"mode","active",
                                     //  "interfaces":{NAME: MODE}}}
CONNWATCH_WIRE_TYPE(BlockEntry);     // {"prefix","origin","reason","created","expires",
                                     //  "expires_in","offence"}
CONNWATCH_WIRE_TYPE(AllowEntry);     // {"prefix","source"}
CONNWATCH_WIRE_TYPE(ListResponse);   // {"blocks":[BlockEntry...],"allow":[AllowEntry...]}
CONNWATCH_WIRE_TYPE(BlockResponse);  // {"prefix","expires"}
CONNWATCH_WIRE_TYPE(PrefixResponse); // {"prefix"}
CONNWATCH_WIRE_TYPE(FlushResponse);  // {"removed"}
CONNWATCH_WIRE_TYPE(ReloadResponse); // {}
CONNWATCH_WIRE_TYPE(BulkRefusal);    // {"index","error"}
CONNWATCH_WIRE_TYPE(BlockManyResponse);   // {"added","present","refused":[BulkRefusal...]}
CONNWATCH_WIRE_TYPE(UnblockManyResponse); // {"removed","absent"}

#undef CONNWATCH_WIRE_TYPE

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

// One answer line, made as the client takes it. Most answers are one piece;
// a list's blocks come a page at a time from its BlockCursor, so that the
// daemon holds one page per client, never the whole list.
class AnswerStream {
public:
    virtual ~AnswerStream() = default;
    // Appends the next piece of the line to out (about `want` bytes, or less
    // -- even nothing -- when making more would hold the caller's event loop
    // too long: a filter that matches little). False when nothing is left: the line,
    // with its '\n', is complete -- or cut short, when the handler's cursor
    // failed after the first piece was sent (the connection is closed then,
    // and the client sees an answer that ends early).
    virtual bool more(std::string& out, std::size_t want) = 0;
};

// A list whole, as a ListStream (tests, and handlers whose lists are short).
ListStream list_stream(ListResponse whole);

// Calls the handler's method for the request and returns its answer line.
// Lets no exception out: a Refusal and an exception alike become
// {"ok":false,"error":...}, so one bad request cannot hurt the daemon.
//
// A list answer is the object {"allow":[...],"blocks":[...],"ok":true}, written
// exactly as nlohmann's dump() would write it whole: the same line as before it
// was written in pieces.
std::unique_ptr<AnswerStream> answer(Handler& handler, const Request& request, const Peer& peer);

// The whole answer as one object (what a test or a small answer wants):
// answer() run to its end and parsed.
nlohmann::json dispatch(Handler& handler, const Request& request, const Peer& peer);

// The text of one value as the daemon writes it: compact, invalid UTF-8 replaced.
std::string compact(const nlohmann::json& j);
// A block's text, the same as compact(nlohmann::json(e)), appended to out.
void append_json(std::string& out, const BlockEntry& e);

} // namespace connwatch::protocol
