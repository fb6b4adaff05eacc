// SPDX-License-Identifier: GPL-2.0-only
#include "protocol/client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "base/unique_fd.h"
#include "protocol/wire.h"

namespace connwatch::protocol {

namespace {

constexpr int kAnswerTimeoutMs = 30000;

UniqueFd connect_to(const std::string& path)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof(addr.sun_path))
        throw CallError(CallError::Kind::BadSocketPath, "socket path too long: " + path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd)
        throw CallError(CallError::Kind::NotRunning,
                        std::string("socket: ") + std::strerror(errno));
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        int err = errno;
        if (err == EACCES || err == EPERM)
            throw CallError(CallError::Kind::Denied,
                            "permission denied on " + path +
                                ": run as root or as a member of the connwatch group");
        throw CallError(CallError::Kind::NotRunning,
                        "connwatchd is not running (" + path + ": " + std::strerror(err) +
                            "); start it with 'systemctl start connwatchd'");
    }
    return fd;
}

} // namespace

nlohmann::json call(const std::string& socket_path, const Request& request)
{
    UniqueFd fd = connect_to(socket_path);
    std::string out = request_json(request).dump() + "\n";
    // The daemon may answer and close before reading a word (a refused peer):
    // then the send fails, and the answer is waiting to be read all the same.
    std::string send_error;
    if (send(fd.get(), out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size()))
        send_error = std::string("sending to connwatchd: ") + std::strerror(errno);
    std::string in;
    char buf[65536];
    for (;;) {
        pollfd p{fd.get(), POLLIN, 0};
        if (poll(&p, 1, kAnswerTimeoutMs) <= 0)
            throw CallError(CallError::Kind::NotRunning, "connwatchd did not answer within 30 s");
        ssize_t n = recv(fd.get(), buf, sizeof(buf), 0);
        if (n <= 0)
            break;
        in.append(buf, static_cast<size_t>(n));
        if (in.find('\n') != std::string::npos)
            break;
    }
    auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
        throw CallError(CallError::Kind::NotRunning,
                        send_error.empty() ? "connwatchd sent no valid answer" : send_error);
    return j;
}

} // namespace connwatch::protocol
