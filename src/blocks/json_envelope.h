// SPDX-License-Identifier: GPL-2.0-only
#pragma once
// The envelope the daemon's JSON files share (state.json, offenders.json):
//   {"version": N, "LIST": [...], ...}
// each list a record a line, read record by record.

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace connwatch {

// Throws std::runtime_error saying what is wrong when j, as nlohmann::json::parse
// returned it without exceptions, is not JSON, not an object, or has no integer
// "version" equal to `version` ("unknown version 2", "unknown version (none)").
inline void check_json_envelope(const nlohmann::json& j, int version)
{
    if (j.is_discarded())
        throw std::runtime_error("not JSON");
    if (!j.is_object())
        throw std::runtime_error("not a JSON object");
    auto found = j.find("version");
    if (found == j.end() || !found->is_number_integer() || *found != nlohmann::json(version))
        throw std::runtime_error("unknown version " +
                                 (found == j.end() ? std::string("(none)") : found->dump()));
}

} // namespace connwatch
