// SPDX-License-Identifier: GPL-2.0-only
// The daemon's side of one request: the handler's method, its answer as JSON.
#include "protocol/wire.h"

namespace connwatch::protocol {

namespace {

template <class T>
nlohmann::json answer_json(const Answer<T>& a)
{
    if (const auto* r = std::get_if<Refusal>(&a))
        return error_response(r->error);
    nlohmann::json j = std::get<T>(a);
    j["ok"] = true;
    return j;
}

template <class... F>
struct Overloaded : F... {
    using F::operator()...;
};
// C++20 deduces this for an aggregate by itself, but clang before 17 does not
// implement that (P1816): the guide keeps the file building with clang 14.
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

} // namespace

nlohmann::json dispatch(Handler& h, const Request& request, const Peer& peer)
{
    try {
        return std::visit(
            Overloaded{
                [&](const StatusRequest&) { return answer_json(h.status(peer)); },
                [&](const ListRequest&) { return answer_json(h.list(peer)); },
                [&](const BlockRequest& r) { return answer_json(h.block(r, peer)); },
                [&](const UnblockRequest& r) { return answer_json(h.unblock(r, peer)); },
                [&](const AllowRequest& r) { return answer_json(h.allow(r, peer)); },
                [&](const DisallowRequest& r) { return answer_json(h.disallow(r, peer)); },
                [&](const FlushRequest&) { return answer_json(h.flush(peer)); },
                [&](const ReloadRequest&) { return answer_json(h.reload(peer)); },
            },
            request);
    } catch (const std::exception& e) {
        // The message as it is, as the daemon has always answered: it is written
        // for the operator (Error's texts say what failed and what to do).
        return error_response(e.what());
    } catch (...) {
        return error_response("internal error: the request failed");
    }
}

} // namespace connwatch::protocol
