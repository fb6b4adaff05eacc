// SPDX-License-Identifier: GPL-2.0-only
#include "common/format.h"

#include <algorithm>

namespace connwatch {

std::string format_timestamp(std::time_t t)
{
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[32];
    size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
    return std::string(buf, n);
}

std::string format_new_connection(std::time_t t, const Address& src, uint16_t sport,
                                  const Address& dst, uint16_t dport)
{
    return format_timestamp(t) + ": New connection: " + format_endpoint(src, sport) + " -> " +
           format_endpoint(dst, dport);
}

std::string format_tcp_flags(uint8_t flags)
{
    static constexpr const char* kNames[8] = {"FIN", "SYN", "RST", "PSH",
                                              "ACK", "URG", "ECE", "CWR"};
    std::string out;
    for (unsigned bit = 0; bit < 8; bit++) {
        if (!(flags & (1u << bit)))
            continue;
        if (!out.empty())
            out += ',';
        out += kNames[bit];
    }
    return out.empty() ? "none" : out;
}

std::string format_probe(std::time_t t, const Address& src, uint16_t sport, const Address& dst,
                         uint16_t dport, uint8_t flags, bool tiny_fragment)
{
    return format_timestamp(t) + ": Probe: " + format_endpoint(src, sport) + " -> " +
           format_endpoint(dst, dport) + " (" +
           (tiny_fragment ? std::string("tiny fragment") : format_tcp_flags(flags)) + ")";
}

std::string format_ports(std::vector<uint16_t> ports)
{
    std::sort(ports.begin(), ports.end());
    ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
    std::string list;
    for (auto p : ports) {
        if (!list.empty())
            list += ',';
        list += std::to_string(p);
    }
    return list;
}

std::string port_scan_message(const std::string& src, const Address& dst,
                              const std::vector<uint16_t>& ports)
{
    return "Port scan detected: " + src + " -> " + dst.str() + " on ports " + format_ports(ports);
}

std::string port_scan_message(const Address& src, const Address& dst,
                              const std::vector<uint16_t>& ports)
{
    return port_scan_message(src.str(), dst, ports);
}

std::string format_port_scan(std::time_t t, const std::string& src, const Address& dst,
                             const std::vector<uint16_t>& ports)
{
    return format_timestamp(t) + ": " + port_scan_message(src, dst, ports);
}

std::string format_port_scan(std::time_t t, const Address& src, const Address& dst,
                             const std::vector<uint16_t>& ports)
{
    return format_port_scan(t, src.str(), dst, ports);
}

} // namespace connwatch
