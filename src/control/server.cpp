// SPDX-License-Identifier: GPL-2.0-only
#include "control/server.h"

#include <grp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "base/error.h"
#include "protocol/wire.h"

namespace connwatch {

namespace {

// A client that has not sent its request this long after connecting is cut
// off; so is one that has taken none of its answer for this long. Neither ever makes the daemon wait: both are only ever served when
// their socket is ready.
constexpr std::chrono::seconds kRequestTimeout{5};
constexpr std::chrono::seconds kAnswerTimeout{10};
constexpr std::size_t kMaxClients = 32;

// How much of an answer is made ahead of the client: about one socket
// buffer's worth, so that a fast reader is fed in few rounds of the loop and a
// slow one costs this much.
constexpr std::size_t kPieceBytes = 64 * 1024;

std::string line_of(const nlohmann::json& response)
{
    return protocol::compact(response) + "\n";
}

std::unique_ptr<protocol::AnswerStream> error_answer(const std::string& message)
{
    class Line final : public protocol::AnswerStream {
    public:
        explicit Line(std::string t) : text_(std::move(t)) {}
        bool more(std::string& out, std::size_t) override
        {
            out += text_;
            return false;
        }

    private:
        std::string text_;
    };
    return std::make_unique<Line>(line_of(protocol::error_response(message)));
}

// What fits in the socket's buffer now; -1 when the peer is gone.
ssize_t send_some(int fd, const std::string& out, size_t off)
{
    ssize_t n = send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    return n;
}

} // namespace

using protocol::error_response;
using protocol::kMaxRequestBytes;

ControlServer::ControlServer(const std::string& path, const std::string& group,
                             protocol::Handler& handler)
    : path_(path), handler_(handler)
{
    if (!group.empty()) {
        if (const struct group* g = getgrnam(group.c_str())) {
            gid_ = g->gr_gid;
            have_group_ = true;
        } else {
            warning_ = "Group '" + group + "' does not exist: only root may use the control socket " +
                       path + " (create it with 'groupadd --system " + group + "')";
        }
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof(addr.sun_path))
        throw Error("Control socket path '" + path + "' is too long (at most " +
                    std::to_string(sizeof(addr.sun_path) - 1) + " bytes)");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    listen_ = UniqueFd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!listen_)
        throw Error("Failed to create the control socket", errno_code(errno));
    // A socket file left by a daemon that died is in the way; one that answers
    // belongs to a running daemon, which we must not steal it from.
    if (connect(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0)
        throw Error("Another connwatchd is answering on " + path +
                    ": stop it first (systemctl stop connwatchd)");
    listen_ = UniqueFd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    unlink(path.c_str());
    // Created with no permissions for anyone, then opened up to the group: no
    // moment where another user could connect.
    mode_t old = umask(0777);
    int rc = bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    int bind_errno = errno;
    umask(old);
    if (rc != 0)
        throw Error("Failed to create the control socket " + path, errno_code(bind_errno));
    if (have_group_ && chown(path.c_str(), static_cast<uid_t>(-1), gid_) != 0) {
        // Without CAP_CHOWN the owner may only hand a file to a group it is a
        // member of: the unit has SupplementaryGroups=connwatch for this.
        warning_ = "Cannot give the control socket " + path + " to group '" + group +
                   "': " + std::strerror(errno) + "; only root may use it (the daemon needs " +
                   "CAP_CHOWN or membership of the group: SupplementaryGroups=" + group + ")";
        have_group_ = false;
    }
    chmod(path.c_str(), have_group_ ? 0660 : 0600);
    if (listen(listen_.get(), 16) != 0)
        throw Error("listen on the control socket", errno_code(errno));

    epoll_ = UniqueFd(epoll_create1(EPOLL_CLOEXEC));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listen_.get();
    if (!epoll_ || epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listen_.get(), &ev) != 0)
        throw Error("epoll for the control socket", errno_code(errno));
}

ControlServer::~ControlServer()
{
    unlink(path_.c_str());
}

bool ControlServer::authorized(const protocol::Peer& p, int fd) const
{
    if (p.uid == 0)
        return true;
    if (!have_group_)
        return false;
    if (p.gid == gid_)
        return true;
    // Supplementary groups of the peer, as the kernel saw them at connect().
    std::vector<gid_t> groups(64);
    socklen_t len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) != 0)
        return false;
    groups.resize(len / sizeof(gid_t));
    return std::find(groups.begin(), groups.end(), gid_) != groups.end();
}

