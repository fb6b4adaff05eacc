// SPDX-License-Identifier: GPL-2.0-only
// The operator's own ssh session, as connwatchctl sees it: sshd puts
// "client_ip client_port server_ip server_port" in SSH_CONNECTION. A block that
// covers client_ip would cut the session off the moment it is made.
//
// Checked by connwatchctl, not connwatchd: only the client knows the session.
// Sending its address in every block request instead would add a field that a
// connwatchd from before it refuses (unknown fields are refused), breaking
// ordinary blocks; and a script speaking the protocol has no session to guard.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/address.h"

namespace connwatch {

// The session's client address; nullopt when ssh_connection is null, empty or
// not what sshd writes. A scope ("fe80::1%eth0") is dropped.
std::optional<Address> ssh_client_address(const char* ssh_connection);

// Why blocking prefix would cut off the ssh session ssh_connection describes
// (ending with what to do), or "" when it would not.
std::string ssh_session_conflict(const Cidr& prefix, const char* ssh_connection);

} // namespace connwatch
