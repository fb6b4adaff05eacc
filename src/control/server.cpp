// SPDX-License-Identifier: GPL-2.0-only
#include "control/server.h"

#include <grp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <poll.h>
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

// Only a client that has said nothing for this long is cut off.
constexpr std::chrono::seconds kClientTimeout{5};
constexpr std::size_t kMaxClients = 32;

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
        throw Error(std::string("Failed to create the control socket: ") + std::strerror(errno));
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
    umask(old);
    if (rc != 0)
        throw Error("Failed to create the control socket " + path + ": " + std::strerror(errno));
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
        throw Error(std::string("listen on the control socket: ") + std::strerror(errno));

    epoll_ = UniqueFd(epoll_create1(EPOLL_CLOEXEC));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listen_.get();
    if (!epoll_ || epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listen_.get(), &ev) != 0)
        throw Error(std::string("epoll for the control socket: ") + std::strerror(errno));
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
        Client c{UniqueFd(fd), {}, {}, std::chrono::steady_clock::now()};
        ucred cred{};
        socklen_t len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
            continue; // closes fd
        }
        c.peer = {cred.pid, cred.uid, cred.gid};
        if (!authorized(c.peer, fd)) {
            reply(c, error_response("permission denied: only root and members of the control "
                                    "group may use connwatchd's control socket"));
            continue;
        }
        if (clients_.size() >= kMaxClients) {
            reply(c, error_response("busy: too many control connections, try again"));
            continue;
        }
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.fd = fd;
        epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev);
        clients_.emplace(fd, std::move(c));
    }
}

void ControlServer::reply(Client& c, const nlohmann::json& response)
{
    // Responses are small (a list of 65536 blocks is a few MiB at most): write
    // them out now, giving a slow reader at most 2 s in all, rather than
    // buffering per client. The event loop waits that long at worst.
    // Replacing invalid UTF-8 (an interface name may hold any bytes) rather
    // than throwing: process() must not throw.
    std::string out =
        response.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    size_t off = 0;
    while (off < out.size()) {
        ssize_t n = send(c.fd.get(), out.data() + off, out.size() - off, MSG_NOSIGNAL);
        if (n <= 0) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && left.count() > 0) {
                pollfd p{c.fd.get(), POLLOUT, 0};
                if (poll(&p, 1, static_cast<int>(left.count())) > 0)
                    continue;
            }
            return; // the client went away, or reads too slowly: give up on it
        }
        off += static_cast<size_t>(n);
    }
}

void ControlServer::drop(int fd)
{
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    clients_.erase(fd);
}

void ControlServer::serve(int fd)
{
    auto it = clients_.find(fd);
    if (it == clients_.end())
        return;
    Client& c = it->second;
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n > 0) {
            c.in.append(buf, static_cast<size_t>(n));
            if (c.in.size() > kMaxRequestBytes + 1) {
                reply(c, error_response("request too large (at most " +
                                        std::to_string(kMaxRequestBytes) + " bytes)"));
                return drop(fd);
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
    if (auto* err = std::get_if<std::string>(&parsed))
        reply(c, error_response(*err));
    else
        reply(c, protocol::dispatch(handler_, std::get<protocol::Request>(parsed), c.peer));
    drop(fd);
}

void ControlServer::expire_slow_clients()
{
    auto now = std::chrono::steady_clock::now();
    std::vector<int> slow;
    for (const auto& [fd, c] : clients_)
        if (now - c.started > kClientTimeout)
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
            serve(evs[i].data.fd);
    }
    expire_slow_clients();
}

} // namespace connwatch
