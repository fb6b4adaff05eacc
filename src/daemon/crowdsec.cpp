// SPDX-License-Identifier: GPL-2.0-only
// The Manager's side of CrowdSec (docs/CROWDSEC.md): it starts the worker
// thread that talks to the LAPI, and applies what the worker reports — from the
// event loop, so the BlockTable stays single-threaded. Detected scans go the
// other way, as alerts.
#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <stdexcept>

#include "base/clock.h"
#include "base/error.h"
#include "common/duration.h"
#include "common/format.h"
#include "crowdsec/client.h"
#include "daemon/manager.h"
#include "events/events.h"

namespace connwatch {

namespace {

// A decision for a block made "until removed" (block-duration 0): CrowdSec's
// decisions always have a duration.
constexpr std::chrono::seconds kForever = std::chrono::hours(24 * 365);
// Prefixes named in one log line; the rest is a count.
constexpr size_t kNamed = 10;

// The first kNamed of a list, and how many there are: a startup pull of
// 100 k decisions writes ten names, not 100 k strings.
struct Names {
    std::vector<std::string> first;
    size_t n = 0;
    // Counts one; true when it is to be named (then push it to first).
    bool count() { return n++ < kNamed; }
    size_t size() const { return n; }
    bool empty() const { return n == 0; }
};

std::string named(const Names& items)
{
    std::string out;
    for (size_t i = 0; i < items.first.size(); i++)
        out += (i ? ", " : "") + items.first[i];
    if (items.n > items.first.size())
        out += " and " + std::to_string(items.n - items.first.size()) + " more";
    return out;
}

std::string named(const std::vector<std::string>& items)
{
    Names n;
    for (const auto& i : items)
        if (n.count())
            n.first.push_back(i);
    return named(n);
}

// An address alone for a host prefix, as the scan and block lines write it.
std::string text_of(const Cidr& c)
{
    return c.is_host() ? c.address().str() : c.str();
}

} // namespace

std::optional<crowdsec::Settings> crowdsec_settings(const Options& o)
{
    if (o.crowdsec_lapi_url.empty() && o.crowdsec_machine_credentials_file.empty())
        return std::nullopt;
    crowdsec::Settings s;
    s.lapi_url = o.crowdsec_lapi_url;
    s.poll_interval = o.crowdsec_poll_interval;
    s.ca_file = o.crowdsec_ca_file;
    auto read = [](const char* key, const std::string& path, auto parse) {
        std::string text;
        try {
            text = crowdsec::read_secret_file(path);
        } catch (const std::runtime_error& e) {
            throw Error(std::string(key) + ": " + e.what());
        }
        try {
            return parse(text);
        } catch (const std::runtime_error& e) {
            throw Error(std::string(key) + " " + path + ": " + e.what());
        }
    };
    if (!o.crowdsec_bouncer_key_file.empty())
        s.bouncer_key = read("crowdsec-bouncer-key-file", o.crowdsec_bouncer_key_file,
                             [](const std::string& t) { return crowdsec::parse_bouncer_key(t); });
    if (!o.crowdsec_machine_credentials_file.empty())
        s.machine = read("crowdsec-machine-credentials-file", o.crowdsec_machine_credentials_file,
                         [](const std::string& t) {
                             return crowdsec::parse_machine_credentials(t);
                         });
    return s;
}

void Manager::apply_crowdsec(std::optional<crowdsec::Settings> settings)
{
    if (crowdsec_ && settings && crowdsec_->settings() == *settings)
        return; // unchanged by a reload: the worker goes on, its stream too
    std::deque<nlohmann::json> pending;
    if (crowdsec_) {
        epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, crowdsec_->fd(), nullptr);
        pending = crowdsec_->take_alerts();
        crowdsec_.reset(); // aborts a request under way, joins the thread
    }
    if (!settings || settings->lapi_url.empty()) {
        // No bouncer (any more): its decisions are not mirrored, so not enforced.
        ledger_ = {};
        size_t lifted = table_->withdraw_many(table_->mirrored()).size();
        if (lifted) {
            sink_->notice("CrowdSec bouncer not configured: lifted " + std::to_string(lifted) +
                          " blocks mirrored from CrowdSec decisions");
            save_state();
        }
    }
    if (!settings) {
        if (!pending.empty())
            sink_->warning("CrowdSec watcher no longer configured: " +
                           std::to_string(pending.size()) + " queued alerts not sent");
        return;
    }
    crowdsec_ = std::make_unique<crowdsec::Worker>(*settings);
    if (settings->machine)
        for (auto& a : pending)
            crowdsec_->send_alert(std::move(a));
    add_fd(crowdsec_->fd());
    std::string what;
    if (!settings->lapi_url.empty())
        what = "bouncer pulling decisions from " + settings->lapi_url + " every " +
               format_duration(settings->poll_interval);
    if (settings->machine)
        what += (what.empty() ? "" : "; ") + std::string("watcher sending port-scan alerts to ") +
                settings->machine->url + " as " + settings->machine->login;
    sink_->notice("CrowdSec: " + what);
}

