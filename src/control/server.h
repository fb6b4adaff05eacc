// SPDX-License-Identifier: GPL-2.0-only
// The daemon's end of the control socket (docs/CONTROL.md): over a Unix stream
// socket, one JSON object per line each way; one request, one response, then the
// daemon closes the connection. What the lines mean is protocol/'s business.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "base/unique_fd.h"
#include "protocol/protocol.h"
#include "protocol/wire.h"

namespace connwatch {

// Accepts connections on the control socket, checks every peer's credentials
// (root, or a member of the control group), reads one request line with a size
// limit and answers it. All non-blocking, driven by the daemon's epoll loop
// through fd(): a slow, silent or non-reading client never stalls the daemon.
// An answer is made a piece at a time as the client reads it (at most
// kMaxClients of them, each holding one piece: a page of a long list), so a
// million-block list costs the daemon a page per reader, not the list.
class ControlServer {
public:
    // Creates the socket (replacing a stale one), mode 0660, owned by `group`
    // when that group exists (otherwise only root may use it). Throws Error.
    // Requests go to handler, which must outlive the server.
    ControlServer(const std::string& path, const std::string& group,
                  protocol::Handler& handler);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    int fd() const { return epoll_.get(); } // readable when there is work
    // Does the work that is ready and cuts off clients past their deadline;
    // never waits, never throws. Call it when fd() is readable, and now and
    // then besides (the deadlines pass without any event).
    void process();
    const std::string& path() const { return path_; }
    // Why the group cannot use the socket (no such group, or the chown was
    // refused), for the daemon to log; empty when it can or none was asked for.
    const std::string& warning() const { return warning_; }

private:
    struct Client {
        UniqueFd fd;
        protocol::Peer peer;
        std::string in;  // the request, as it arrives
        // The answer, made a piece at a time as the client takes it: `out`
        // holds one piece (a page of a long list), `off` how much of it was
        // sent; the next piece is made only when the client has taken it all.
        std::unique_ptr<protocol::AnswerStream> answer;
        std::string out;
        size_t off = 0;
        bool answering = false;
        std::chrono::steady_clock::time_point started; // connected, or answer ready
    };
    void accept_clients();
    void serve(int fd, uint32_t events);
    bool reply(int fd, Client& c, std::unique_ptr<protocol::AnswerStream> answer);
    bool write_some(Client& c);
    void drop(int fd);
    void expire_slow_clients();
    bool authorized(const protocol::Peer& p, int fd) const;

    std::string path_;
    gid_t gid_ = 0;
    bool have_group_ = false;
    std::string warning_;
    protocol::Handler& handler_;
    UniqueFd listen_, epoll_;
    std::map<int, Client> clients_;
};

} // namespace connwatch
