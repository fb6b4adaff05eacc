// SPDX-License-Identifier: GPL-2.0-only
// The daemon's side of one request: the handler's method, its answer as a line
// of JSON -- whole, or a list's blocks a page at a time.
#include <algorithm>
#include <chrono>

#include "protocol/wire.h"

namespace connwatch::protocol {

namespace {

// Blocks asked of the cursor at a time. With at most ~700 bytes an entry (a
// 256-byte reason, escaped), one page stays well under a megabyte.
constexpr std::size_t kPageEntries = 256;

template <class T>
nlohmann::json answer_json(const Answer<T>& a)
{
    if (const auto* r = std::get_if<Refusal>(&a))
        return error_response(r->error);
    nlohmann::json j = std::get<T>(a);
    j["ok"] = true;
    return j;
}

// An answer made whole: one piece.
class Whole final : public AnswerStream {
public:
    explicit Whole(const nlohmann::json& j) : text_(compact(j) + "\n") {}
    bool more(std::string& out, std::size_t) override
    {
        out += text_;
        text_.clear();
        return false;
    }

private:
    std::string text_;
};

// {"allow":[...],"blocks":[ENTRY,...],"ok":true}: the keys in the order
// nlohmann's object (a std::map) writes them, so the line is the one the
// whole ListResponse made.
class ListWriter final : public AnswerStream {
public:
    ListWriter(ListStream s, std::optional<uint64_t> limit)
        : stream_(std::move(s)), left_(limit.value_or(UINT64_MAX))
    {
    }
    bool more(std::string& out, std::size_t want) override
    {
        try {
            if (!started_) {
                out += "{\"allow\":" + compact(stream_.allow) + ",\"blocks\":[";
                started_ = true;
            }
            const std::size_t start = out.size();
            std::vector<BlockEntry> page;
            while (!done_ && out.size() - start < want) {
                page.clear();
                std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(kPageEntries, left_));
                bool more = n > 0 && stream_.blocks && stream_.blocks->next(page, n);
                for (const auto& e : page) {
                    if (left_ == 0)
                        break;
                    out += first_ ? "" : ",";
                    append_json(out, e);
                    first_ = false;
                    left_--;
                }
                done_ = !more || left_ == 0;
                // The cursor looked at its budget of entries and none matched:
                // back to the event loop before looking at more (the socket is
                // writable, so the server is called again at once).
                if (!done_ && page.empty())
                    break;
            }
            if (done_) {
                out += "],\"ok\":true}\n";
                return false;
            }
            return true;
        } catch (...) {
            // Half a line is out: no error can be said any more. Ending
            // here closes the connection; the client sees the answer end early.
            return false;
        }
    }

private:
    ListStream stream_;
    uint64_t left_;
    bool started_ = false, first_ = true, done_ = false;
};

// A flush's answer: one slice of the flush each call (the server comes back
// after the rest of its loop), the answer once it is complete. Until then a
// space a second -- whitespace before a JSON value, which every reader skips
// -- so that a client waiting with a silence timeout (connwatchctl's 30 s)
// sees the daemon at work: a million blocks take longer than that on a
// loaded machine.
class FlushWriter final : public AnswerStream {
public:
    explicit FlushWriter(Handler::FlushSteps steps) : steps_(std::move(steps)) {}
    bool more(std::string& out, std::size_t) override
    {
        nlohmann::json j;
        try {
            auto a = steps_();
            if (!a) {
                auto now = std::chrono::steady_clock::now();
                if (now - said_ >= std::chrono::seconds(1)) {
                    out += ' ';
                    said_ = now;
                }
                return true;
            }
            j = answer_json(*a);
        } catch (const std::exception& e) {
            j = error_response(e.what());
        } catch (...) {
            j = error_response("internal error: the request failed");
        }
        out += compact(j) + "\n";
        return false;
    }

private:
    Handler::FlushSteps steps_;
    std::chrono::steady_clock::time_point said_ = std::chrono::steady_clock::now();
};

template <class... F>
struct Overloaded : F... {
    using F::operator()...;
};
// C++20 deduces this for an aggregate by itself, but clang before 17 does not
// implement that (P1816): the guide keeps the file building with clang 14.
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

std::unique_ptr<AnswerStream> whole(const nlohmann::json& j)
{
    return std::make_unique<Whole>(j);
}

template <class T>
std::unique_ptr<AnswerStream> whole(const Answer<T>& a)
{
    return std::make_unique<Whole>(answer_json(a));
}

} // namespace

