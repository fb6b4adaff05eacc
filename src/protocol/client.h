// SPDX-License-Identifier: GPL-2.0-only
// The client's side of the control socket: one request, one answer line.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "base/unique_fd.h"
#include "protocol/protocol.h"

namespace connwatch::protocol {

// Why connwatchd could not be asked; connwatchctl turns each kind into its own
// exit code (man/connwatchctl.8).
class CallError : public std::runtime_error {
public:
    enum class Kind {
        BadSocketPath, // too long for a Unix socket address
        NotRunning,    // nothing listens, or no valid answer within the time limit
        Denied,        // the socket file's mode keeps this user out
    };
    CallError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
    Kind kind() const { return kind_; }

private:
    Kind kind_;
};

// Sends the request to the daemon listening on socket_path and returns its
// answer as it came: one JSON object, "ok" true or not (protocol/wire.h reads it
// into types). Waits at most 30 s: a reload may attach interfaces, but a stuck
// daemon must not hang a script forever. Throws CallError.
nlohmann::json call(const std::string& socket_path, const Request& request);

// call() in two halves, for connwatchctl block --file: the request is sent
// (connected, written) and its answer read later, so that the client parses
// its next batch of lines while the daemon applies this one. Throws CallError
// as call() does (wait() the 30 s limit).
class PendingCall {
public:
    PendingCall(const std::string& socket_path, const Request& request);
    nlohmann::json wait();

private:
    UniqueFd fd_;
    std::string send_error_;
};

// A list answer, read as it arrives: every allow entry and every block is
// handed to its callback as soon as it is whole, and then dropped, so the
// client holds one entry at a time however long the list. Returns the rest of
// the answer ({"allow":[],"blocks":[],"ok":true}, or the refusal). The 30 s
// limit is for silence: a long list that keeps coming is read to its end.
// Throws CallError, and what a callback throws; an answer that ends early (the
// daemon stopped mid-list) is a CallError after the entries that did arrive.
using EntryCallback = std::function<void(const nlohmann::json&)>;
nlohmann::json call_list(const std::string& socket_path, const ListRequest& request,
                         const EntryCallback& on_allow, const EntryCallback& on_block);

} // namespace connwatch::protocol
