// SPDX-License-Identifier: GPL-2.0-only
// The classic event lines, byte for byte:
//   2021-04-28 15:28:05: New connection: 192.0.2.56:5973 -> 10.0.0.5:80
//   2021-04-28 15:28:05: Port scan detected: 192.0.2.56 -> 10.0.0.5 on ports 80,81,82,83
//   2021-04-28 15:28:05: Probe: 192.0.2.56:5973 -> 10.0.0.5:80 (FIN,PSH,URG)
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

#include "common/address.h"

namespace connwatch {

// "YYYY-MM-DD HH:MM:SS" in local time.
std::string format_timestamp(std::time_t t);

std::string format_new_connection(std::time_t t, const Address& src, uint16_t sport,
                                  const Address& dst, uint16_t dport);

// A TCP flag byte (byte 13 of the header) as nmap and tcpdump name the bits,
// lowest bit first: "FIN,PSH,URG"; "none" for a NULL probe.
std::string format_tcp_flags(uint8_t flags);

// A stealth probe: "TIMESTAMP: Probe: SRC:SPORT -> DST:DPORT (FLAGS)"; a tiny
// first fragment (its flags may not be in it) says "(tiny fragment)" instead.
std::string format_probe(std::time_t t, const Address& src, uint16_t sport, const Address& dst,
                         uint16_t dport, uint8_t flags, bool tiny_fragment = false);

// "80,81,82,83": ascending, each once, whatever order they come in.
std::string format_ports(std::vector<uint16_t> ports);

// "Port scan detected: SRC -> DST on ports P1,P2,...": the classic line without
// its timestamp, which is also a scan block's reason.
std::string port_scan_message(const Address& src, const Address& dst,
                              const std::vector<uint16_t>& ports);
// The same for a source counted as a prefix: SRC is "2001:db8:1:2::/64".
std::string port_scan_message(const std::string& src, const Address& dst,
                              const std::vector<uint16_t>& ports);

// The classic line: timestamp, ": ", port_scan_message.
std::string format_port_scan(std::time_t t, const Address& src, const Address& dst,
                             const std::vector<uint16_t>& ports);
std::string format_port_scan(std::time_t t, const std::string& src, const Address& dst,
                             const std::vector<uint16_t>& ports);

} // namespace connwatch
