// SPDX-License-Identifier: GPL-2.0-only
// The control protocol between connwatchctl and connwatchd (docs/CONTROL.md):
// over a Unix stream socket, one JSON object per line each way; one request,
// one response, then the daemon closes the connection.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "common/address.h"
#include "base/error.h"
#include "base/unique_fd.h"
#include "protocol/protocol.h"

namespace connwatch {

inline constexpr const char* kDefaultControlSocket = "/run/connwatch/control.sock";
inline constexpr const char* kDefaultControlGroup = "connwatch";
// A request larger than this is refused: every real request is under 1 KiB.
inline constexpr std::size_t kMaxRequestBytes = 64 * 1024;

struct Request {
    std::string command; // status list block unblock allow disallow flush reload
    std::optional<Cidr> prefix;                  // block, unblock, allow, disallow
    std::optional<std::chrono::seconds> duration; // block; absent = until removed
    std::string reason;                          // block
};

// Parses and validates one request line. Returns the request or an error text
// fit to send back.
std::variant<Request, std::string> parse_request(std::string_view line);

// The request connwatchctl sends.
nlohmann::json request_json(const Request& r);

nlohmann::json error_response(const std::string& message);

using protocol::Peer;

// TEMPORARY bridge until the protocol branch lands: the typed handler behind the
// old request type.
nlohmann::json dispatch(protocol::Handler& h, const Request& r, const Peer& p);

// Accepts connections on the control socket, checks every peer's credentials
// (root, or a member of the control group), reads one request line with a size
// limit and answers it. All non-blocking, driven by the daemon's epoll loop
// through fd(): a slow or silent client never stalls the daemon.
class ControlServer {
public:

    // Creates the socket (replacing a stale one), mode 0660, owned by `group`
    // when that group exists (otherwise only root may use it). Throws Error.
    ControlServer(const std::string& path, const std::string& group, protocol::Handler& handler);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    int fd() const { return epoll_.get(); } // readable when there is work
    void process();                          // does the work; never throws
    const std::string& path() const { return path_; }
    // Why the group cannot use the socket (no such group, or the chown was
    // refused), for the daemon to log; empty when it can or none was asked for.
    const std::string& warning() const { return warning_; }

private:
    struct Client {
        UniqueFd fd;
        Peer peer;
        std::string in;
        std::chrono::steady_clock::time_point started;
    };
    void accept_clients();
    void serve(int fd);
    void reply(Client& c, const nlohmann::json& response);
    void drop(int fd);
    void expire_slow_clients();
    bool authorized(const Peer& p, int fd) const;

    std::string path_;
    gid_t gid_ = 0;
    bool have_group_ = false;
    std::string warning_;
    protocol::Handler& handler_;
    UniqueFd listen_, epoll_;
    std::map<int, Client> clients_;
};

} // namespace connwatch