void ControlServer::accept_clients()
{
    for (;;) {
        int fd = accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        Client c{UniqueFd(fd), {}, {}, nullptr, {}, 0, false, std::chrono::steady_clock::now()};
        ucred cred{};
        socklen_t len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
            continue; // closes fd
        }
        c.peer = {cred.pid, cred.uid, cred.gid};
        // Refusals are a few dozen bytes, which an empty socket buffer always
        // takes: one send, then the connection is closed.
        if (!authorized(c.peer, fd)) {
            send_some(fd, line_of(error_response("permission denied: only root and members of "
                                                 "the control group may use connwatchd's "
                                                 "control socket")),
                      0);
            continue;
        }
        if (clients_.size() >= kMaxClients) {
            send_some(fd, line_of(error_response("busy: too many control connections, try again")),
                      0);
            continue;
        }
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.fd = fd;
        epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev);
        clients_.emplace(fd, std::move(c));
    }
}

// Queues the answer and sends what the socket takes now; the rest goes out as
// the client reads (EPOLLOUT), however large the answer and slow the reader.
// Returns false when the client is done with (answered in full, or gone).
bool ControlServer::reply(int fd, Client& c, std::unique_ptr<protocol::AnswerStream> answer)
{
    c.answer = std::move(answer);
    c.answering = true;
    c.out.clear();
    c.off = 0;
    c.in.clear();
    c.started = std::chrono::steady_clock::now(); // the answer's deadline counts from here
    if (!write_some(c))
        return false;
    // EPOLLOUT only: a client that shut its side after the request (EPOLLRDHUP,
    // level-triggered) still reads, and must not make the loop spin.
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.fd = fd;
    epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
    return true;
}

// False when there is nothing more to do for this client.
bool ControlServer::write_some(Client& c)
{
    for (;;) {
        if (c.off == c.out.size()) {
            // The client has all of the piece: make the next one, if any.
            if (!c.answer)
                return false;
            c.out.clear();
            c.off = 0;
            if (!c.answer->more(c.out, kPieceBytes))
                c.answer.reset();
            if (c.out.empty()) {
                // Nothing this round but more to come: EPOLLOUT (level-
                // triggered, the socket is writable) brings us back at once,
                // after whatever else the event loop has to do. The daemon
                // is at work on the answer (a flush's slices, a rare
                // filter's pages), not waiting for the client: its deadline
                // starts again.
                c.started = std::chrono::steady_clock::now();
                return c.answer != nullptr;
            }
        }
        ssize_t n = send_some(c.fd.get(), c.out, c.off);
        if (n < 0)
            return false; // the client went away
        if (n == 0)
            return true; // its buffer is full: wait for EPOLLOUT
        c.off += static_cast<size_t>(n);
        // A reader that keeps taking its answer keeps its connection, however
        // long the answer; only one that stops reading is cut off.
        c.started = std::chrono::steady_clock::now();
    }
}

void ControlServer::drop(int fd)
{
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    clients_.erase(fd);
}

void ControlServer::serve(int fd, uint32_t events)
{
    auto it = clients_.find(fd);
    if (it == clients_.end())
        return;
    Client& c = it->second;
    if (c.answering) {
        // Answering: only the rest of the answer matters now.
        if ((events & (EPOLLERR | EPOLLHUP)) || !write_some(c))
            drop(fd);
        return;
    }
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n > 0) {
            c.in.append(buf, static_cast<size_t>(n));
            if (c.in.size() > kMaxRequestBytes + 1) {
                if (!reply(fd, c, error_answer("request too large (at most " +
                                               std::to_string(kMaxRequestBytes) + " bytes)")))
                    drop(fd);
                return;
            }
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        break; // EOF or error: a request without a newline is still answered
    }
    auto nl = c.in.find('\n');
    bool closed = recv(fd, buf, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
    if (nl == std::string::npos && !closed)
        return; // wait for the rest
    std::string line = c.in.substr(0, nl);
    auto parsed = protocol::parse_request(line);
    bool more = false;
    if (auto* err = std::get_if<std::string>(&parsed))
        more = reply(fd, c, error_answer(*err));
    else
        more = reply(fd, c,
                     protocol::answer(handler_, std::get<protocol::Request>(parsed), c.peer));
    if (!more)
        drop(fd);
}

void ControlServer::expire_slow_clients()
{
    auto now = std::chrono::steady_clock::now();
    std::vector<int> slow;
    for (const auto& [fd, c] : clients_)
        if (now - c.started > (c.answering ? kAnswerTimeout : kRequestTimeout))
            slow.push_back(fd);
    for (int fd : slow)
        drop(fd);
}

void ControlServer::process()
{
    epoll_event evs[16];
    int n = epoll_wait(epoll_.get(), evs, 16, 0);
    for (int i = 0; i < n; i++) {
        if (evs[i].data.fd == listen_.get())
            accept_clients();
        else
            serve(evs[i].data.fd, evs[i].events);
    }
    expire_slow_clients();
}

} // namespace connwatch