std::optional<protocol::CrowdsecStatus> Manager::crowdsec_status() const
{
    if (!crowdsec_)
        return std::nullopt;
    const auto& s = crowdsec_->settings();
    const auto& c = crowdsec_->counters();
    protocol::CrowdsecStatus out;
    if (!s.lapi_url.empty())
        out.bouncer = protocol::CrowdsecStatus::Bouncer{
            s.lapi_url, c.last_pull, table_->counts().crowdsec, c.pulls_failing_since,
            c.pull_failures_in_row};
    if (s.machine)
        out.watcher = protocol::CrowdsecStatus::Watcher{
            s.machine->url, s.machine->login,  c.alerts_sent,
            c.alerts_queued, c.alerts_dropped, c.alerts_failing_since};
    return out;
}

std::string Manager::crowdsec_summary() const
{
    auto cs = crowdsec_status();
    if (!cs)
        return "";
    // No times that change at every poll: STATUS= is sent when it changes.
    std::string out = "; CrowdSec:";
    if (const auto& b = cs->bouncer) {
        out += " " + std::to_string(b->decisions) + " decisions mirrored";
        if (b->failing_since)
            out += ", LAPI failing since " + format_timestamp(b->failing_since);
        else if (!b->last_pull)
            out += ", no pull yet";
    }
    if (const auto& w = cs->watcher) {
        out += std::string(cs->bouncer ? "," : "") + " " + std::to_string(w->alerts_sent) +
               " alerts sent, " + std::to_string(w->alerts_queued) + " queued";
        if (w->failing_since)
            out += " (sending fails since " + format_timestamp(w->failing_since) + ")";
    }
    return out;
}

void Manager::on_crowdsec()
{
    if (!crowdsec_)
        return;
    for (auto& r : crowdsec_->take()) {
        switch (r.kind) {
        case crowdsec::Report::Kind::Notice: sink_->notice(r.text); break;
        case crowdsec::Report::Kind::Warning: sink_->warning(r.text); break;
        case crowdsec::Report::Kind::Decisions: mirror_decisions(r.batch, r.startup); break;
        }
    }
}

