// SPDX-License-Identifier: GPL-2.0-only
#include "crowdsec/client.h"

#include <curl/curl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <stdexcept>

#include "base/error.h"

namespace connwatch::crowdsec {

namespace {

using Json = nlohmann::json;

// Bounds of every request: the LAPI answers a pull in milliseconds; a startup
// pull with community blocklists is megabytes, still seconds.
constexpr long kConnectTimeoutMs = 5000;
constexpr long kRequestTimeoutMs = 60000;
constexpr size_t kMaxAnswerBytes = size_t{128} << 20;
constexpr size_t kAlertsPerPost = 50;

struct Answer {
    long status = 0;   // HTTP status; 0 when no answer came
    std::string body;
    std::string error; // transport failure (status 0)
};

struct Transfer {
    std::string* body;
    const std::atomic<bool>* abort;
    bool too_large = false;
};

size_t on_data(char* data, size_t size, size_t n, void* user)
{
    auto* t = static_cast<Transfer*>(user);
    if (t->body->size() + size * n > kMaxAnswerBytes) {
        t->too_large = true;
        return 0; // aborts the transfer
    }
    t->body->append(data, size * n);
    return size * n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t)
{
    return static_cast<Transfer*>(user)->abort->load() ? 1 : 0;
}

// One request on `curl` (reused: its connection stays open between polls).
// TLS certificates are verified (libcurl's default), against `ca_file` when
// set, else the system's store.
Answer request(CURL* curl, const std::string& ca_file, const std::atomic<bool>& abort,
               const std::string& method,
               const std::string& url, const std::vector<std::string>& headers,
               const std::string* body)
{
    Answer a;
    Transfer t{&a.body, &abort};
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_slist* hdrs = nullptr;
    for (const auto& h : headers)
        hdrs = curl_slist_append(hdrs, h.c_str());
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, kConnectTimeoutMs);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, kRequestTimeoutMs);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "connwatch/" CONNWATCH_VERSION);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    if (!ca_file.empty())
        curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file.c_str());
    if (method == "POST") {
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? body->c_str() : "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(body ? body->size() : 0));
    }
    CURLcode rc = curl_easy_perform(curl);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        a.error = t.too_large ? "the answer is larger than 128 MiB"
                  : *errbuf   ? errbuf
                              : curl_easy_strerror(rc);
        a.body.clear();
        return a;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a.status);
    return a;
}

// The first line of an answer's body, short, for a log line.
std::string excerpt(const std::string& body)
{
    std::string s = body.substr(0, std::min<size_t>(body.find('\n'), 200));
    for (auto& c : s)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e)
            c = '?';
    return s.empty() ? "(empty)" : s;
}

// Why an answer is not a success, in words.
std::string failure_of(const Answer& a)
{
    if (a.status == 0)
        return a.error;
    return "HTTP " + std::to_string(a.status) + ": " + excerpt(a.body);
}

// The curl handle of the worker thread, freed with it.
struct Curl {
    CURL* h = curl_easy_init();
    ~Curl()
    {
        if (h)
            curl_easy_cleanup(h);
    }
};
thread_local Curl* t_curl = nullptr;

} // namespace

std::chrono::seconds backoff(std::chrono::seconds interval, unsigned failures)
{
    auto cap = std::max(interval, std::chrono::seconds(60));
    auto d = std::max(interval, std::chrono::seconds(1));
    for (unsigned i = 1; i < failures && d < cap; i++)
        d *= 2;
    return std::min(d, cap);
}

Worker::Worker(Settings s) : settings_(std::move(s))
{
    // Once per process, before any thread uses libcurl (not thread-safe itself).
    static const CURLcode global = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (global != CURLE_OK)
        throw Error(std::string("libcurl: ") + curl_easy_strerror(global));
    event_ = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!event_)
        throw Error("eventfd", errno_code(errno));
    thread_ = std::thread([this] { run(); });
}

Worker::~Worker()
{
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    abort_ = true;
    cv_.notify_all();
    if (thread_.joinable())
        thread_.join();
}

void Worker::report(Report r)
{
    {
        std::lock_guard lock(mu_);
        reports_.push_back(std::move(r));
    }
    uint64_t one = 1;
    // Full (2^64-2 unread) cannot happen; a failure would only delay the loop.
    [[maybe_unused]] auto n = write(event_.get(), &one, sizeof(one));
}

