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
#include <set>
#include <vector>

#include "common/duration.h"

namespace connwatch {

namespace {

const std::set<std::string> kCommands = {"status", "list",     "block", "unblock",
                                         "allow",  "disallow", "flush", "reload"};

// Only a client that has said nothing for this long is cut off.
constexpr std::chrono::seconds kClientTimeout{5};
constexpr std::size_t kMaxClients = 32;

} // namespace

std::variant<Request, std::string> parse_request(std::string_view line)
{
    if (line.size() > kMaxRequestBytes)
        return "request too large (at most " + std::to_string(kMaxRequestBytes) + " bytes)";
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
        return std::string("malformed request: expected one JSON object");
    Request r;
    auto cmd = j.find("command");
    if (cmd == j.end() || !cmd->is_string())
        return std::string("malformed request: \"command\" (a string) is missing");
    r.command = cmd->get<std::string>();
    if (!kCommands.count(r.command))
        return "unknown command '" + r.command +
               "' (known: status, list, block, unblock, allow, disallow, flush, reload)";

    for (const auto& [key, value] : j.items()) {
        if (key != "command" && key != "prefix" && key != "duration" && key != "reason")
            return "malformed request: unknown field \"" + key + "\"";
    }
    bool needs_prefix = r.command == "block" || r.command == "unblock" || r.command == "allow" ||
                        r.command == "disallow";
    if (auto p = j.find("prefix"); p != j.end()) {
        if (!needs_prefix)
            return "'" + r.command + "' takes no prefix";
        if (!p->is_string())
            return std::string("malformed request: \"prefix\" must be a string");
        std::string err;
        r.prefix = Cidr::parse(p->get<std::string>(), &err);
        if (!r.prefix)
            return err;
    } else if (needs_prefix) {
        return "'" + r.command + "' needs an address or prefix";
    }
    if (auto d = j.find("duration"); d != j.end()) {
        if (r.command != "block")
            return "'" + r.command + "' takes no duration";
        if (!d->is_string())
            return std::string("malformed request: \"duration\" must be a string like \"1h\"");
        std::string err;
        r.duration = parse_duration(d->get<std::string>(), &err);
        if (!r.duration)
            return err;
    }
    if (auto t = j.find("reason"); t != j.end()) {
        if (r.command != "block")
            return "'" + r.command + "' takes no reason";
        if (!t->is_string())
            return std::string("malformed request: \"reason\" must be a string");
        r.reason = t->get<std::string>();
        if (r.reason.size() > 256)
            return std::string("reason too long (at most 256 bytes)");
        if (std::any_of(r.reason.begin(), r.reason.end(),
                        [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
            return std::string("reason must not contain control characters");
    }
    return r;
}

nlohmann::json request_json(const Request& r)
{
    nlohmann::json j{{"command", r.command}};
    if (r.prefix)
        j["prefix"] = r.prefix->str();
    if (r.duration)
        j["duration"] = format_duration(*r.duration);
    if (!r.reason.empty())
        j["reason"] = r.reason;
    return j;
}

nlohmann::json error_response(const std::string& message)
{
    return {{"ok", false}, {"error", message}};
}

namespace {
template <class T, class F>
nlohmann::json answer(protocol::Answer<T> a, F ok)
{
    if (auto* r = std::get_if<protocol::Refusal>(&a))
        return error_response(r->error);
    nlohmann::json j = ok(std::get<T>(a));
    j["ok"] = true;
    return j;
}
} // namespace

nlohmann::json dispatch(protocol::Handler& h, const Request& r, const Peer& p)
{
    using namespace protocol;
    if (r.command == "status")
        return answer(h.status(p), [](const StatusResponse& s) {
            nlohmann::json ifs = nlohmann::json::array();
            for (const auto& i : s.interfaces)
                ifs.push_back({{"name", i.name}, {"xdp_mode", i.xdp_mode}});
            nlohmann::json counters = nlohmann::json::object();
            for (const auto& [k, v] : s.counters)
                counters[k] = v;
            return nlohmann::json{{"version", s.version}, {"pid", s.pid}, {"interfaces", ifs},
                                  {"threshold", s.threshold}, {"window", s.window},
                                  {"block_duration", s.block_duration},
                                  {"monitor_only", s.monitor_only}, {"max_blocks", s.max_blocks},
                                  {"blocks", s.blocks}, {"allow", s.allow},
                                  {"counters", counters}};
        });
    if (r.command == "list")
        return answer(h.list(p), [](const ListResponse& l) {
            nlohmann::json blocks = nlohmann::json::array(), allow = nlohmann::json::array();
            for (const auto& b : l.blocks)
                blocks.push_back({{"prefix", b.prefix.str()}, {"origin", to_string(b.origin)},
                                  {"reason", b.reason}, {"created", b.created},
                                  {"expires", b.expires}, {"expires_in", b.expires_in}});
            for (const auto& a : l.allow)
                allow.push_back({{"prefix", a.prefix.str()}, {"source", to_string(a.source)}});
            return nlohmann::json{{"blocks", blocks}, {"allow", allow}};
        });
    if (r.command == "reload")
        return answer(h.reload(p), [](const ReloadResponse&) { return nlohmann::json::object(); });
    if (r.command == "flush")
        return answer(h.flush(p), [](const FlushResponse& f) { return nlohmann::json{{"removed", f.removed}}; });
    auto prefix = [](const PrefixResponse& x) { return nlohmann::json{{"prefix", x.prefix.str()}}; };
    if (r.command == "block")
        return answer(h.block({*r.prefix, r.duration, r.reason}, p), [](const BlockResponse& b) {
            return nlohmann::json{{"prefix", b.prefix.str()}, {"expires", b.expires}};
        });
    if (r.command == "unblock")
        return answer(h.unblock({*r.prefix}, p), prefix);
    if (r.command == "allow")
        return answer(h.allow({*r.prefix}, p), prefix);
    return answer(h.disallow({*r.prefix}, p), prefix);
}

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

bool ControlServer::authorized(const Peer& p, int fd) const
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
    std::string out = response.dump() + "\n";
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
    auto parsed = parse_request(line);
    if (auto* err = std::get_if<std::string>(&parsed)) {
        reply(c, error_response(*err));
    } else {
        nlohmann::json response;
        try {
            response = dispatch(handler_, std::get<Request>(parsed), c.peer);
        } catch (const std::exception& e) {
            response = error_response(e.what());
        }
        reply(c, response);
    }
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
