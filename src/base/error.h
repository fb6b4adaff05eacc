// SPDX-License-Identifier: GPL-2.0-only
// connwatch's one error type. Start-up code throws it; the event loop catches it
// at each handler's edge. A failed system or libbpf call keeps its errno as a
// std::error_code (for ERRNO= and for tests), turned into text in one place.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace connwatch {

// errno, or libbpf's -errno, as an error_code of the system category.
std::error_code errno_code(int err);

class Error : public std::runtime_error {
public:
    // A message complete in itself.
    explicit Error(const std::string& message) : std::runtime_error(message) {}
    // "BEFORE: <strerror of code>AFTER", e.g.
    //   Error("Failed to attach to 'eth0'", errno_code(EPERM), ": run as root")
    Error(std::string_view before, std::error_code code, std::string_view after = {});

    // Empty when the failure was not a system call's.
    const std::error_code& code() const noexcept { return code_; }

private:
    std::error_code code_;
};

} // namespace connwatch