void Manager::mirror_decisions(const crowdsec::StreamBatch& batch, bool startup)
{
    auto now_s = static_cast<int64_t>(monotonic_now_ns() / kNsPerSec);
    auto changes = ledger_.apply(batch, startup, now_s);
    // The reason each new block shows: its longest decision's (the last one
    // of the batch for the prefix is as good; they share scenario and origin).
    std::map<Cidr, const crowdsec::Decision*> why;
    for (const auto& d : batch.added)
        why[d.prefix] = &d;
    // Applied in bulk: a startup pull of a community blocklist is 100 k
    // decisions, the kernel's maps written in batches (bench/crowdsec_bench).
    std::vector<Cidr> ends;
    std::vector<BlockTable::MirrorItem> items;
    for (const auto& c : changes) {
        if (!c.remaining) {
            ends.push_back(c.prefix);
            continue;
        }
        auto it = why.find(c.prefix);
        items.push_back({c.prefix, *c.remaining,
                         it != why.end() ? crowdsec::block_reason(*it->second) : "crowdsec"});
    }
    Names added, lifted, refused;
    size_t updated = 0;
    for (const auto& p : table_->withdraw_many(ends))
        if (lifted.count())
            lifted.first.push_back(text_of(p));
    auto done = table_->mirror_many(items);
    for (size_t i = 0; i < items.size(); i++) {
        const auto& m = done[i];
        const auto& p = items[i].prefix;
        using O = BlockTable::Mirror::Outcome;
        switch (m.outcome) {
        case O::Added:
            if (added.count())
                added.first.push_back(text_of(p) + " (" + format_duration(items[i].remaining) +
                                      ")");
            break;
        case O::Updated: updated++; break;
        case O::Kept: break;
        case O::Refused:
            if (refused.count())
                refused.first.push_back(text_of(p) + ": " + m.why);
            break;
        }
    }
    size_t stale = 0;
    if (startup) {
        // Everything the LAPI holds came in this batch: a mirrored block it no
        // longer has (deleted while connwatchd was not running, or before a
        // restart) ends here; until now it kept dropping.
        std::vector<Cidr> gone;
        for (const auto& p : table_->mirrored())
            if (!ledger_.holds(p))
                gone.push_back(p);
        for (const auto& p : table_->withdraw_many(gone)) {
            if (lifted.count())
                lifted.first.push_back(text_of(p));
            stale++;
        }
    }
    crowdsec_decisions_["added"] += added.size();
    crowdsec_decisions_["updated"] += updated;
    crowdsec_decisions_["withdrawn"] += lifted.size();
    crowdsec_decisions_["refused"] += refused.size();
    crowdsec_decisions_["ignored"] += batch.ignored;
    crowdsec_decisions_["invalid"] += batch.bad;

    if (startup)
        sink_->notice("CrowdSec: first pull: " + std::to_string(ledger_.prefixes()) +
                      " prefixes decided (" + std::to_string(batch.added.size()) +
                      " ban decisions), " + std::to_string(stale) + " mirrored blocks no longer decided lifted");
    if (!added.empty())
        sink_->notice("CrowdSec: blocked " + named(added));
    if (!lifted.empty())
        sink_->notice("CrowdSec: lifted " + named(lifted));
    // Once a poll, whatever the number: the LAPI sends them again only when
    // they change.
    auto decisions = [](size_t n) {
        return std::to_string(n) + (n == 1 ? " decision" : " decisions");
    };
    if (!refused.empty())
        sink_->warning("CrowdSec: refused " + decisions(refused.size()) +
                       " (never blocked: allowlisted, this host's, too wide, or the list is "
                       "full): " +
                       named(refused));
    if (batch.bad)
        sink_->warning("CrowdSec: " + decisions(batch.bad) +
                       " could not be read, ignoring them: " + named(batch.problems));
    save_state();
}

void Manager::alert_crowdsec(const PortScan& s)
{
    if (!crowdsec_ || !crowdsec_->settings().machine)
        return;
    // An allowlisted source is never blocked here, and must not be anywhere
    // else through us (a spoofed scan from an administrator's address).
    if (s.action == CW_ACT_ALLOWLISTED)
        return;
    crowdsec::ScanAlert a;
    a.when = s.when;
    a.src = s.src;
    a.dst = s.dst;
    a.ports = s.ports;
    a.ifname = s.ifname;
    a.threshold = opts_.threshold;
    a.window = opts_.window;
    // Counted as a prefix (ipv6-prefix, ipv4-prefix): the prefix blocked here,
    // or, when not blocked here, the prefix counted, is what the fleet is told.
    // A scan counted as a prefix but blocked alone (the prefix's first address
    // held another block) is sent as that address.
    if (s.action == CW_ACT_BLOCKED ? s.blocked_prefix.has_value() : s.scanner_prefix.has_value())
        a.range = s.action == CW_ACT_BLOCKED ? s.blocked_prefix : s.scanner_prefix;
    if (s.action == CW_ACT_BLOCKED)
        a.ban = s.expires ? std::chrono::seconds(std::max<std::time_t>(1, s.expires - s.when))
                          : kForever;
    else if (s.action == CW_ACT_BLOCKLIST_FULL)
        // Not blocked here for want of room; the fleet still should.
        a.ban = opts_.block_duration.count() ? opts_.block_duration : kForever;
    // CW_ACT_MONITOR_ONLY: reported, no decision asked for.
    crowdsec_->send_alert(crowdsec::make_alert(a));
}

} // namespace connwatch
