// SPDX-License-Identifier: GPL-2.0-only
// The client's side of the control socket: one request, one answer line.
#pragma once

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

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

} // namespace connwatch::protocol
