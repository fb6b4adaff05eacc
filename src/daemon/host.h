// SPDX-License-Identifier: GPL-2.0-only
// What connwatchd learns from the host it runs on: its interfaces and routes,
// its own addresses (never blocked), and a bpf filesystem to pin maps on.
#pragma once

#include <string>
#include <vector>

#include "common/address.h"

namespace connwatch {

// The interface of the IPv4 default route, or "" when there is none.
std::string default_route_interface();

// The configured interfaces, or the default-route one; every name checked to
// exist before anything is attached, so a typo fails fast. Throws Error.
std::vector<std::string> resolve_interfaces(const std::vector<std::string>& configured);

// Prefixes never blocked automatically besides the configured ones: loopback and
// every address of this host. When the host's addresses cannot be listed, only
// loopback, and *error (if given) says why. Sorted, without duplicates.
std::vector<Cidr> own_prefixes(std::string* error = nullptr);

// Pinning needs bpffs at the pin directory's parent. systemd mounts it at
// /sys/fs/bpf; a plain machine may not have it, and root can mount it there.
// Returns "" or why pinning is off.
std::string ensure_bpffs(const std::string& pin_dir);

} // namespace connwatch
