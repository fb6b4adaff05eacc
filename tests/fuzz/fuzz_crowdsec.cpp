// SPDX-License-Identifier: GPL-2.0-only
// The CrowdSec decision stream (src/crowdsec/lapi_protocol.cpp): whatever a LAPI,
// or something pretending to be one, answers. Either the answer is refused as a
// whole with a reason, or every decision is mirrored, ignored or counted bad;
// every Go duration either parses or not, never overflows; the ledger's blocks
// are positive and within what the decisions said.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "crowdsec/lapi_protocol.h"
#include "fuzz_check.h"

using namespace connwatch;
using namespace connwatch::crowdsec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size)
{
    std::string_view text(reinterpret_cast<const char*>(data), size);
    // The same bytes as one Go duration: parsed or refused, and a parsed one
    // written in whole seconds reads back within a second.
    if (auto d = parse_go_duration(text)) {
        auto s = std::chrono::duration_cast<std::chrono::seconds>(*d);
        auto again = parse_go_duration(go_duration(s));
        FUZZ_CHECK(again && *again == std::chrono::nanoseconds(s), std::string(text));
    }
    StreamBatch b;
    try {
        b = decode_stream(text);
    } catch (const std::runtime_error& e) {
        FUZZ_CHECK(*e.what() != '\0', "an empty reason for refusing the answer");
        return 0;
    }
    FUZZ_CHECK(b.problems.size() <= b.bad && b.problems.size() <= 5, "problems");
    DecisionLedger ledger;
    for (bool startup : {true, false})
        for (const auto& c : ledger.apply(b, startup, 1000)) {
            if (!c.remaining)
                continue;
            FUZZ_CHECK(c.remaining->count() > 0, c.prefix.str());
            FUZZ_CHECK(ledger.holds(c.prefix), c.prefix.str());
        }
    return 0;
}
