// SPDX-License-Identifier: GPL-2.0-only
// The CrowdSec Local API client (docs/CROWDSEC.md): one worker thread that does
// every HTTP request — the bouncer's decision pulls, the watcher's login and
// alerts — so that a slow or absent LAPI never holds the daemon's event loop.
//
// The thread touches nothing of the daemon: what it learns (decision batches,
// lines to log) waits in a queue, and an eventfd tells the loop; the Manager
// applies it to the BlockTable from the loop, single-threaded as ever. Alerts
// go the other way through a bounded queue.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/unique_fd.h"
#include "crowdsec/lapi_protocol.h"

namespace connwatch::crowdsec {

struct Settings {
    // The bouncer: empty url = off.
    std::string lapi_url, bouncer_key;
    std::chrono::seconds poll_interval{10};
    // PEM bundle an https:// LAPI's certificate is checked against; empty:
    // the system's store (crowdsec-ca-file).
    std::string ca_file;
    // The watcher: nullopt = off.
    std::optional<MachineCredentials> machine;
    size_t alert_queue_max = 1000;
    bool operator==(const Settings&) const = default;
};

// What the worker hands the loop.
struct Report {
    enum class Kind { Decisions, Notice, Warning } kind = Kind::Notice;
    StreamBatch batch; // Decisions
    bool startup = false; // Decisions: the batch is every decision there is
    std::string text;  // Notice, Warning
};

// Counted by the worker, read by the loop for the metrics.
struct Counters {
    std::atomic<uint64_t> pulls{0}, pull_failures{0};
    std::atomic<uint64_t> alerts_sent{0}, alerts_dropped{0}, alert_failures{0};
    std::atomic<uint64_t> logins{0};
    // Logins again: the token was about to expire, or the LAPI refused it (401).
    std::atomic<uint64_t> relogins_expiry{0}, relogins_refused{0};
    std::atomic<uint64_t> alerts_queued{0}; // waiting now
    // For connwatchctl status (Unix seconds, 0 = never / not failing).
    std::atomic<int64_t> last_pull{0};          // the last successful pull
    std::atomic<int64_t> pulls_failing_since{0}; // the first failed pull of an outage
    std::atomic<uint64_t> pull_failures_in_row{0};
    std::atomic<int64_t> alerts_failing_since{0};
};

class Worker {
public:
    // Starts the thread (the first pull at once). Throws Error when the
    // eventfd cannot be made.
    explicit Worker(Settings s);
    // Stops the thread: a request under way is aborted, not waited for.
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    const Settings& settings() const { return settings_; }
    // Readable when reports wait.
    int fd() const { return event_.get(); }
    // Every report waiting, oldest first.
    std::vector<Report> take();
    // Queues one alert (an element of POST /v1/alerts' list). When the queue
    // is full the oldest alert is dropped and counted. No-op without a watcher.
    void send_alert(nlohmann::json alert);
    // The alerts not sent yet (for a successor after a reload).
    std::deque<nlohmann::json> take_alerts();
    const Counters& counters() const { return counters_; }

private:
    void run();
    void pull();
    void send_alerts();
    bool login(std::string* why);
    void report(Report r);

    Settings settings_;
    UniqueFd event_;
    Counters counters_;

    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::atomic<bool> abort_{false}; // read by libcurl's progress callback
    std::deque<Report> reports_;
    std::deque<std::pair<uint64_t, nlohmann::json>> alerts_; // sequence number, alert
    uint64_t next_seq_ = 1;

    // The worker thread's own (no lock).
    using Clock = std::chrono::steady_clock;
    bool startup_pending_ = true;
    unsigned pull_failures_in_row_ = 0;
    Clock::time_point next_pull_{};
    unsigned alert_failures_in_row_ = 0;
    Clock::time_point next_alert_try_{};
    std::string token_;
    Clock::time_point token_refresh_{};

    std::thread thread_; // last: started once everything above is in place
};

// Backoff after `failures` failed attempts in a row (1, 2, ...): the interval
// doubled each time, at most max(interval, 60 s).
std::chrono::seconds backoff(std::chrono::seconds interval, unsigned failures);

} // namespace connwatch::crowdsec