std::vector<Report> Worker::take()
{
    uint64_t n;
    while (read(event_.get(), &n, sizeof(n)) > 0) {
    }
    std::lock_guard lock(mu_);
    std::vector<Report> out(std::make_move_iterator(reports_.begin()),
                            std::make_move_iterator(reports_.end()));
    reports_.clear();
    return out;
}

void Worker::send_alert(nlohmann::json alert)
{
    if (!settings_.machine)
        return;
    {
        std::lock_guard lock(mu_);
        if (alerts_.size() >= settings_.alert_queue_max) {
            alerts_.pop_front();
            counters_.alerts_dropped++;
        }
        alerts_.emplace_back(next_seq_++, std::move(alert));
        counters_.alerts_queued = alerts_.size();
    }
    cv_.notify_all();
}

std::deque<nlohmann::json> Worker::take_alerts()
{
    std::lock_guard lock(mu_);
    std::deque<nlohmann::json> out;
    for (auto& [seq, a] : alerts_)
        out.push_back(std::move(a));
    alerts_.clear();
    counters_.alerts_queued = 0;
    return out;
}

void Worker::run()
{
    Curl curl;
    t_curl = &curl;
    if (!curl.h) {
        report({Report::Kind::Warning, {}, false,
                "CrowdSec: libcurl could not make a handle; no pulls, no alerts"});
        return;
    }
    std::unique_lock lock(mu_);
    while (!stop_) {
        auto now = Clock::now();
        bool bouncer = !settings_.lapi_url.empty();
        if (bouncer && now >= next_pull_) {
            lock.unlock();
            pull();
            lock.lock();
            continue;
        }
        if (!alerts_.empty() && now >= next_alert_try_) {
            lock.unlock();
            send_alerts();
            lock.lock();
            continue;
        }
        auto until = Clock::time_point::max();
        if (bouncer)
            until = next_pull_;
        if (!alerts_.empty())
            until = std::min(until, next_alert_try_);
        if (until == Clock::time_point::max())
            cv_.wait(lock);
        else
            cv_.wait_until(lock, until);
    }
}

void Worker::pull()
{
    const bool startup = startup_pending_;
    std::string url = join_url(settings_.lapi_url,
                               startup ? "v1/decisions/stream?startup=true" : "v1/decisions/stream");
    auto a = request(t_curl->h, settings_.ca_file, abort_, "GET", url, {"X-Api-Key: " + settings_.bouncer_key}, nullptr);
    if (abort_)
        return;
    std::string why;
    StreamBatch batch;
    if (a.status == 200) {
        try {
            batch = decode_stream(a.body);
        } catch (const std::exception& e) {
            why = std::string("the answer is not a decision stream: ") + e.what();
        }
    } else if (a.status == 401 || a.status == 403) {
        why = failure_of(a) + " (the LAPI refused the bouncer key: check "
                              "crowdsec-bouncer-key-file against 'cscli bouncers list')";
    } else {
        why = failure_of(a);
    }
    counters_.pulls++;
    if (!why.empty()) {
        counters_.pull_failures++;
        pull_failures_in_row_++;
        counters_.pull_failures_in_row = pull_failures_in_row_;
        if (pull_failures_in_row_ == 1)
            counters_.pulls_failing_since = std::time(nullptr);
        auto wait = backoff(settings_.poll_interval, pull_failures_in_row_);
        next_pull_ = Clock::now() + wait;
        // Once per outage; the metric counts every failure.
        if (pull_failures_in_row_ == 1)
            report({Report::Kind::Warning, {}, false,
                    "CrowdSec: pulling decisions from " + settings_.lapi_url + " failed: " + why +
                        "; keeping the current decisions, retrying with backoff (said again when "
                        "it works)"});
        return;
    }
    if (pull_failures_in_row_)
        report({Report::Kind::Notice, {}, false,
                "CrowdSec: " + settings_.lapi_url + " answers again, after " +
                    std::to_string(pull_failures_in_row_) + " failed pulls"});
    pull_failures_in_row_ = 0;
    counters_.pull_failures_in_row = 0;
    counters_.pulls_failing_since = 0;
    counters_.last_pull = std::time(nullptr);
    startup_pending_ = false;
    next_pull_ = Clock::now() + settings_.poll_interval;
    report({Report::Kind::Decisions, std::move(batch), startup, ""});
}

