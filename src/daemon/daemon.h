// SPDX-License-Identifier: GPL-2.0-only
// connwatchd: load, attach, and run one epoll loop over the event ring buffer,
// signals (signalfd) and a 1-second timer (expiry sweep, lost-event report).
#pragma once

#include "config/options.h"

namespace connwatch {

// The whole daemon: parses argv, runs until SIGINT/SIGTERM, returns the exit code.
int run_connwatchd(int argc, const char* const* argv);

// The interface of the IPv4 default route, or "" when there is none.
std::string default_route_interface();

// Prefixes never blocked automatically besides the configured ones: loopback and
// every address of this host. When the host's addresses cannot be listed, only
// loopback, and *error (if given) says why.
std::vector<Cidr> own_prefixes(std::string* error = nullptr);

} // namespace connwatch