ListStream list_stream(ListResponse whole)
{
    class Over final : public BlockCursor {
    public:
        explicit Over(std::vector<BlockEntry> v) : v_(std::move(v)) {}
        bool next(std::vector<BlockEntry>& out, std::size_t max) override
        {
            for (; max > 0 && at_ < v_.size(); max--)
                out.push_back(v_[at_++]);
            return at_ < v_.size();
        }

    private:
        std::vector<BlockEntry> v_;
        std::size_t at_ = 0;
    };
    return {std::move(whole.allow), std::make_unique<Over>(std::move(whole.blocks))};
}

// One block's JSON, as compact(nlohmann::json(e)) writes it -- the keys in
// their sorted order -- without building the object: a million of them is
// the list's whole cost. Only the reason needs the JSON library's escaping.
void append_json(std::string& out, const BlockEntry& e)
{
    out += "{\"created\":";
    out += std::to_string(e.created);
    out += ",\"expires\":";
    out += std::to_string(e.expires);
    out += ",\"expires_in\":";
    out += std::to_string(e.expires_in);
    out += ",\"offence\":";
    out += std::to_string(e.offence);
    out += ",\"origin\":\"";
    out += to_string(e.origin);
    out += "\",\"prefix\":\"";
    out += e.prefix.str();
    out += "\",\"reason\":";
    out += compact(nlohmann::json(e.reason));
    out += '}';
}

std::string compact(const nlohmann::json& j)
{
    // Replacing invalid UTF-8 (an interface name may hold any bytes) rather
    // than throwing: the server must not throw.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::unique_ptr<AnswerStream> answer(Handler& h, const Request& request, const Peer& peer)
{
    try {
        return std::visit(
            Overloaded{
                [&](const StatusRequest&) { return whole(h.status(peer)); },
                [&](const ListRequest& r) -> std::unique_ptr<AnswerStream> {
                    auto a = h.list(r, peer);
                    if (auto* no = std::get_if<Refusal>(&a))
                        return whole(error_response(no->error));
                    return std::make_unique<ListWriter>(std::move(std::get<ListStream>(a)),
                                                        r.limit);
                },
                [&](const BlockRequest& r) { return whole(h.block(r, peer)); },
                [&](const UnblockRequest& r) { return whole(h.unblock(r, peer)); },
                [&](const AllowRequest& r) { return whole(h.allow(r, peer)); },
                [&](const DisallowRequest& r) { return whole(h.disallow(r, peer)); },
                [&](const FlushRequest&) -> std::unique_ptr<AnswerStream> {
                    return std::make_unique<FlushWriter>(h.flush_steps(peer));
                },
                [&](const ReloadRequest&) { return whole(h.reload(peer)); },
                [&](const BlockManyRequest& r) { return whole(h.block_many(r, peer)); },
                [&](const UnblockManyRequest& r) { return whole(h.unblock_many(r, peer)); },
            },
            request);
    } catch (const std::exception& e) {
        // The message as it is, as the daemon has always answered: it is written
        // for the operator (Error's texts say what failed and what to do).
        return whole(error_response(e.what()));
    } catch (...) {
        return whole(error_response("internal error: the request failed"));
    }
}

nlohmann::json dispatch(Handler& h, const Request& request, const Peer& peer)
{
    auto a = answer(h, request, peer);
    std::string text;
    while (a->more(text, 1 << 16)) {
    }
    auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded())
        return error_response("internal error: the answer was cut short");
    return j;
}

} // namespace connwatch::protocol
