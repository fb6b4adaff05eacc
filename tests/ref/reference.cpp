// SPDX-License-Identifier: GPL-2.0-only
#include "reference.h"

#include <linux/bpf.h> // XDP_PASS, XDP_DROP

#include <algorithm>
#include <cstdio>

namespace connwatch::ref {

namespace {

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;
constexpr uint8_t kTcp = 6;
constexpr uint64_t kNsPerMs = 1'000'000;
constexpr uint32_t kLoopback = 1;  // ifindex of lo in every namespace
constexpr int kMaxVlanTags = 2;    // 802.1Q and 802.1ad, in any order
constexpr int kMaxExtHeaders = 6;  // IPv6 extension headers walked
constexpr size_t kTcpHeader = 20;  // without options
constexpr size_t kScanSlots = 32;  // ports remembered per source

uint16_t be16(std::span<const uint8_t> f, size_t at)
{
    return static_cast<uint16_t>(f[at] << 8 | f[at + 1]);
}

bool have(std::span<const uint8_t> f, size_t at, size_t n)
{
    return at <= f.size() && f.size() - at >= n;
}

bool is_extension_header(uint8_t next)
{
    // hop-by-hop, routing, fragment, AH, destination options
    return next == 0 || next == 43 || next == 44 || next == 51 || next == 60;
}

} // namespace

Addr mapped_v4(const uint8_t* b4)
{
    Addr a{};
    a[10] = a[11] = 0xff;
    std::copy(b4, b4 + 4, a.begin() + 12);
    return a;
}

Addr masked(const Addr& a, unsigned len)
{
    Addr m{};
    for (unsigned i = 0; i < 16; i++) {
        unsigned bits = len >= 8 * (i + 1) ? 8 : len > 8 * i ? len - 8 * i : 0;
        m[i] = static_cast<uint8_t>(a[i] & (bits ? 0xff << (8 - bits) : 0));
    }
    return m;
}

std::string to_string(const Addr& a)
{
    char buf[64];
    if (std::all_of(a.begin(), a.begin() + 10, [](uint8_t b) { return b == 0; }) &&
        a[10] == 0xff && a[11] == 0xff) {
        std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
        return buf;
    }
    std::string s;
    for (int i = 0; i < 16; i += 2) {
        std::snprintf(buf, sizeof buf, "%s%x", i ? ":" : "", a[i] << 8 | a[i + 1]);
        s += buf;
    }
    return s;
}

std::optional<Flip> parse_flip(const std::string& name)
{
    if (name == "none")
        return Flip::none;
    if (name == "synfin-is-attempt")
        return Flip::synfin_is_attempt;
    if (name == "threshold-inclusive")
        return Flip::threshold_inclusive;
    if (name == "one-vlan-tag")
        return Flip::one_vlan_tag;
    return std::nullopt;
}

bool Prefix::covers(const Addr& a) const
{
    for (unsigned bit = 0; bit < len; bit++) {
        uint8_t mask = static_cast<uint8_t>(0x80 >> (bit % 8));
        if ((addr[bit / 8] & mask) != (a[bit / 8] & mask))
            return false;
    }
    return true;
}

// What the parse found, as far as it got.
struct Reference::Packet {
    uint32_t ifindex = 0;
    bool v4 = false;
    Addr src{}, dst{};
    size_t l4 = 0;          // where the TCP header starts
    bool first_frag = false; // a first fragment: more follow, offset 0
    size_t tlen = 0;        // first fragment: transport bytes it carries (its length words)
    uint8_t flags = 0;      // TCP byte 13 (0 in a tiny fragment that lacks it)
    bool tiny = false;      // a first fragment too short for the TCP header, port shown
    uint16_t sport = 0, dport = 0;
    uint8_t type = 0;       // CW_EV_NEW_CONN or CW_EV_PROBE
};

// A final verdict (the XDP action), or nothing: go on to the next step.
struct Reference::Step {
    std::optional<int> action;
    static Step go_on() { return {}; }
    static Step done(int a) { return {a}; }
};

int Reference::pass(cw_stat s)
{
    count(s);
    return XDP_PASS;
}

// drop-tiny-fragments decides what happens to a packet that hides its TCP
// header (docs/PROBES.md).
int Reference::tiny_verdict()
{
    if (config.drop_tiny_frags) {
        count(CW_STAT_DROP_TINY_FRAGMENT);
        return XDP_DROP;
    }
    return pass(CW_STAT_PASS_TINY_FRAGMENT);
}

Outcome Reference::classify(std::span<const uint8_t> f, uint32_t ifindex, uint64_t now)
{
    out_ = Outcome{};
    now_ = now;
    ifindex_ = ifindex;
    Packet p;
    p.ifindex = ifindex;

    auto run = [&]() -> int {
        size_t l3 = 0;
        uint16_t type = 0;
        if (auto s = link_layer(p, f, &l3, &type); s.action)
            return *s.action;
        Step s = type == 0x0800 ? ipv4(p, f, l3) : ipv6(p, f, l3);
        if (s.action)
            return *s.action;
        for (auto step : {&Reference::segment, &Reference::martian, &Reference::retransmission,
                          &Reference::attempt})
            if (auto r = (this->*step)(p); r.action)
                return *r.action;
        return -1; // attempt() always decides
    };
    out_.action = run();
    return std::move(out_);
}

// 1. Ethernet, up to two VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8); IPv4 or
// IPv6 goes on, anything else passes as not IP; a frame that ends inside
// these headers passes as unparsed.
Reference::Step Reference::link_layer(const Packet&, std::span<const uint8_t> f, size_t* l3,
                                      uint16_t* type)
{
    if (!have(f, 0, 14))
        return Step::done(pass(CW_STAT_PASS_UNPARSED));
    uint16_t t = be16(f, 12);
    size_t at = 14;
    int tags = flip == Flip::one_vlan_tag ? 1 : kMaxVlanTags;
    for (int i = 0; i < tags && (t == 0x8100 || t == 0x88a8); i++) {
        if (!have(f, at, 4))
            return Step::done(pass(CW_STAT_PASS_UNPARSED));
        t = be16(f, at + 2);
        at += 4;
    }
    if (t != 0x0800 && t != 0x86dd)
        return Step::done(pass(CW_STAT_PASS_NON_IP)); // a third tag too
    *l3 = at;
    *type = t;
    return Step::go_on();
}

// 2 (IPv4). The fixed header must be there with version 4 and IHL >= 5. The
// source is judged against the blocklists as soon as it is known: a block
// applies to every packet of the source. Then fragments: a non-first one has
// no TCP header (pass), except a TCP fragment at offset 1 (8 bytes), which
// overwrites the flags of a first one (RFC 1858): tiny. A first fragment's TCP
// bytes are what its total-length word says, not the frame (Ethernet pads).
// Otherwise the frame's bytes bound the parse: no length word is trusted.
Reference::Step Reference::ipv4(Packet& p, std::span<const uint8_t> f, size_t l3)
{
    if (!have(f, l3, 20))
        return Step::done(pass(CW_STAT_PASS_UNPARSED));
    unsigned version = f[l3] >> 4, ihl = f[l3] & 0x0f;
    if (version != 4 || ihl < 5)
        return Step::done(pass(CW_STAT_PASS_UNPARSED));
    p.v4 = true;
    p.src = mapped_v4(&f[l3 + 12]);
    p.dst = mapped_v4(&f[l3 + 16]);
    if (auto s = blocklists(p); s.action)
        return s;
    uint16_t frag = be16(f, l3 + 6);
    unsigned offset = frag & 0x1fff;
    bool more = frag & 0x2000;
    uint8_t proto = f[l3 + 9];
    if (offset != 0) {
        if (proto == kTcp && offset == 1)
            return Step::done(tiny_verdict());
        return Step::done(pass(CW_STAT_PASS_FRAGMENT));
    }
    if (proto != kTcp)
        return Step::done(pass(CW_STAT_PASS_NON_TCP));
    p.first_frag = more;
    size_t hlen = ihl * 4;
    if (p.first_frag) {
        size_t total = be16(f, l3 + 2);
        if (total < hlen) // a length word shorter than the header: malformed
            return Step::done(pass(CW_STAT_PASS_UNPARSED));
        p.tlen = total - hlen;
    }
    p.l4 = l3 + hlen;
    return transport(p, f);
}

// 2 (IPv6). The fixed header with version 6. A v4-mapped source is the very key
// of an IPv4 host: every such packet passes as a martian, before the blocklists.
// Then the extension headers, at most 6 of them walked: a non-first fragment
// passes as a fragment (whatever it carries); anything but TCP or an extension
// header is not TCP; a 7th extension header (TCP, if any, beyond what is walked)
// is tiny; a header that does not fit the frame is unparsed, or tiny in a first
// fragment (RFC 7112: the chain belongs in the first fragment). The datagram is
// a first fragment when a fragment header says offset 0 and more to follow.
Reference::Step Reference::ipv6(Packet& p, std::span<const uint8_t> f, size_t l3)
{
    if (!have(f, l3, 40))
        return Step::done(pass(CW_STAT_PASS_UNPARSED));
    if (f[l3] >> 4 != 6)
        return Step::done(pass(CW_STAT_PASS_UNPARSED));
    std::copy(&f[l3 + 8], &f[l3 + 24], p.src.begin());
    std::copy(&f[l3 + 24], &f[l3 + 40], p.dst.begin());
    static const Prefix v4mapped{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96};
    if (v4mapped.covers(p.src))
        return Step::done(pass(CW_STAT_PASS_MARTIAN));
    if (auto s = blocklists(p); s.action)
        return s;
    uint8_t next = f[l3 + 6];
    size_t at = l3 + 40, chain = 0;
    for (int walked = 0; next != kTcp; walked++) {
        if (!is_extension_header(next))
            return Step::done(pass(CW_STAT_PASS_NON_TCP));
        if (walked == kMaxExtHeaders)
            return Step::done(tiny_verdict());
        if (!have(f, at, 8))
            return Step::done(p.first_frag ? tiny_verdict() : pass(CW_STAT_PASS_UNPARSED));
        size_t len;
        if (next == 44) { // fragment
            if (be16(f, at + 2) & 0xfff8)
                return Step::done(pass(CW_STAT_PASS_FRAGMENT));
            p.first_frag = p.first_frag || (f[at + 3] & 1);
            len = 8;
        } else if (next == 51) { // AH: 4-byte units, minus 2
            len = (f[at + 1] + 2) * 4;
        } else { // 8-byte units, minus 1
            len = (f[at + 1] + 1) * 8;
        }
        next = f[at];
        at += len;
        chain += len;
    }
    if (p.first_frag) {
        size_t payload = be16(f, l3 + 4);
        if (payload < chain) // the chain ends past this fragment
            return Step::done(tiny_verdict());
        p.tlen = payload - chain;
    }
    p.l4 = at;
    return transport(p, f);
}

// The blocklists (step 2 of the picture): an active exact block drops; so does
// the longest CIDR prefix covering the source when active, not an IPv6 prefix
// met by an IPv4 packet, and not overruled by an allow entry.
Reference::Step Reference::blocklists(const Packet& p)
{
    // An active entry under the source itself drops; when that entry is an
    // automatic prefix block (the source is the prefix's first address, its
    // key) it is counted as the prefix's drop.
    if (auto b = blocks.find(p.src); b != blocks.end() && b->second.active(now_)) {
        count(b->second.prefix_len ? CW_STAT_DROP_BLOCKED_PREFIX : CW_STAT_DROP_BLOCKED);
        return Step::done(XDP_DROP);
    }
    // Then the source's prefix at the configured length, when there is one:
    // only an entry that says it is a prefix block of exactly that length.
    if (unsigned len = source_length(p.src, p.v4)) {
        auto b = blocks.find(masked(p.src, len));
        if (b != blocks.end() && b->second.prefix_len == len && b->second.active(now_)) {
            count(CW_STAT_DROP_BLOCKED_PREFIX);
            return Step::done(XDP_DROP);
        }
    }
    const std::pair<const Prefix, Block>* longest = nullptr;
    for (const auto& e : cidr)
        if (e.first.covers(p.src) && (!longest || e.first.len > longest->first.len))
            longest = &e;
    if (longest && longest->second.active(now_) && !(p.v4 && longest->second.v6_prefix) &&
        !allowed(p.src)) {
        count(CW_STAT_DROP_BLOCKED_CIDR);
        return Step::done(XDP_DROP);
    }
    return Step::go_on();
}

// 3. The TCP header. A first fragment with less than the 20-byte header is
// tiny: it is a probe of its destination port when its first 4 bytes (the
// ports) are there, unless its flags show (14 bytes) and say ACK or a reset
// without SYN; without the ports it is only a tiny verdict. Otherwise the
// 20 bytes must be in the frame with a data offset >= 5, and (unless a first
// fragment, whose options may follow) the options too. ACK: established
// traffic, passed.
Reference::Step Reference::transport(Packet& p, std::span<const uint8_t> f)
{
    size_t t = p.l4;
    if (p.first_frag && p.tlen < kTcpHeader) {
        if (p.tlen < 4 || !have(f, t, 4))
            return Step::done(tiny_verdict());
        if (p.tlen >= 14 && have(f, t, 14)) {
            p.flags = f[t + 13];
            if ((p.flags & kAck) || ((p.flags & kRst) && !(p.flags & kSyn)))
                return Step::done(tiny_verdict());
        }
        p.tiny = true;
        p.sport = be16(f, t);
        p.dport = be16(f, t + 2);
        return Step::go_on();
    }
    if (!have(f, t, kTcpHeader))
        return Step::done(pass(CW_STAT_PASS_UNPARSED));
    unsigned doff = f[t + 12] >> 4;
    if (doff < 5 || (!p.first_frag && !have(f, t, doff * 4)))
        return Step::done(pass(CW_STAT_PASS_UNPARSED));
    p.flags = f[t + 13];
    if (p.flags & kAck)
        return Step::done(pass(CW_STAT_PASS_TCP_OTHER));
    p.sport = be16(f, t);
    p.dport = be16(f, t + 2);
    return Step::go_on();
}

// What a segment without ACK is (docs/PROBES.md): SYN without FIN and RST is
// an attempt; a reset without SYN is a stack's answer (passed, not counted);
// anything else -- NULL, FIN, Xmas, SYN+FIN, SYN+RST -- a probe. A tiny
// fragment that got here is a probe whatever its flags.
Reference::Step Reference::segment(Packet& p)
{
    uint8_t f = p.flags;
    bool synfin_attempt = flip == Flip::synfin_is_attempt && (f & kSyn) && !(f & kRst);
    if (p.tiny)
        p.type = CW_EV_PROBE;
    else if ((f & kSyn) && (!(f & (kFin | kRst)) || synfin_attempt))
        p.type = CW_EV_NEW_CONN;
    else if ((f & kRst) && !(f & kSyn))
        return Step::done(pass(CW_STAT_PASS_TCP_OTHER));
    else
        p.type = CW_EV_PROBE;
    return Step::go_on();
}

// 4.0 A source no packet may carry: passed, nothing recorded (bpf/martian.h's
// list; loopback sources are ordinary on loopback).
bool Reference::martian_source(const Addr& a, uint32_t ifindex) const
{
    static const Prefix v4[] = {
        {mapped_v4(std::array<uint8_t, 4>{0, 0, 0, 0}.data()), 96 + 8},
        {mapped_v4(std::array<uint8_t, 4>{224, 0, 0, 0}.data()), 96 + 4},
        {mapped_v4(std::array<uint8_t, 4>{255, 255, 255, 255}.data()), 128},
    };
    static const Prefix v4_loopback{mapped_v4(std::array<uint8_t, 4>{127, 0, 0, 0}.data()),
                                    96 + 8};
    static const Prefix v6_multicast{{0xff}, 8};
    static const Prefix v6_unspecified{{}, 128};
    static const Prefix v6_loopback{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128};
    for (const auto& m : v4)
        if (m.covers(a))
            return true;
    if (v6_multicast.covers(a) || v6_unspecified.covers(a))
        return true;
    if (ifindex != kLoopback && (v4_loopback.covers(a) || v6_loopback.covers(a)))
        return true;
    return false;
}

Reference::Step Reference::martian(Packet& p)
{
    if (martian_source(p.src, p.ifindex))
        return Step::done(pass(CW_STAT_PASS_MARTIAN));
    return Step::go_on();
}

// 4a. The same 4-tuple within dedup_ns is a retransmission: counted apart, not
// reported or counted as a port. Each one renews the interval. SYNs and probes
// are remembered apart.
Reference::Step Reference::retransmission(Packet& p)
{
    Flow flow{p.src, p.dst, p.sport, p.dport};
    auto& seen = p.type == CW_EV_PROBE ? probe_seen : syn_seen;
    auto it = seen.find(flow);
    bool again = it != seen.end() && now_ - it->second < config.dedup_ns;
    seen[flow] = now_;
    if (!again)
        return Step::go_on();
    if (p.type == CW_EV_PROBE) {
        count(CW_STAT_PROBE_RETRANSMIT);
        return Step::done(p.tiny ? tiny_verdict() : pass(CW_STAT_PASS_PROBE));
    }
    count(CW_STAT_SYN_RETRANSMIT);
    return Step::done(pass(CW_STAT_PASS_SYN));
}

cw_event Reference::event(const Packet& p, uint8_t type) const
{
    cw_event e{};
    e.ts_ns = now_;
    std::copy(p.src.begin(), p.src.end(), e.saddr.b);
    std::copy(p.dst.begin(), p.dst.end(), e.daddr.b);
    e.ifindex = p.ifindex;
    e.sport = p.sport;
    e.dport = p.dport;
    e.type = type;
    e.tcp_flags = p.flags;
    e.tiny_fragment = p.tiny;
    return e;
}

// 4b-d. Counted, the port recorded, the attempt or probe reported, then the
// scan if this port makes one, with what was done about it. The segment
// passes (a tiny fragment gets its own verdict).
Reference::Step Reference::attempt(Packet& p)
{
    if (p.type == CW_EV_PROBE) {
        count(CW_STAT_PROBE);
    } else {
        count(CW_STAT_SYN);
        syn_per_ifindex[p.ifindex]++;
    }
    unsigned len = 0;
    const Addr unit = unit_of(p.src, p.v4, &len);
    auto scan_ports = record_port(unit, p.dport);
    out_.events.push_back(event(p, p.type));
    if (scan_ports) {
        count(CW_STAT_SCAN);
        uint64_t expires = 0;
        cw_event e = event(p, CW_EV_SCAN);
        unsigned block_len = 0;
        e.action = automatic_block(p.src, unit, len, &expires, &block_len);
        e.expires_ns = expires;
        e.prefix_len = static_cast<uint8_t>(len);
        e.block_prefix_len = static_cast<uint8_t>(block_len);
        e.nports = static_cast<uint8_t>(scan_ports->size());
        std::copy(scan_ports->begin(), scan_ports->end(), e.ports);
        out_.events.push_back(e);
    }
    if (p.tiny)
        return Step::done(tiny_verdict());
    return Step::done(pass(p.type == CW_EV_PROBE ? CW_STAT_PASS_PROBE : CW_STAT_PASS_SYN));
}

std::map<uint16_t, uint64_t> Reference::live_ports(const SourceState& s, uint64_t now) const
{
    uint64_t now_ms = now / kNsPerMs + 1, window_ms = config.window_ns / kNsPerMs;
    std::map<uint16_t, uint64_t> out;
    for (auto [port, stamp] : s.ports)
        if (now_ms - stamp < window_ms)
            out.emplace(port, stamp);
    return out;
}

// A source reported within the window whose block (made at or after that
// report) has lapsed is judged afresh, as userspace does when it removes a block.
bool Reference::block_lapsed(const Addr& src, uint64_t reported_ms) const
{
    auto b = blocks.find(src);
    return b != blocks.end() && !b->second.active(now_) &&
           b->second.created_ns / kNsPerMs + 1 >= reported_ms;
}

// The sliding window (docs/ARCHITECTURE.md, "Port-scan detection"): ports hit
// within the previous window, in milliseconds; at most 32 remembered. More
// than `threshold` of them, and no report within the window: a scan.
std::optional<std::vector<uint16_t>> Reference::record_port(const Addr& src, uint16_t dport)
{
    uint64_t now_ms = now_ / kNsPerMs + 1, window_ms = config.window_ns / kNsPerMs;
    auto it = scan.find(src);
    if (it != scan.end() && it->second.reported_ms &&
        now_ms - it->second.reported_ms < window_ms && block_lapsed(src, it->second.reported_ms)) {
        scan.erase(it);
        it = scan.end();
    }
    SourceState& s = it != scan.end() ? it->second : scan[src];
    s.ports = live_ports(s, now_);
    if (s.ports.count(dport) || s.ports.size() < kScanSlots)
        s.ports[dport] = now_ms;
    uint32_t threshold = std::min<uint32_t>(config.threshold, kScanSlots - 1);
    size_t n = s.ports.size();
    bool scan_now = flip == Flip::threshold_inclusive ? n >= threshold : n > threshold;
    if (!scan_now)
        return std::nullopt;
    if (s.reported_ms && now_ms - s.reported_ms < window_ms)
        return std::nullopt; // one report per window
    s.reported_ms = now_ms;
    std::vector<uint16_t> ports;
    for (auto [port, stamp] : s.ports)
        ports.push_back(port);
    return ports;
}

// docs/ARCHITECTURE.md, "IPv6 prefixes": ipv4-prefix counts in the IPv4
// part (a /24 is 96 + 24 of the 128-bit form); 0, 32 and 128 are per address.
unsigned Reference::source_length(const Addr&, bool v4) const
{
    if (v4)
        return config.ipv4_prefix > 0 && config.ipv4_prefix < 32 ? 96u + config.ipv4_prefix : 0u;
    return config.ipv6_prefix > 0 && config.ipv6_prefix < 128 ? config.ipv6_prefix : 0u;
}

Addr Reference::unit_of(const Addr& src, bool v4, unsigned* len) const
{
    *len = source_length(src, v4);
    if (!*len)
        return src;
    Addr m = masked(src, *len);
    // An allow entry longer than the prefix, inside it: per address. (One
    // that covers the whole prefix covers the source: that is allowed().)
    // The entry's family is the one its own address says: an IPv4 entry is
    // compared at ipv4-prefix, an IPv6 one at ipv6-prefix.
    for (const Prefix& p : allow) {
        bool p4 = std::all_of(p.addr.begin(), p.addr.begin() + 10, [](uint8_t b) { return b == 0; }) &&
                  p.addr[10] == 0xff && p.addr[11] == 0xff && p.len >= 96;
        if (p4 != v4 || p.len <= *len)
            continue;
        if (masked(p.addr, *len) == m) {
            *len = 0;
            return src;
        }
    }
    return m;
}

bool Reference::allowed(const Addr& a) const
{
    // No family mark here: an IPv6 entry covering mapped keys exempts IPv4
    // sources too (docs/ARCHITECTURE.md: errs on the safe side).
    return std::any_of(allow.begin(), allow.end(), [&](const Prefix& p) { return p.covers(a); });
}

// GCRA: a block may be made while the theoretical arrival time is at most
// block_slack_ns ahead of now; each moves it block_every_ns on from
// max(tat, now). No bound when block_every_ns is 0.
bool Reference::take_token()
{
    if (!config.block_every_ns)
        return true;
    uint64_t from = std::max(bucket_tat, now_);
    if (from - now_ > config.block_slack_ns)
        return false;
    bucket_tat = from + config.block_every_ns;
    return true;
}

// The automatic block: never for an allowlisted source, not in monitor-only
// mode, not beyond the token bucket (checked last: only a block about to be
// made spends a token), not when block_addr is full (an expired entry of the
// source itself is renewed, which needs no room).
uint8_t Reference::automatic_block(const Addr& src, Addr unit, unsigned len, uint64_t* expires,
                                   unsigned* block_len)
{
    if (allowed(src)) {
        count(CW_STAT_BLOCK_ALLOWED);
        return CW_ACT_ALLOWLISTED;
    }
    if (config.monitor_only) {
        count(CW_STAT_BLOCK_MONITOR);
        return CW_ACT_MONITOR_ONLY;
    }
    if (!take_token()) {
        count(CW_STAT_BLOCK_RATE_LIMITED);
        return CW_ACT_RATE_LIMITED;
    }
    // A prefix's key is also its first address: an active block of that
    // address alone is someone else's and stays; the scanner is then blocked
    // alone.
    if (len) {
        auto old = blocks.find(unit);
        if (old != blocks.end() && !old->second.prefix_len && old->second.active(now_)) {
            unit = src;
            len = 0;
        }
    }
    Block b{now_, config.block_ns ? now_ + config.block_ns : 0, CW_ORIGIN_SCAN, false, len};
    if (!blocks.count(unit) && blocks.size() >= max_blocks_) {
        count(CW_STAT_BLOCK_FULL);
        return CW_ACT_BLOCKLIST_FULL;
    }
    blocks[unit] = b;
    count(CW_STAT_BLOCK_ADDED);
    if (len)
        count(CW_STAT_BLOCK_PREFIX_ADDED);
    *expires = b.expires_ns;
    *block_len = len;
    return CW_ACT_BLOCKED;
}

} // namespace connwatch::ref
