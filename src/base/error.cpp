// SPDX-License-Identifier: GPL-2.0-only
#include "base/error.h"

#include <cstdlib>

namespace connwatch {

std::error_code errno_code(int err)
{
    return {std::abs(err), std::system_category()};
}

namespace {

std::string compose(std::string_view before, const std::error_code& code, std::string_view after)
{
    std::string s(before);
    s += ": ";
    s += code.message();
    s += after;
    return s;
}

} // namespace

Error::Error(std::string_view before, std::error_code code, std::string_view after)
    : std::runtime_error(compose(before, code, after)), code_(code)
{
}

} // namespace connwatch
