// SPDX-License-Identifier: GPL-2.0-only
// The state file's parsers (src/blocks/state.cpp): a file connwatchd wrote, then a
// crash, a full disk or a hand edit. Whatever parses must be written back
// (format_state, what save_state writes) to a text that parses to the same State
// with nothing skipped. The same input is also read as a journal: whatever state
// its lines make, written back as journal lines, replays to the same state.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "blocks/state.h"
#include "fuzz_check.h"

using namespace connwatch;

namespace {

void journal_round_trip(std::string_view text)
{
    State st;
    std::vector<std::string> problems;
    apply_journal(text, st, &problems); // never throws: a bad line costs itself
    for (const auto& p : problems)
        FUZZ_CHECK(p.rfind("journal line ", 0) == 0, "a problem without its line: " + p);
    std::string written = journal_allow(st.allow);
    for (const auto& b : st.blocks)
        written += journal_add(b);
    State again;
    std::vector<std::string> again_problems;
    apply_journal(written, again, &again_problems);
    FUZZ_CHECK(again_problems.empty(), again_problems.front() + " in\n" + written);
    FUZZ_CHECK(again == st, "journal not read back the same:\n" + written);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size)
{
    std::string_view text(reinterpret_cast<const char*>(data), size);
    journal_round_trip(text);
    std::vector<std::string> problems;
    State st;
    try {
        st = parse_state(text, &problems);
    } catch (const std::runtime_error& e) {
        FUZZ_CHECK(*e.what() != '\0', "an empty reason for refusing the file");
        return 0;
    }
    for (const auto& p : problems)
        FUZZ_CHECK(!p.empty(), "an empty problem");
    for (const auto& b : st.blocks)
        FUZZ_CHECK(b.created >= 0 && b.expires >= 0 && b.created <= (int64_t{1} << 33) &&
                       b.expires <= (int64_t{1} << 33),
                   b.prefix.str());

    std::string written = format_state(st);
    std::vector<std::string> again_problems;
    State again = parse_state(written, &again_problems); // throws: a crash, as it should
    FUZZ_CHECK(again_problems.empty(), again_problems.front() + " in\n" + written);
    FUZZ_CHECK(again == st, "not read back the same:\n" + written);
    return 0;
}
