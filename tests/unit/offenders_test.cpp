// SPDX-License-Identifier: GPL-2.0-only
// The history of repeat offenders in STATE_DIR/offenders.json: what survives a
// reboot (blocks/offenders.h). The kernel side is in tests/bpf/escalate_test.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "blocks/offenders.h"
#include "temp_dir.h"

using namespace connwatch;

namespace {

constexpr uint64_t kSec = 1'000'000'000;

Address A(const char* text)
{
    return *Address::parse(text);
}

cw_offender offender(uint64_t until_ns, uint64_t block_ns, uint32_t n)
{
    cw_offender o{};
    o.until_ns = until_ns;
    o.block_ns = block_ns;
    o.offences = n;
    return o;
}

} // namespace

TEST(Offenders, FileRoundTrip)
{
    std::vector<OffenderRecord> r{{A("192.0.2.1"), 3, 1'800'000'000, 14400},
                                  {A("2001:db8::1"), 1, 1'800'000'100, 3600}};
    std::vector<std::string> problems;
    EXPECT_EQ(parse_offenders(format_offenders(r), &problems), r);
    EXPECT_TRUE(problems.empty());
    EXPECT_TRUE(parse_offenders(format_offenders({}), &problems).empty());
}

TEST(Offenders, ABadRecordCostsOnlyItself)
{
    std::vector<std::string> problems;
    auto r = parse_offenders(R"({"version":1,"offenders":[
        {"source":"192.0.2.1","offences":2,"until":1800000000,"block":7200},
        {"source":"nonsense","offences":2,"until":1800000000,"block":7200},
        {"source":"192.0.2.3","offences":0,"until":1800000000,"block":7200},
        {"source":"192.0.2.4","offences":2,"until":-5,"block":7200},
        {"source":"192.0.2.5","offences":2,"until":1800000000,"block":1e300}]})",
                             &problems);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].source, A("192.0.2.1"));
    EXPECT_EQ(problems.size(), 4u);
    EXPECT_THROW(parse_offenders("{\"version\":2,\"offenders\":[]}", nullptr), std::runtime_error);
    EXPECT_THROW(parse_offenders("not json", nullptr), std::runtime_error);
    EXPECT_THROW(parse_offenders("{\"version\":1}", nullptr), std::runtime_error);
}

TEST(Offenders, SaveAndLoad)
{
    test::TempDir tmp;
    ASSERT_FALSE(tmp.path.empty());
    std::string path = tmp / "offenders.json";
    std::string warning;
    EXPECT_TRUE(load_offenders(path, &warning).empty()) << "a missing file is no history";
    EXPECT_EQ(warning, "");
    std::vector<OffenderRecord> r{{A("192.0.2.1"), 5, 1'800'000'000, 57600}};
    save_offenders(path, r);
    EXPECT_EQ(load_offenders(path, &warning), r);
    EXPECT_EQ(warning, "");
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

    std::ofstream(path, std::ios::trunc) << "{garbage";
    EXPECT_TRUE(load_offenders(path, &warning).empty());
    EXPECT_NE(warning.find("moved aside to " + path + ".corrupt"), std::string::npos) << warning;
    EXPECT_TRUE(std::filesystem::exists(path + ".corrupt"));
    EXPECT_FALSE(std::filesystem::exists(path));
}

// Monotonic times out, wall-clock times in the file, monotonic again in the
// next boot's clock; only what can still escalate is kept, and at most `max`.
TEST(Offenders, ClockConversionAndBound)
{
    const uint64_t mono = 5000 * kSec;
    const std::time_t wall = 1'800'000'000;
    const std::chrono::seconds window{3600};
    std::vector<std::pair<cw_addr, cw_offender>> kernel{
        {A("192.0.2.1").to_abi(), offender(mono + 100 * kSec, 200 * kSec, 2)}, // ends in 100 s
        {A("192.0.2.2").to_abi(), offender(mono - 3000 * kSec, 60 * kSec, 1)}, // ended 50 min ago
        {A("192.0.2.3").to_abi(), offender(mono - 4000 * kSec, 60 * kSec, 4)}, // outside the window
        {A("192.0.2.4").to_abi(), offender(mono, 60 * kSec, 0)},               // not an offence
    };
    auto saved = offenders_from_kernel(kernel, window, mono, wall, 10);
    ASSERT_EQ(saved.size(), 2u);
    EXPECT_EQ(saved[0], (OffenderRecord{A("192.0.2.1"), 2, wall + 100, 200})) << "newest first";
    EXPECT_EQ(saved[1], (OffenderRecord{A("192.0.2.2"), 1, wall - 3000, 60}));
    EXPECT_EQ(offenders_from_kernel(kernel, window, mono, wall, 1).size(), 1u);

    // The next boot: its clock reads 30 s, the wall clock moved on 500 s. The
    // first block ended 400 s ago: 370 s before this boot's clock began.
    auto back = offenders_to_kernel(saved, window, 30 * kSec, wall + 500);
    ASSERT_EQ(back.size(), 2u);
    EXPECT_EQ(static_cast<int64_t>(back[0].second.until_ns - 30 * kSec), -400 * int64_t(kSec));
    EXPECT_EQ(back[0].second.block_ns, 200 * kSec);
    EXPECT_EQ(back[0].second.offences, 2u);
    // 3000 s + 600 s ago: past the hour's window by now.
    auto later = offenders_to_kernel(saved, window, 30 * kSec, wall + 700);
    EXPECT_EQ(later.size(), 1u);
}
