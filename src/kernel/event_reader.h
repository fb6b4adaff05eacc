// SPDX-License-Identifier: GPL-2.0-only
// The owner of the event ring buffer: reads cw_event records and hands each to
// a handler.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "kernel/program.h"

struct ring_buffer;

namespace connwatch {

class EventReader {
public:
    using Handler = std::function<void(const cw_event&)>;
    // Called with what a handler threw (the event is skipped, reading goes on):
    // an exception must never unwind through libbpf's C frames.
    using ErrorHandler = std::function<void(const std::string&)>;

    EventReader(const XdpProgram& prog, Handler handler, ErrorHandler on_error = {});
    // The same over another ring buffer of cw_event records (a previous
    // program's, read once after a takeover).
    EventReader(int ring_fd, Handler handler, ErrorHandler on_error = {});
    // The ring buffer holds a pointer to this object: it stays where it is.
    EventReader(const EventReader&) = delete;
    EventReader& operator=(const EventReader&) = delete;
    int epoll_fd() const; // readable when events are waiting
    int consume();        // handles every waiting event; returns how many

private:
    struct Deleter {
        void operator()(ring_buffer* rb) const;
    };
    static int on_sample(void* ctx, void* data, size_t size) noexcept;
    Handler handler_;
    ErrorHandler on_error_;
    std::unique_ptr<ring_buffer, Deleter> rb_;
};

} // namespace connwatch
