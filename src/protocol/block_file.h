// SPDX-License-Identifier: GPL-2.0-only
// The file `connwatchctl block --file` and `unblock --file` read: one address or
// prefix a line, then optionally a duration and a reason (docs/CONTROL.md).
//
//   # comment: from '#' to the end of the line, anywhere
//   203.0.113.7
//   198.51.100.0/24  1d  abuse report 1234
//   2001:db8::/48    -   no duration given: --duration's, or until removed
//
// Blank lines and comments are skipped. Words are separated by blanks (spaces,
// tabs); the reason is the rest of the line, as it is. A line that does not
// parse is refused on its own, with its number; the others are applied.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "protocol/protocol.h"

namespace connwatch::protocol {

// What one line says: nothing (blank or comment), an entry (its duration and
// reason absent when the line gives none), or why it is refused.
using BlockLine = std::variant<std::monostate, BulkBlock, std::string>;
BlockLine parse_block_line(std::string_view line);

} // namespace connwatch::protocol