bool Worker::login(std::string* why)
{
    const auto& m = *settings_.machine;
    std::string body = login_body(m.login, m.password);
    auto a = request(t_curl->h, settings_.ca_file, abort_, "POST", join_url(m.url, "v1/watchers/login"),
                     {"Content-Type: application/json"}, &body);
    if (a.status != 200) {
        *why = "login as " + m.login + " failed: " + failure_of(a);
        if (a.status == 401 || a.status == 403)
            *why += " (check crowdsec-machine-credentials-file against 'cscli machines list'; "
                    "the machine must be validated)";
        return false;
    }
    try {
        auto j = Json::parse(a.body);
        token_ = j.at("token").get<std::string>();
        token_refresh_ = Clock::now() + token_refresh_in(j.value("expire", ""), std::time(nullptr));
    } catch (const std::exception& e) {
        *why = std::string("login answer without a token: ") + e.what();
        token_.clear();
        return false;
    }
    counters_.logins++;
    return true;
}

void Worker::send_alerts()
{
    const auto& m = *settings_.machine;
    std::vector<Json> batch;
    uint64_t last_seq = 0;
    {
        std::lock_guard lock(mu_);
        for (size_t i = 0; i < alerts_.size() && i < kAlertsPerPost; i++) {
            batch.push_back(alerts_[i].second);
            last_seq = alerts_[i].first;
        }
    }
    std::string body = Json(batch).dump();
    std::string why;
    bool sent = false;
    // A token refused (expired early, the LAPI restarted with a new secret):
    // one fresh login and one retry.
    std::string refused; // the 401 that made the token go
    for (int attempt = 0; attempt < 2 && why.empty() && !sent; attempt++) {
        if (!token_.empty() && Clock::now() >= token_refresh_) {
            token_.clear(); // about to expire: a new one before the LAPI refuses it
            counters_.relogins_expiry++;
        }
        if (token_.empty() && !login(&why))
            break;
        if (!refused.empty()) {
            counters_.relogins_refused++;
            report({Report::Kind::Notice, {}, false,
                    "CrowdSec: " + m.url + " refused the watcher's token (" + refused +
                        "; its JWT secret changed, a restart without CS_LAPI_SECRET, or the "
                        "token expired early): logged in again as " + m.login});
            refused.clear();
        }
        auto a = request(t_curl->h, settings_.ca_file, abort_, "POST", join_url(m.url, "v1/alerts"),
                         {"Content-Type: application/json", "Authorization: Bearer " + token_},
                         &body);
        if (abort_)
            return;
        if (a.status == 200 || a.status == 201)
            sent = true;
        else if (a.status == 401 && attempt == 0) {
            token_.clear();
            refused = failure_of(a);
        }
        else
            why = "sending alerts failed: " + failure_of(a);
    }
    if (abort_)
        return;
    if (!sent) {
        counters_.alert_failures++;
        alert_failures_in_row_++;
        if (alert_failures_in_row_ == 1)
            counters_.alerts_failing_since = std::time(nullptr);
        next_alert_try_ = Clock::now() + backoff(settings_.poll_interval, alert_failures_in_row_);
        if (alert_failures_in_row_ == 1)
            report({Report::Kind::Warning, {}, false,
                    "CrowdSec: " + why + "; the alerts wait in a queue of at most " +
                        std::to_string(settings_.alert_queue_max) +
                        " (the oldest dropped when full), retrying with backoff (said again "
                        "when it works)"});
        return;
    }
    if (alert_failures_in_row_)
        report({Report::Kind::Notice, {}, false,
                "CrowdSec: " + m.url + " takes alerts again, after " +
                    std::to_string(alert_failures_in_row_) + " failed attempts"});
    alert_failures_in_row_ = 0;
    counters_.alerts_failing_since = 0;
    next_alert_try_ = {};
    std::lock_guard lock(mu_);
    // What was sent, by number: the queue may have lost some of them to an
    // overflow meanwhile, and gained newer ones.
    while (!alerts_.empty() && alerts_.front().first <= last_seq)
        alerts_.pop_front();
    counters_.alerts_sent += batch.size();
    counters_.alerts_queued = alerts_.size();
}

} // namespace connwatch::crowdsec
