// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/event_reader.h"

#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <exception>

namespace connwatch {

void EventReader::Deleter::operator()(ring_buffer* rb) const
{
    ring_buffer__free(rb);
}

EventReader::EventReader(const XdpProgram& prog, Handler handler, ErrorHandler on_error)
    : EventReader(prog.events_fd(), std::move(handler), std::move(on_error))
{
}

EventReader::EventReader(int ring_fd, Handler handler, ErrorHandler on_error)
    : handler_(std::move(handler)), on_error_(std::move(on_error))
{
    rb_.reset(ring_buffer__new(ring_fd, &EventReader::on_sample, this, nullptr));
    if (!rb_)
        throw Error("Failed to open the event ring buffer", errno_code(errno));
}

int EventReader::epoll_fd() const
{
    return ring_buffer__epoll_fd(rb_.get());
}

int EventReader::consume()
{
    return ring_buffer__consume(rb_.get());
}

// Called by libbpf, from C: nothing may unwind through here.
int EventReader::on_sample(void* ctx, void* data, size_t size) noexcept
{
    auto* self = static_cast<EventReader*>(ctx);
    // 128 bytes: a program from before cw_event.offence was appended (taken
    // over from an earlier connwatchd); the fields it lacks read 0.
    constexpr size_t kOldestEvent = offsetof(cw_event, offence);
    if (size < kOldestEvent)
        return 0; // not ours: cannot happen with a matching object
    cw_event ev{};
    std::memcpy(&ev, data, std::min(size, sizeof(ev)));
    std::string what;
    try {
        self->handler_(ev);
    } catch (const std::exception& e) {
        what = e.what();
    } catch (...) {
        what = "unknown exception";
    }
    if (!what.empty() && self->on_error_) {
        try {
            self->on_error_(what);
        } catch (...) {
            // Reporting failed too: the event is dropped, the loop goes on.
        }
    }
    return 0;
}

} // namespace connwatch
