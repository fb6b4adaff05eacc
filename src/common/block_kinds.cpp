// SPDX-License-Identifier: GPL-2.0-only
#include "common/block_kinds.h"

namespace connwatch {

std::string_view to_string(BlockOrigin o)
{
    switch (o) {
    case BlockOrigin::Manual: return "manual";
    case BlockOrigin::Crowdsec: return "crowdsec";
    case BlockOrigin::Scan: break;
    }
    return "scan";
}

std::optional<BlockOrigin> block_origin_from(std::string_view text)
{
    if (text == "scan")
        return BlockOrigin::Scan;
    if (text == "manual")
        return BlockOrigin::Manual;
    if (text == "crowdsec")
        return BlockOrigin::Crowdsec;
    return std::nullopt;
}

BlockOrigin block_origin_of(uint8_t cw_origin)
{
    if (cw_origin == CW_ORIGIN_MANUAL)
        return BlockOrigin::Manual;
    if (cw_origin == CW_ORIGIN_CROWDSEC)
        return BlockOrigin::Crowdsec;
    return BlockOrigin::Scan;
}

std::string_view to_string(RemovalReason r)
{
    switch (r) {
    case RemovalReason::Expired: return "expired";
    case RemovalReason::Unblocked: return "unblocked";
    case RemovalReason::Allowlisted: return "allowlisted";
    case RemovalReason::Flushed: return "flushed";
    case RemovalReason::Withdrawn: return "withdrawn";
    case RemovalReason::Replaced: return "replaced";
    }
    return "?";
}

std::string_view to_string(AllowSource s)
{
    switch (s) {
    case AllowSource::Configuration: return "configuration";
    case AllowSource::Connwatchctl: return "connwatchctl";
    case AllowSource::OwnAddress: return "own-address";
    }
    return "?";
}

std::optional<AllowSource> allow_source_from(std::string_view text)
{
    for (auto s : {AllowSource::Configuration, AllowSource::Connwatchctl, AllowSource::OwnAddress})
        if (to_string(s) == text)
            return s;
    return std::nullopt;
}

} // namespace connwatch
