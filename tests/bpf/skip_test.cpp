// SPDX-License-Identifier: GPL-2.0-only
// The pass path's shortcut: while block_addr is empty the program skips its
// lookup (config.exact_empty_gen against the kernel's insert count, block_gen).
// What must hold: a block added from userspace, and one the kernel makes
// itself, drop from the very next packet; a removal that empties the list arms
// the shortcut again; a config taken over from the pins is never trusted. The
// first test shows the shortcut is real: an entry written behind XdpProgram's
// back (which no connwatch code does) is not seen until the next insert
// through it.
#include <bpf/bpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "map_by_name.h"
#include "xdp_fixture.h"

namespace connwatch::test {
namespace {

void expect_dropped(const RunResult& r, cw_stat reason)
{
    EXPECT_EQ(r.action, XDP_DROP);
    EXPECT_EQ(r.delta, verdict(reason));
}

void expect_passed_ack(const RunResult& r)
{
    EXPECT_EQ(r.action, XDP_PASS);
    EXPECT_EQ(r.delta, verdict(CW_STAT_PASS_TCP_OTHER));
}

class Skip : public XdpTest {};

TEST_F(Skip, ArmedOnAnEmptyListAndTheLookupIsReallySkipped)
{
    // Loading looked at the empty map.
    EXPECT_TRUE(prog_->exact_skip_armed());
    EXPECT_NE(prog_->config().exact_empty_gen, 0u);
    expect_passed_ack(tcp(kScanner, 22, kAck));

    // Written behind XdpProgram's back: the program does not look, so the
    // source passes. (This is why every insert goes through XdpProgram.)
    int fd = map_fd_by_name(prog_->prog_fd(), "block_addr");
    ASSERT_GE(fd, 0);
    cw_addr k = addr(kScanner).to_abi();
    cw_block b = manual_block(now(), 0);
    ASSERT_EQ(bpf_map_update_elem(fd, &k, &b, BPF_ANY), 0);
    close(fd);
    expect_passed_ack(tcp(kScanner, 22, kAck));

    // Armed and no automatic block since: refresh trusts it without a look.
    EXPECT_TRUE(prog_->refresh_exact_skip());
    // An insert through XdpProgram disarms, and the program looks again.
    ASSERT_TRUE(prog_->block_add(addr("203.0.113.1"), manual_block(now(), 0)));
    EXPECT_EQ(prog_->config().exact_empty_gen, 0u);
    expect_dropped(tcp(kScanner, 22, kAck), CW_STAT_DROP_BLOCKED);
    EXPECT_FALSE(prog_->refresh_exact_skip()); // not empty
}

TEST_F(Skip, BlockFromUserspaceDropsTheNextPacket)
{
    for (const char* src : {kScanner, "2001:db8::66"}) {
        SCOPED_TRACE(src);
        ASSERT_TRUE(prog_->exact_skip_armed());
        expect_passed_ack(tcp(src, 22, kAck));
        ASSERT_TRUE(prog_->block_add(addr(src), manual_block(now(), 0)));
        EXPECT_EQ(prog_->config().exact_empty_gen, 0u);
        expect_dropped(tcp(src, 22, kAck), CW_STAT_DROP_BLOCKED);
        expect_dropped(syn(src, 80), CW_STAT_DROP_BLOCKED);
        // The removal that empties the list arms it again.
        ASSERT_TRUE(prog_->block_remove(addr(src)));
        EXPECT_TRUE(prog_->exact_skip_armed());
        expect_passed_ack(tcp(src, 22, kAck));
    }
}

TEST_F(Skip, BatchedBlocksDropTheNextPacket)
{
    ASSERT_TRUE(prog_->exact_skip_armed());
    std::vector<cw_addr> keys{addr("203.0.113.1").to_abi(), addr(kScanner).to_abi()};
    std::vector<cw_block> values{manual_block(now(), 0), manual_block(now(), 0)};
    ASSERT_EQ(prog_->block_add_batch(keys, values), 2u);
    expect_dropped(tcp(kScanner, 22, kAck), CW_STAT_DROP_BLOCKED);
    // One left: still not armed.
    ASSERT_EQ(prog_->block_remove_batch({keys[0]}), 1u);
    EXPECT_FALSE(prog_->exact_skip_armed());
    expect_dropped(tcp(kScanner, 22, kAck), CW_STAT_DROP_BLOCKED);
    ASSERT_EQ(prog_->block_remove_batch({keys[1]}), 1u);
    EXPECT_TRUE(prog_->exact_skip_armed());
    expect_passed_ack(tcp(kScanner, 22, kAck));
}

// The kernel's own insert does not touch the config (userspace owns it): it
// moves block_gen, and the armed value no longer matches.
TEST_F(Skip, AutomaticBlockDropsTheNextPacket)
{
    ASSERT_TRUE(prog_->exact_skip_armed());
    const uint64_t armed = prog_->config().exact_empty_gen;
    for (uint16_t port : {22, 80, 443})
        expect_attempt_only(syn(kScanner, port));
    RunResult r = syn(kScanner, 8080); // threshold 3: the 4th port blocks
    ASSERT_EQ(events_of(r, CW_EV_SCAN).size(), 1u) << describe(r.events);
    EXPECT_EQ(r.delta[CW_STAT_BLOCK_ADDED], 1u);
    EXPECT_EQ(prog_->config().exact_empty_gen, armed); // still "armed" in the config
    expect_dropped(tcp(kScanner, 22, kAck), CW_STAT_DROP_BLOCKED);
    expect_dropped(syn(kScanner, 9000), CW_STAT_DROP_BLOCKED);
    // Another source still passes, through the lookup now.
    expect_passed_ack(tcp("203.0.113.9", 22, kAck));

    // Lifted: armed again, against the new count.
    ASSERT_TRUE(prog_->block_remove(addr(kScanner)));
    EXPECT_TRUE(prog_->exact_skip_armed());
    EXPECT_NE(prog_->config().exact_empty_gen, armed);
    prog_->scan_state_remove(addr(kScanner));
    expect_passed_ack(tcp(kScanner, 22, kAck));
    // And a second automatic block disarms it again.
    advance(61 * kSec);
    for (uint16_t port : {22, 80, 443})
        expect_attempt_only(syn(kScanner, port));
    r = syn(kScanner, 8080);
    EXPECT_EQ(r.delta[CW_STAT_BLOCK_ADDED], 1u);
    expect_dropped(tcp(kScanner, 22, kAck), CW_STAT_DROP_BLOCKED);
}

// The CIDR list has its own count (cidr_blocks); the exact list's shortcut
// does not hide it.
TEST_F(Skip, CidrBlockWhileTheExactListIsEmpty)
{
    ASSERT_TRUE(prog_->exact_skip_armed());
    ASSERT_TRUE(prog_->cidr_block_add(Cidr(addr("192.0.2.0"), 24), manual_block(now(), 0)));
    EXPECT_TRUE(prog_->exact_skip_armed());
    expect_dropped(tcp(kScanner, 22, kAck), CW_STAT_DROP_BLOCKED_CIDR);
    ASSERT_TRUE(prog_->cidr_block_remove(Cidr(addr("192.0.2.0"), 24)));
    expect_passed_ack(tcp(kScanner, 22, kAck));
}

// A connwatchd that crashed leaves its config, "empty", pinned; the blocklist
// may have been written since (a tool, another program). The next start
// looks again instead of trusting it.
TEST_F(Skip, PinnedConfigIsNotTrustedAtTakeOver)
{
    char tmpl[] = "/sys/fs/bpf/connwatch_test_XXXXXX"; // bpffs refuses dots in names
    ASSERT_NE(mkdtemp(tmpl), nullptr) << std::strerror(errno);
    const std::string dir = tmpl;
    LoadSettings s = load_settings();
    s.pin_dir = dir;
    {
        XdpProgram older(s);
        ASSERT_TRUE(older.exact_skip_armed());
        int fd = bpf_obj_get((dir + "/block_addr").c_str());
        ASSERT_GE(fd, 0);
        cw_addr k = addr(kScanner).to_abi();
        cw_block b = manual_block(now(), 0);
        EXPECT_EQ(bpf_map_update_elem(fd, &k, &b, BPF_ANY), 0);
        close(fd);
        EXPECT_NE(older.config().exact_empty_gen, 0u); // left pinned, as a crash would
    }
    {
        XdpProgram newer(s);
        EXPECT_EQ(newer.config().exact_empty_gen, 0u);
        EXPECT_FALSE(newer.exact_skip_armed());
        ASSERT_TRUE(newer.block_remove(addr(kScanner)));
        EXPECT_TRUE(newer.exact_skip_armed());
        newer.unpin_runtime();
    }
    for (const char* map : {"block_addr", "block_cidr", "offenders"})
        unlink((dir + "/" + map).c_str());
    EXPECT_EQ(rmdir(dir.c_str()), 0) << dir;
}

} // namespace
} // namespace connwatch::test
