// SPDX-License-Identifier: GPL-2.0-only
// connwatchd's answers to the control protocol (src/protocol/protocol.h): each
// command is one method that asks the Manager's parts and builds a typed
// response, or refuses with the reason and what to do.
#pragma once

#include "protocol/protocol.h"

namespace connwatch {

class Manager;

class ControlHandler final : public protocol::Handler {
public:
    explicit ControlHandler(Manager& m) : m_(m) {}

    protocol::Answer<protocol::StatusResponse> status(const protocol::Peer&) override;
    protocol::Answer<protocol::ListStream> list(const protocol::ListRequest& r,
                                                const protocol::Peer&) override;
    protocol::Answer<protocol::BlockResponse> block(const protocol::BlockRequest& r,
                                                    const protocol::Peer& p) override;
    protocol::Answer<protocol::PrefixResponse> unblock(const protocol::UnblockRequest& r,
                                                       const protocol::Peer& p) override;
    protocol::Answer<protocol::PrefixResponse> allow(const protocol::AllowRequest& r,
                                                     const protocol::Peer& p) override;
    protocol::Answer<protocol::PrefixResponse> disallow(const protocol::DisallowRequest& r,
                                                        const protocol::Peer& p) override;
    protocol::Answer<protocol::FlushResponse> flush(const protocol::Peer& p) override;
    FlushSteps flush_steps(const protocol::Peer& p) override;
    protocol::Answer<protocol::ReloadResponse> reload(const protocol::Peer&) override;
    protocol::Answer<protocol::BlockManyResponse> block_many(const protocol::BlockManyRequest& r,
                                                             const protocol::Peer& p) override;
    protocol::Answer<protocol::UnblockManyResponse>
    unblock_many(const protocol::UnblockManyRequest& r, const protocol::Peer& p) override;

private:
    Manager& m_;
};

} // namespace connwatch
