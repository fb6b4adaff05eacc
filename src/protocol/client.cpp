// SPDX-License-Identifier: GPL-2.0-only
#include "protocol/client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <istream>
#include <streambuf>
#include <utility>

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

// Sends the request line; an error text when it could not (the daemon may
// have answered and closed before reading it: a refused peer).
std::string send_request(int fd, const Request& request)
{
    std::string out = request_line(request);
    size_t off = 0;
    while (off < out.size()) {
        ssize_t n = send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return std::string("sending to connwatchd: ") + std::strerror(errno);
        off += static_cast<size_t>(n);
    }
    return "";
}

// The socket as a stream for nlohmann's parser, read in large pieces; a
// silence of kAnswerTimeoutMs ends it (and sets timed_out).
class SocketBuf final : public std::streambuf {
public:
    explicit SocketBuf(int fd) : fd_(fd) {}
    bool timed_out = false;

protected:
    int_type underflow() override
    {
        pollfd p{fd_, POLLIN, 0};
        int r;
        while ((r = poll(&p, 1, kAnswerTimeoutMs)) < 0 && errno == EINTR) {
        }
        if (r == 0) {
            timed_out = true;
            return traits_type::eof();
        }
        ssize_t n;
        while ((n = recv(fd_, buf_, sizeof buf_, 0)) < 0 && errno == EINTR) {
        }
        if (n <= 0)
            return traits_type::eof();
        setg(buf_, buf_, buf_ + n);
        return traits_type::to_int_type(buf_[0]);
    }

private:
    int fd_;
    char buf_[65536];
};

} // namespace

nlohmann::json call_list(const std::string& socket_path, const ListRequest& request,
                         const EntryCallback& on_allow, const EntryCallback& on_block)
{
    UniqueFd fd = connect_to(socket_path);
    std::string send_error = send_request(fd.get(), request);
    SocketBuf buf(fd.get());
    std::istream in(&buf);
    // Depth 1 is the answer's keys; depth 2 the entries of its lists.
    std::string section;
    bool any = false;
    auto cb = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        any = true;
        using E = nlohmann::json::parse_event_t;
        if (event == E::key && depth == 1)
            section = parsed.get<std::string>();
        if (event == E::object_end && depth == 2 && (section == "allow" || section == "blocks")) {
            (section == "allow" ? on_allow : on_block)(parsed);
            return false; // handed over: not kept
        }
        return true;
    };
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(in, cb);
    } catch (const nlohmann::json::parse_error&) {
        if (buf.timed_out)
            throw CallError(CallError::Kind::NotRunning, "connwatchd did not answer within 30 s");
        if (!any)
            throw CallError(CallError::Kind::NotRunning,
                            send_error.empty() ? "connwatchd sent no valid answer" : send_error);
        throw CallError(CallError::Kind::NotRunning,
                        "connwatchd's answer ended early (did it stop?): the list above is "
                        "incomplete");
    }
    if (!j.is_object())
        throw CallError(CallError::Kind::NotRunning, "connwatchd sent no valid answer");
    return j;
}

namespace {

nlohmann::json read_answer(int fd, const std::string& send_error)
{
    std::string in;
    char buf[65536];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, kAnswerTimeoutMs) <= 0)
            throw CallError(CallError::Kind::NotRunning, "connwatchd did not answer within 30 s");
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
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

} // namespace

nlohmann::json call(const std::string& socket_path, const Request& request)
{
    UniqueFd fd = connect_to(socket_path);
    // The daemon may answer and close before reading a word (a refused peer):
    // then the send fails, and the answer is waiting to be read all the same.
    std::string send_error = send_request(fd.get(), request);
    return read_answer(fd.get(), send_error);
}

PendingCall::PendingCall(const std::string& socket_path, const Request& request)
    : fd_(connect_to(socket_path))
{
    send_error_ = send_request(fd_.get(), request);
}

nlohmann::json PendingCall::wait()
{
    UniqueFd fd = std::move(fd_);
    return read_answer(fd.get(), send_error_);
}

} // namespace connwatch::protocol
