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

std::string named(const std::vector<std::string>& items)
{
    std::string out;
    for (size_t i = 0; i < items.size() && i < kNamed; i++)
        out += (i ? ", " : "") + items[i];
    if (items.size() > kNamed)
        out += " and " + std::to_string(items.size() - kNamed) + " more";
    return out;
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
        size_t lifted = 0;
        for (const auto& p : table_->mirrored())
            lifted += table_->withdraw(p) ? 1 : 0;
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
    std::vector<std::string> added, updated, lifted, refused;
    for (const auto& c : changes) {
        if (!c.remaining) {
            if (table_->withdraw(c.prefix))
                lifted.push_back(text_of(c.prefix));
            continue;
        }
        auto it = why.find(c.prefix);
        std::string reason = it != why.end() ? crowdsec::block_reason(*it->second) : "crowdsec";
        auto m = table_->mirror(c.prefix, *c.remaining, std::move(reason));
        using O = BlockTable::Mirror::Outcome;
        switch (m.outcome) {
        case O::Added:
            added.push_back(text_of(c.prefix) + " (" + format_duration(*c.remaining) + ")");
            break;
        case O::Updated: updated.push_back(text_of(c.prefix)); break;
        case O::Kept: break;
        case O::Refused: refused.push_back(text_of(c.prefix) + ": " + m.why); break;
        }
    }
    size_t stale = 0;
    if (startup) {
        // Everything the LAPI holds came in this batch: a mirrored block it no
        // longer has (deleted while connwatchd was not running, or before a
        // restart) ends here; until now it kept dropping.
        for (const auto& p : table_->mirrored())
            if (!ledger_.holds(p) && table_->withdraw(p)) {
                lifted.push_back(text_of(p));
                stale++;
            }
    }
    crowdsec_decisions_["added"] += added.size();
    crowdsec_decisions_["updated"] += updated.size();
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
