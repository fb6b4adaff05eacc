#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
# The package test's traffic through a restart (python3-minimal: socket and os only).
#   udp_count.py receive ADDR PORT SRC OUT STOP: counts datagrams from SRC into OUT
#   udp_count.py send ADDR PORT - OUT STOP: one datagram every 2 ms, the count in OUT
# Both end when the file STOP exists; bounded: 120 s, and 60000 datagrams sent.
import os
import socket
import sys
import time

mode, addr, port, src, out, stop = sys.argv[1:7]
port = int(port)
deadline = time.monotonic() + 120


def write(n):
    with open(out + ".tmp", "w") as f:
        f.write(f"{n}\n")
    os.replace(out + ".tmp", out)


n = 0
if mode == "receive":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    s.settimeout(0.2)
    write(0)
    while time.monotonic() < deadline and not os.path.exists(stop):
        try:
            _, peer = s.recvfrom(2048)
        except socket.timeout:
            continue
        if peer[0] == src:
            n += 1
            write(n)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    while n < 60000 and time.monotonic() < deadline and not os.path.exists(stop):
        s.sendto(b"x" * 32, (addr, port))
        n += 1
        if n % 50 == 0:
            write(n)
        time.sleep(0.002)
    write(n)
