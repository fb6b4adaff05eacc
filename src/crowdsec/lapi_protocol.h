// SPDX-License-Identifier: GPL-2.0-only
// The CrowdSec Local API as connwatchd speaks it (docs/CROWDSEC.md), without
// the network: the decision stream decoded, Go durations, the alert a detected
// scan becomes, the machine credentials file, and the ledger that tells which
// decisions still hold a prefix blocked. Pure functions and one class, so the
// unit tests and the fuzzer reach all of it.
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/address.h"

namespace connwatch::crowdsec {

// The scenario connwatchd's alerts carry, and the one it declares at login.
inline constexpr const char* kScenario = "connwatch/port-scan";
// The origin of the decisions its alerts carry: a watcher's, as the CrowdSec
// agent's own ("crowdsec"). `cscli alerts list` shows only the origins crowdsec
// and cscli unless given --all; the scenario tells connwatch's apart.
inline constexpr const char* kOrigin = "crowdsec";

// A Go time.Duration as the LAPI writes it: "59m58.67s", "-68.7ms", "1h",
// "0s", "3.5µs". Signed; nullopt for anything else (and for overflow).
std::optional<std::chrono::nanoseconds> parse_go_duration(std::string_view text);
// Whole seconds, as a Go duration: "3600s".
std::string go_duration(std::chrono::seconds s);

// One ban decision of the stream, mirrored as a block.
struct Decision {
    int64_t id = 0;
    Cidr prefix;                        // scope Ip: a host prefix; scope Range: the range
    std::chrono::nanoseconds remaining; // negative in "deleted"
    std::string origin, scenario;       // for the block's reason
};

// One answer of GET /v1/decisions/stream.
struct StreamBatch {
    std::vector<Decision> added, deleted;
    // Decisions connwatch does not act on: another type than ban (captcha,
    // throttle, ...) or another scope than Ip and Range (Country, AS, ...).
    size_t ignored = 0;
    // Decisions that could not be read (no value, a bad address or duration):
    // each costs only itself; the first few are described in `problems`.
    size_t bad = 0;
    std::vector<std::string> problems;
};

// Decodes the stream's JSON. Throws std::runtime_error when the text is not a
// decision stream at all (not JSON, not an object, "new" neither a list nor
// null): the caller keeps what it has and counts a failed pull.
StreamBatch decode_stream(std::string_view json_text);

// The reason a mirrored block shows in `connwatchctl list`.
std::string block_reason(const Decision& d);

// What a detected scan is sent as (POST /v1/alerts takes a list of these).
struct ScanAlert {
    std::time_t when = 0;
    Address src, dst;
    std::vector<uint16_t> ports;
    std::string ifname;
    uint32_t threshold = 0;
    std::chrono::seconds window{0};
    // The ban decision the alert carries: the local block's duration. None
    // (monitor-only): the alert reports the scan and asks no one to block.
    std::optional<std::chrono::seconds> ban;
    // Set when the scan was counted and blocked as a whole prefix
    // (ipv6-prefix, ipv4-prefix: 2001:db8:1:2::/64): the alert's source and
    // its decision then have scope Range and this prefix as value, so the
    // fleet blocks what this host blocked. Unset: scope Ip, src.
    std::optional<Cidr> range;
};
nlohmann::json make_alert(const ScanAlert& a);

// POST /v1/watchers/login's body.
std::string login_body(const std::string& machine_id, const std::string& password);

// When to log in again after a login at `now` whose answer said the token
// expires at `expire` ("2026-11-27T15:34:24Z"; fractions and a zone offset
// other than Z read as UTC): a minute before it expires, at most 30 minutes
// on, at once when it is already (nearly) expired; 30 minutes when `expire`
// cannot be read. A token refused early is replaced on its 401 anyway.
std::chrono::seconds token_refresh_in(const std::string& expire, std::time_t now);

// The file `cscli machines add -f FILE` writes (YAML, three keys):
//   url: http://127.0.0.1:8080/
//   login: NAME
//   password: SECRET
struct MachineCredentials {
    std::string url, login, password;
    bool operator==(const MachineCredentials&) const = default;
};
// Throws std::runtime_error naming the line and what is wrong.
MachineCredentials parse_machine_credentials(std::string_view text);

// A bouncer key file: the key on one line (surrounding blanks and a final
// newline are not part of it). Throws std::runtime_error.
std::string parse_bouncer_key(std::string_view text);

// Reads a file holding a secret: a regular file of at most 64 KiB that not
// every user of the host may read (mode o+r refused; group-readable is fine,
// for a root:connwatch 0640 file). Throws std::runtime_error saying the file
// and the fix.
std::string read_secret_file(const std::string& path);

// "http://host:port/" + path, whether or not the base ends with '/'.
std::string join_url(const std::string& base, std::string_view path);

// Which decisions hold each prefix blocked, and until when (monotonic
// seconds): the LAPI may hold several decisions for one address (two alerts,
// a blocklist and a local one), and deleting one must not lift the block
// while another stands. The block lasts as long as the longest of them.
class DecisionLedger {
public:
    // What the BlockTable must do for one prefix: block it for `remaining`,
    // or lift it (nullopt).
    struct Change {
        Cidr prefix;
        std::optional<std::chrono::seconds> remaining;
    };
    // Applies a batch at now_s (monotonic seconds). `startup`: the batch is
    // every decision there is, so the ledger is rebuilt from it. Returns the
    // prefixes whose block changed, each once, in prefix order.
    std::vector<Change> apply(const StreamBatch& batch, bool startup, int64_t now_s);
    bool holds(const Cidr& prefix) const { return held_.count(prefix) != 0; }
    size_t prefixes() const { return held_.size(); }

private:
    std::map<Cidr, std::map<int64_t, int64_t>> held_; // prefix -> id -> expiry (s)
};

} // namespace connwatch::crowdsec
