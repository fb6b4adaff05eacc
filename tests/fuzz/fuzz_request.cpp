// SPDX-License-Identifier: GPL-2.0-only
// The control protocol's request parser (src/protocol/request.cpp): the one
// function that reads what any member of the control group sends the daemon.
// A request it accepts must encode (request_json, what connwatchctl sends) to a
// line that parses back to the same request.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "fuzz_check.h"
#include "protocol/wire.h"

using namespace connwatch;
using namespace connwatch::protocol;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size)
{
    std::string_view line(reinterpret_cast<const char*>(data), size);
    auto parsed = parse_request(line);
    if (auto* error = std::get_if<std::string>(&parsed)) {
        FUZZ_CHECK(!error->empty(), "an empty refusal");
        return 0;
    }
    const Request& request = std::get<Request>(parsed);
    std::string sent = request_json(request).dump();
    auto again = parse_request(sent);
    auto* back = std::get_if<Request>(&again);
    FUZZ_CHECK(back != nullptr,
               "'" + sent + "' does not parse: " + std::get<std::string>(again));
    // Requests have no operator==; their encoding is canonical, so compare that.
    FUZZ_CHECK(command_of(*back) == command_of(request), sent);
    FUZZ_CHECK(request_json(*back).dump() == sent, sent + " came back as " +
                                                       request_json(*back).dump());
    return 0;
}
