// SPDX-License-Identifier: GPL-2.0-only
#include "protocol/block_file.h"

#include <algorithm>

#include "common/duration.h"

namespace connwatch::protocol {

namespace {

bool blank(char c)
{
    return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s)
{
    // Lines come with their '\n'; files from Windows end them in "\r\n".
    auto end_or_blank = [](char c) { return blank(c) || c == '\r' || c == '\n'; };
    while (!s.empty() && end_or_blank(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && end_or_blank(s.back()))
        s.remove_suffix(1);
    return s;
}

// The next word of s, and s after it.
std::string_view word(std::string_view& s)
{
    s = trim(s);
    auto end = std::find_if(s.begin(), s.end(), blank) - s.begin();
    auto w = s.substr(0, static_cast<size_t>(end));
    s.remove_prefix(static_cast<size_t>(end));
    return w;
}

} // namespace

BlockLine parse_block_line(std::string_view line)
{
    if (auto hash = line.find('#'); hash != std::string_view::npos)
        line = line.substr(0, hash);
    line = trim(line);
    if (line.empty())
        return std::monostate{};
    BulkBlock b;
    std::string err;
    auto prefix = Cidr::parse(word(line), &err);
    if (!prefix)
        return err;
    b.prefix = *prefix;
    if (auto d = word(line); !d.empty() && d != "-") {
        b.duration = parse_duration(d, &err);
        if (!b.duration)
            return err + " (the word after the address is its duration: use - for none)";
    }
    std::string_view reason = trim(line);
    // The daemon's rules for a reason (protocol/request.cpp), said here with
    // the line's number rather than for the whole request.
    if (reason.size() > 256)
        return std::string("reason too long (at most 256 bytes)");
    if (std::any_of(reason.begin(), reason.end(),
                    [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
        return std::string("reason must not contain control characters");
    b.reason = std::string(reason);
    return b;
}

} // namespace connwatch::protocol
