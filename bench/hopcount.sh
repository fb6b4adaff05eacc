#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Hop-count measurement (issue 12, "Spoofing-aware decisions"; docs/SECURITY.md,
# "Hop-count filtering"): the TTL / hop limit that real `nmap -D` decoy probes,
# the real scanner's own probes, and a Linux client's connection carry, as
# tcpdump sees them on the target's side. Two namespaces this script makes
# and removes (cwhc-s: scanner, cwhc-t: target), one veth pair, no XDP.
#
# Usage: bench/hopcount.sh [RUNS]     (root; nmap, tcpdump, ip; prints a report)
set -euo pipefail
RUNS=${1:-3}
if [ "$RUNS" -lt 1 ] || [ "$RUNS" -gt 20 ]; then echo "RUNS: 1 to 20" >&2; exit 2; fi
S=cwhc-s T=cwhc-t
S4=10.73.0.2 T4=10.73.0.1 S6=fd17:73::2 T6=fd17:73::1 C4=10.73.0.3 C6=fd17:73::3
DECOYS4=10.73.0.50,10.73.0.51,192.0.2.7,ME
DECOYS6=fd17:73::50,fd17:73::51,2001:db8::7,ME
WORK= LPID= TPID=
cleanup() {
    for p in $TPID $LPID; do kill "$p" 2>/dev/null || true; done
    ip netns del $S 2>/dev/null || true
    ip netns del $T 2>/dev/null || true
    [ -z "$WORK" ] || rm -rf "$WORK"
}
trap cleanup EXIT
cleanup # a previous run's namespaces, if it was killed
WORK=$(mktemp -d /tmp/cwhc.XXXXXX)
ip netns add $S
ip netns add $T
ip link add cwhc-s0 netns $S type veth peer name cwhc-t0 netns $T
ip -n $S addr add $S4/24 dev cwhc-s0
ip -n $T addr add $T4/24 dev cwhc-t0
ip -n $S addr add $S6/64 dev cwhc-s0 nodad
ip -n $S addr add $C4/24 dev cwhc-s0     # the client's own address
ip -n $S addr add $C6/64 dev cwhc-s0 nodad
ip -n $T addr add $T6/64 dev cwhc-t0 nodad
for n in $S $T; do ip -n $n link set lo up; done
ip -n $S link set cwhc-s0 up
ip -n $T link set cwhc-t0 up
# Routes for the off-link decoys, so that the target's answers have a way.
ip -n $T route add 192.0.2.0/24 dev cwhc-t0
ip -n $T -6 route add 2001:db8::/64 dev cwhc-t0
# A listener on the target, for the client's connection.
ip netns exec $T timeout 600 python3 -c '
import socket,sys
s4=socket.socket(socket.AF_INET); s4.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s4.bind(("0.0.0.0",8080)); s4.listen(16)
s6=socket.socket(socket.AF_INET6); s6.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_V6ONLY,1); s6.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s6.bind(("::",8080)); s6.listen(16)
open(sys.argv[1],"w").close()
import select
while True:
    r,_,_=select.select([s4,s6],[],[],600)
    for s in r: c,_=s.accept(); c.close()
' "$WORK/listen.ready" &
LPID=$!
for _ in $(seq 100); do [ -e "$WORK/listen.ready" ] && break; sleep 0.1; done
ip netns exec $T tcpdump -i cwhc-t0 -n -v -l -c 20000 '(ip and tcp and tcp[13] & 0x12 = 0x02) or (ip6 and ip6[6] = 6 and ip6[53] & 0x12 = 0x02)' \
    > "$WORK/cap.txt" 2> "$WORK/tcpdump.err" &
TPID=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/tcpdump.err" 2>/dev/null && break; sleep 0.1; done

echo "# $(date -u '+%F %T') UTC, $(uname -r), $(nmap --version | head -1), $(tcpdump --version 2>&1 | head -1)"
for run in $(seq "$RUNS"); do
    echo "## run $run"
    echo "\$ ip netns exec $S nmap -n -Pn -sS -e cwhc-s0 -S $S4 -p 1-20 -D $DECOYS4 $T4"
    ip netns exec $S timeout 120 nmap -n -Pn -sS -e cwhc-s0 -S $S4 -p 1-20 -D $DECOYS4 $T4 > /dev/null
    echo "\$ ip netns exec $S nmap -6 -n -Pn -sS -e cwhc-s0 -S $S6 -p 1-20 -D $DECOYS6 $T6"
    ip netns exec $S timeout 120 nmap -6 -n -Pn -sS -e cwhc-s0 -S $S6 -p 1-20 -D $DECOYS6 $T6 > /dev/null
    echo "\$ ip netns exec $S python3 -c 'socket.create_connection((T, 8080), 5, (C, 0))'   # a Linux client from $C4, $C6"
    for pair in "$T4 $C4" "$T6 $C6"; do
        set -- $pair
        ip netns exec $S timeout 30 python3 -c 'import socket,sys; c=socket.create_connection((sys.argv[1],8080),5,(sys.argv[2],0)); print("(client", c.getsockname()[0], "port", c.getsockname()[1], "->", sys.argv[1], "connected)")' "$1" "$2" 2>&1 | tail -1 || true
    done
done
echo "\$ ip netns exec $S sysctl net.ipv4.ip_default_ttl net.ipv6.conf.all.hop_limit"
ip netns exec $S sysctl net.ipv4.ip_default_ttl net.ipv6.conf.all.hop_limit
# Let tcpdump write what it has.
sleep 1
kill "$TPID" 2>/dev/null || true
wait "$TPID" 2>/dev/null || true
kill "$LPID" 2>/dev/null || true
wait "$LPID" 2>/dev/null || true
echo "## tcpdump:"
cat "$WORK/tcpdump.err"
echo
echo "## raw capture (tcpdump -n -v on the target's veth; SYNs without ACK)"
cat "$WORK/cap.txt"
echo
echo "## per source: SYNs, TTL / hop limit values seen (value:count)"
echo "## (10.73.0.2 / fd17:73::2: the scanner itself, nmap's ME; 10.73.0.3 / fd17:73::3: the Linux client; the rest: decoys)"
python3 - "$WORK/cap.txt" <<'PY'
import re, sys, collections
lines = open(sys.argv[1]).read().splitlines()
per = collections.defaultdict(collections.Counter)
i = 0
while i < len(lines):
    l = lines[i]
    m4 = re.search(r'IP \(tos \S+, ttl (\d+),', l)
    m6 = re.search(r'IP6 \(.*hlim (\d+),', l)
    if m6:  # IPv6: one line, the addresses after the header's parenthesis
        src = re.search(r'\) (\S+)\.\d+ > ', l).group(1)
        per[src][int(m6.group(1))] += 1
    elif m4 and i + 1 < len(lines):  # IPv4: the addresses on the next line
        src = lines[i + 1].strip().split(' > ')[0].rsplit('.', 1)[0]
        per[src][int(m4.group(1))] += 1
        i += 2
        continue
    i += 1
for src in sorted(per):
    c = per[src]
    print(f"{src:18} {sum(c.values()):4} SYNs  distinct {len(c):2}  min {min(c)} max {max(c)}  "
          + " ".join(f"{v}:{n}" for v, n in sorted(c.items())))
PY
