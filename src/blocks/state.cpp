// SPDX-License-Identifier: GPL-2.0-only
#include "blocks/state.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/unique_fd.h"

namespace connwatch {

namespace {

constexpr int kStateVersion = 1;

Cidr cidr_from(const nlohmann::json& j)
{
    std::string err;
    auto c = Cidr::parse(j.get<std::string>(), &err);
    if (!c)
        throw std::runtime_error(err);
    return *c;
}

} // namespace

State load_state(const std::string& path, std::string* warning)
{
    State st;
    std::ifstream in(path);
    if (!in)
        return st;
    std::stringstream text;
    text << in.rdbuf();
    try {
        auto j = nlohmann::json::parse(text.str());
        if (j.at("version").get<int>() != kStateVersion)
            throw std::runtime_error("unknown version " + j.at("version").dump());
        for (const auto& b : j.at("blocks")) {
            BlockRecord r;
            r.prefix = cidr_from(b.at("prefix"));
            auto origin = b.at("origin").get<std::string>();
            auto o = block_origin_from(origin);
            if (!o)
                throw std::runtime_error("unknown block origin '" + origin + "'");
            r.origin = *o;
            r.reason = b.value("reason", "");
            r.created = b.at("created").get<std::time_t>();
            r.expires = b.at("expires").get<std::time_t>();
            st.blocks.push_back(r);
        }
        for (const auto& a : j.at("allow"))
            st.allow.push_back(cidr_from(a));
    } catch (const std::exception& e) {
        std::error_code ec;
        std::filesystem::rename(path, path + ".corrupt", ec);
        if (warning)
            *warning = "the state file " + path + " could not be read (" + e.what() +
                       "); moved it to " + path + ".corrupt and started without it";
        return State{};
    }
    return st;
}

void save_state(const std::string& path, const State& state)
{
    nlohmann::json j{{"version", kStateVersion},
                     {"blocks", nlohmann::json::array()},
                     {"allow", nlohmann::json::array()}};
    for (const auto& b : state.blocks)
        j["blocks"].push_back({{"prefix", b.prefix.str()},
                               {"origin", to_string(b.origin)},
                               {"reason", b.reason},
                               {"created", b.created},
                               {"expires", b.expires}});
    for (const auto& a : state.allow)
        j["allow"].push_back(a.str());
    std::string text = j.dump(1) + "\n";

    auto dir = std::filesystem::path(path).parent_path();
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    std::string tmp = path + ".tmp";
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        throw Error("Failed to write " + tmp, errno_code(errno));
    UniqueFd guard(fd);
    size_t off = 0;
    while (off < text.size()) {
        ssize_t n = write(fd, text.data() + off, text.size() - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw Error("Failed to write " + tmp, errno_code(errno));
        }
        off += static_cast<size_t>(n);
    }
    if (fsync(fd) != 0)
        throw Error("Failed to write " + tmp, errno_code(errno));
    if (rename(tmp.c_str(), path.c_str()) != 0)
        throw Error("Failed to replace " + path, errno_code(errno));
    UniqueFd dfd(open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dfd)
        fsync(dfd.get());
}

} // namespace connwatch
