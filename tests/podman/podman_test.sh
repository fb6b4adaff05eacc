#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The container image (Dockerfile), built and run with podman, offline: the build
# stage compiles and packages, the runtime stage installs only the .deb; the image
# then runs the way docs/CONTAINER.md says — capabilities dropped to the minimum,
# bpffs bound in, configuration, state and control-socket volumes — and is judged
# by real traffic: a TCP connection and an nmap scan are reported, the scanner is
# blocked, `podman stop` detaches, a restarted container keeps the blocks. Which
# capabilities are needed is checked by dropping each one.
#
# Usage: podman_test.sh SRC_DIR|BUILD_DIR      (root; ctest labels "container;podman")
# With a BUILD_DIR, the source is the one it was configured from, and its
# connwatchctl is also used from the host through the control-socket volume.
#
# Which .deb goes into the image: with a BUILD_DIR holding CPack's .deb (`make test`
# makes it first), the build stage is not run again: `--build-context build=DIR`
# stands in for it with that .deb, so CI compiles connwatch once, not twice (the
# compile in the container cost two thirds of this test's 206 s). The runtime stage
# is built as the Dockerfile says, apt resolving the package's dependencies. What the
# skipped stage would add — its package list — is checked against the Makefile's
# build dependencies below. CW_PODMAN_FULL_BUILD=1, or a SRC_DIR, builds both stages
# from source (`make podman-full-test`).
#
# Safety: the container never sees the machine's network. "The host network" it is
# given is a namespace this test makes (cwpd-host, veth cwpd-h0 <-> cwpd-p0 in
# cwpd-peer, 10.239.0.0/24), so XDP is only ever attached to that veth end.
#
# No registry is needed: the base image is `podman import` of a debootstrap rootfs
# (minbase bookworm, slimmed like debian:bookworm-slim), built once (~30 s, needs
# Debian's archive) and cached as a tarball in $CW_CACHE (default
# /var/cache/connwatch-test). The image build itself (apt-get in both stages)
# needs Debian's archive too. Images and containers are removed at the end.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/preamble.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/preamble.sh"

USAGE="SRC_DIR|BUILD_DIR (the connwatch source tree, or a CMake build tree of it)"
if [ $# -ne 1 ] || [ ! -d "$1" ]; then cw_usage "$USAGE"; fi
BUILD=
if [ -f "$1/Dockerfile" ]; then
    SRC=$(realpath "$1")
elif [ -f "$1/CMakeCache.txt" ]; then
    BUILD=$(realpath "$1")
    SRC=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD/CMakeCache.txt")
    [ -f "$SRC/Dockerfile" ] || cw_setup_fail "no Dockerfile in '$SRC' (from $BUILD/CMakeCache.txt)"
else
    cw_usage "$USAGE"
fi
cw_require_root
cw_require_tools podman runc debootstrap ip nmap tar md5sum
if [ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" != bpf_fs ]; then
    cw_setup_fail "no bpffs at /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf)"
fi
cw_take_lock /tmp/cwpd-podman.lock 900
T_START=$(cw_now_ms)
# bg CMD...: runs CMD in the background and waits for it, so that SIGTERM (ctest's
# timeout, Ctrl-C) reaches the cleanup now rather than when a minutes-long build
# ends (bash runs traps only between foreground commands); cleanup ends CMD.
CW_BG=
bg() {
    local rc=0
    "$@" &
    CW_BG=$!
    wait "$CW_BG" || rc=$?
    CW_BG=
    return $rc
}
secs_since() { local d=$(($(cw_now_ms) - $1)); printf '%d.%d' $((d / 1000)) $((d % 1000 / 100)); }

# podman_in WORK_DIR: the podman command line for this test's own store. Every image,
# layer, container and volume of a run lives under its work directory, so a run can
# neither see nor remove anyone else's, and removing the directory leaves nothing.
# runc and cgroupfs: crun refuses hybrid cgroup hierarchies, and podman's default
# (systemd) manager needs systemd as PID 1. Explicit ulimits: podman's defaults
# raise them, which needs CAP_SYS_RESOURCE that root may lack (as it does here).
podman_in() {
    echo podman --root "$1/storage" --runroot "$1/runroot" --tmpdir "$1/libpod" \
        --runtime runc --cgroup-manager=cgroupfs
}
RUN_OPTS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
NS_HOST=cwpd-host NS_PEER=cwpd-peer IF_HOST=cwpd-h0 IF_PEER=cwpd-p0
ADDR_HOST=10.239.0.1 ADDR_PEER=10.239.0.2
IMAGE=localhost/cwpd-connwatch:test
BUILD_IMAGE=localhost/cwpd-connwatch-build:test
DAEMON=cwpd-daemon CAPCHECK=cwpd-capcheck
# The daemon gets a directory of the host's bpffs as its /sys/fs/bpf (the narrowed
# bind of docs/CONTAINER.md), so its default pin-dir lands in $PINROOT/connwatch.
PINROOT=/sys/fs/bpf/cwpd-test PIN=/sys/fs/bpf/cwpd-test/connwatch CAPPIN=/sys/fs/bpf/cwpd-capcheck

# ---- the base image: a cached debootstrap tarball --------------------------------------
CACHE=${CW_CACHE:-/var/cache/connwatch-test}
# The key names everything that shapes the tarball: change the recipe, bump it.
RECIPE="minbase bookworm slim-v1"
KEY=$(echo "$RECIPE" | md5sum | cut -c1-8)
TARBALL=$CACHE/cwpd-bookworm-minbase-$KEY.tar
BASE_IMAGE=localhost/cwpd-base:$KEY
mkdir -p "$CACHE"
if [ ! -s "$TARBALL" ]; then
    echo "# building the base rootfs (debootstrap; cached in $TARBALL)"
    t0=$(cw_now_ms)
    tmp=$(mktemp -d "$CACHE/cwpd-rootfs.XXXXXX")
    chmod 0755 "$tmp"
    # Interrupted: end debootstrap, undo the mounts it made in the rootfs (proc,
    # sys), and only then remove it, never crossing into another file system.
    drop_rootfs() {
        [ -z "$CW_BG" ] || cw_kill "$CW_BG" 10
        awk -v t="$tmp/" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r |
            while read -r m; do umount -l "$m" || true; done
        rm -rf --one-file-system "$tmp" "$tmp.log" "$TARBALL.new"
    }
    trap drop_rootfs EXIT
    trap 'exit 143' TERM
    trap 'exit 130' INT
    if ! bg debootstrap --variant=minbase bookworm "$tmp" http://deb.debian.org/debian >"$tmp.log" 2>&1; then
        echo "FAIL: setup: debootstrap failed (is Debian's archive reachable?):"
        tail -5 "$tmp.log"
        exit 1
    fi
    # What debian:bookworm-slim has: updates and security sources, no documentation
    # but the copyright files, no translations, no package cache or lists.
    cat >"$tmp/etc/apt/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
    cat >"$tmp/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
    cat >"$tmp/etc/apt/apt.conf.d/slim" <<'EOF'
APT::Install-Recommends "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
EOF
    find "$tmp/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$tmp/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$tmp"/usr/share/man/* "$tmp"/usr/share/info/* "$tmp"/usr/share/locale/*
    rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/cache/apt/*.bin "$tmp"/var/lib/apt/lists/*
    mkdir -p "$tmp/var/lib/apt/lists/partial"
    tar -C "$tmp" -cf "$TARBALL.new" . && mv "$TARBALL.new" "$TARBALL"
    rm -rf "$tmp" "$tmp.log"
    cw_install_traps # the preamble's again, drop_rootfs's work done
    echo "# base rootfs built in $(secs_since "$t0") s"
fi

# store_remove WORK_DIR: stops and removes the store's containers and images, then
# the directory, unmounting whatever is still mounted under it first (a killed run
# can leave container file systems mounted), never crossing into another file system.
store_remove() {
    local w=$1 m
    local -a p
    read -ra p <<<"$(podman_in "$w")"
    if [ -d "$w/storage" ]; then
        "${p[@]}" rm -a -f -t 0 >/dev/null 2>&1 || true
        "${p[@]}" rmi -a -f >/dev/null 2>&1 || true
    fi
    awk -v t="$w/" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf --one-file-system "$w"
}
# What an earlier, killed run left (a container of it may still be running).
for old in /var/tmp/cwpd.??????; do
    [ -d "$old" ] && store_remove "$old"
done
WORK=$(mktemp -d /var/tmp/cwpd.XXXXXX)
read -ra PODMAN <<<"$(podman_in "$WORK")"
# Every podman call closes descriptor 9 (the run lock): a detached container's
# conmon would otherwise inherit it and hold the lock after the test, until killed.
pm() { "${PODMAN[@]}" "$@" 9>&-; }
# Cleanup runs newest first: the containers (registered below, once the namespaces
# exist), the pins, a build still running, and last the store with its images.
cw_on_cleanup "store_remove $WORK"
# shellcheck disable=SC2016 # expanded at cleanup time
cw_on_cleanup '[ -z "$CW_BG" ] || cw_kill "$CW_BG" 10'
cw_on_cleanup "rm -rf $PINROOT $CAPPIN"
rm -rf "$PINROOT" "$CAPPIN"

pm import "$TARBALL" "$BASE_IMAGE" >"$WORK/import.log" 2>&1 || { echo "FAIL: setup: podman import:"; cat "$WORK/import.log"; exit 1; }

# ---- build ----------------------------------------------------------------------------
# --isolation=chroot: no nested user namespaces or cgroups needed; RUN steps share
# the machine's network, which reaches Debian's archive. --pull=never: the base is
# local, no registry is asked.
BUILD_ARGS=(--isolation=chroot --pull=never --build-arg "BASE=$BASE_IMAGE" -f "$SRC/Dockerfile")
DEB=
if [ -n "$BUILD" ] && [ "${CW_PODMAN_FULL_BUILD:-0}" != 1 ]; then
    shopt -s nullglob
    debs=("$BUILD"/connwatch_*_*.deb)
    shopt -u nullglob
    [ ${#debs[@]} -eq 1 ] || cw_setup_fail "expected one connwatch_*.deb in $BUILD, found ${#debs[@]} (run 'make package' first, or CW_PODMAN_FULL_BUILD=1)"
    DEB=${debs[0]}
fi

# The build stage's apt-get list against the Makefile's DEPS: every library and
# build tool the host build installs is installed by the stage too (the test tools,
# the fuzzing runtime and GoogleTest are not needed: the stage builds no tests).
case_build_stage_packages() {
    local deps stage p missing=
    deps=$(sed -n '/^DEPS := /,/^$/p' "$SRC/Makefile" | sed 's/^DEPS := //; s/\\$//' | tr -s ' \t' '\n' | grep -v '^$')
    stage=$(sed -n '/^FROM .* AS build/,/^FROM /p' "$SRC/Dockerfile")
    for p in $deps; do
        case $p in
        libgtest-dev | googletest | libclang-rt-14-dev) continue ;;
        esac
        # only what builds: libraries' -dev packages and the compilers and tools
        case $p in
        *-dev | build-essential | cmake | pkg-config | clang | llvm | bpftool) ;;
        *) continue ;;
        esac
        grep -qE "(^|[[:space:]])$p([[:space:]]|\\\\|$)" <<<"$stage" || missing="$missing $p"
    done
    [ -z "$missing" ] || { WHY="the Dockerfile's build stage does not install:$missing"; return 1; }
}
check "the Dockerfile's build stage installs every build dependency the Makefile names" case_build_stage_packages

echo "# building the image (log: $WORK/build.log)"
t0=$(cw_now_ms)
if [ -n "$DEB" ]; then
    # The stand-in for the build stage: a directory with out/ holding the .deb.
    mkdir -p "$WORK/prebuilt/out"
    cp "$DEB" "$WORK/prebuilt/out/"
    echo "# runtime stage from $(basename "$DEB") (the build stage replaced by --build-context)"
    if ! bg pm build "${BUILD_ARGS[@]}" --build-context "build=$WORK/prebuilt" -t "$IMAGE" "$SRC" >"$WORK/build.log" 2>&1; then
        echo "FAIL: podman build:"
        tail -30 "$WORK/build.log"
        exit 1
    fi
    grep -q "COPY --from=build" "$WORK/build.log" && ! grep -q "cmake --build" "$WORK/build.log" ||
        cw_setup_fail "podman build did not take the .deb from the build context (log: $WORK/build.log)"
    BUILD_SECS=$(secs_since "$t0")
    mb() { echo $(($(pm image inspect -f '{{.Size}}' "$1") / 1000000)); }
    echo "# image built in $BUILD_SECS s; runtime image $(mb "$IMAGE") MB, base $(mb "$BASE_IMAGE") MB"
else
    # The build stage is tagged first, only to be measured; the second build reuses
    # it from the layer cache.
    if ! bg pm build "${BUILD_ARGS[@]}" --target build -t "$BUILD_IMAGE" "$SRC" >"$WORK/build.log" 2>&1 ||
        ! bg pm build "${BUILD_ARGS[@]}" -t "$IMAGE" "$SRC" >>"$WORK/build.log" 2>&1; then
        echo "FAIL: podman build:"
        tail -30 "$WORK/build.log"
        exit 1
    fi
    BUILD_SECS=$(secs_since "$t0")
    mb() { echo $(($(pm image inspect -f '{{.Size}}' "$1") / 1000000)); }
    echo "# image built in $BUILD_SECS s; build stage $(mb "$BUILD_IMAGE") MB, runtime image $(mb "$IMAGE") MB, base $(mb "$BASE_IMAGE") MB"
fi

case_image_contents() {
    local ep out
    ep=$(pm image inspect -f '{{json .Config.Entrypoint}}' "$IMAGE")
    [ "$ep" = '["/usr/sbin/connwatchd","--log-target","stdout"]' ] || { WHY="entrypoint $ep"; return 1; }
    # Inside the image: no toolchain, no headers; the package installed by dpkg.
    # shellcheck disable=SC2016 # expanded by the image's shell
    out=$(pm run --rm "${RUN_OPTS[@]}" --network none --entrypoint /bin/sh "$IMAGE" -c '
        for t in clang gcc cc c++ cpp ld as cmake make bpftool llvm-strip; do
            command -v "$t" >/dev/null && echo "has $t"
        done
        [ -z "$(find /usr/include -mindepth 1 -print -quit 2>/dev/null)" ] || echo "has /usr/include/*"
        h=$(find / -xdev -name "*.h" -print -quit); [ -z "$h" ] || echo "has header $h"
        dpkg-query -W -f="\${db:Status-Status}\n" connwatch
        getent group connwatch >/dev/null || echo "no group connwatch"
        /usr/sbin/connwatchd --version' 2>&1) || { WHY="could not run the image: $out"; return 1; }
    [ "$out" = "$(printf 'installed\n%s' "$(sed -n 's/^project(connwatch VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")")" ] ||
        { WHY=$(echo "$out" | tr '\n' ';'); return 1; }
}
check "the runtime image: connwatchd as exec-form entrypoint, the .deb installed, no compilers or headers" case_image_contents

# ---- the "host": a namespace with a veth into a peer namespace -------------------------
cw_ns_create "$NS_HOST"
cw_ns_create "$NS_PEER"
ip -n "$NS_HOST" link add "$IF_HOST" type veth peer name "$IF_PEER" netns "$NS_PEER"
ip -n "$NS_HOST" addr add "$ADDR_HOST/24" dev "$IF_HOST"
ip -n "$NS_PEER" addr add "$ADDR_PEER/24" dev "$IF_PEER"
ip -n "$NS_HOST" link set "$IF_HOST" up
ip -n "$NS_PEER" link set "$IF_PEER" up
# A listener on the "host" that accepts and closes, for a while (bounded by itself).
ip netns exec "$NS_HOST" "$CW_PY" - "$ADDR_HOST" 8080 "$WORK/listen.ready" 9>&- <<'EOF' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(64)
s.settimeout(0.5)
open(sys.argv[3], "w").write("ready\n")
deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    try:
        c, _ = s.accept()
        c.close()
    except OSError:
        pass
EOF
cw_on_cleanup "cw_kill $! 2"
cw_wait_until 10 test -s "$WORK/listen.ready" || { echo "FAIL: setup: the listener did not start"; exit 1; }
# The containers stop before their namespaces go (and detach while their veth exists).
# shellcheck disable=SC2016 # expanded at cleanup time
cw_on_cleanup 'pm rm -a -f -t 10 >/dev/null 2>&1'
xdp_on() { grep -q prog/xdp <<<"$(ip -n "$NS_HOST" -d link show dev "$IF_HOST")"; }
xdp_off() { ! xdp_on; }

python3 "$CW_LIB/../../packaging/container/seccomp_profile.py" >"$WORK/seccomp.json"
SECCOMP=(--security-opt "seccomp=$WORK/seccomp.json")
NET=(--network "ns:/run/netns/$NS_HOST")

# ---- capabilities: each one dropped, the failure it causes ------------------------------
# cap_refused WANT_RE CAPS SECCOMP_OPTS...: the daemon exits 1 with WANT_RE, attaches nothing.
cap_refused() {
    local want=$1 caps=$2 out rc=0
    shift 2
    out=$(timeout 60 "${PODMAN[@]}" run --rm --name "$CAPCHECK" "${RUN_OPTS[@]}" "${NET[@]}" \
        --cap-drop=ALL --cap-add="$caps" "$@" -v /sys/fs/bpf:/sys/fs/bpf "$IMAGE" \
        --interface "$IF_HOST" --pin-dir "$CAPPIN" --metrics-listen "" 2>&1 9>&-) || rc=$?
    [ "$rc" = 1 ] || { WHY="with $caps $*: exit $rc, expected 1: $out"; return 1; }
    grep -Eq -- "$want" <<<"$out" || { WHY="with $caps $*: $out"; return 1; }
    xdp_off || { WHY="with $caps: XDP attached"; return 1; }
}
case_caps_needed() {
    cap_refused 'Failed to load the XDP program.*Operation not permitted' NET_ADMIN,PERFMON "${SECCOMP[@]}" || return 1
    cap_refused 'Failed to load the XDP program.*Operation not permitted' BPF,PERFMON "${SECCOMP[@]}" || return 1
    cap_refused 'Failed to load the XDP program.*Permission denied' BPF,NET_ADMIN "${SECCOMP[@]}" || return 1
}
check "each of CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON is needed (without one the load is refused)" case_caps_needed

case_default_seccomp() {
    # The engine's default profile allows bpf() only with CAP_SYS_ADMIN ...
    cap_refused 'Failed to load the XDP program.*Operation not permitted' BPF,NET_ADMIN,PERFMON || return 1
    # ... and with it the three are enough.
    pm run -d --name "$CAPCHECK" "${RUN_OPTS[@]}" "${NET[@]}" \
        --cap-drop=ALL --cap-add=BPF,NET_ADMIN,PERFMON,SYS_ADMIN -v /sys/fs/bpf:/sys/fs/bpf "$IMAGE" \
        --interface "$IF_HOST" --pin-dir "$CAPPIN" --metrics-listen "" >/dev/null ||
        { WHY="podman run failed"; return 1; }
    local ok=0
    cw_wait_until 20 logs_have "$CAPCHECK" "Started, watching $IF_HOST" && xdp_on && ok=1
    [ $ok = 1 ] || WHY="with SYS_ADMIN added: $(pm logs "$CAPCHECK" 2>&1 | tail -3)"
    pm rm -f -t 10 "$CAPCHECK" >/dev/null 2>&1 || true
    rm -rf "$CAPPIN"
    [ $ok = 1 ] && cw_wait_until 10 xdp_off
}
logs_have() { grep -Eq -- "$2" <<<"$(pm logs "$1" 2>&1)"; }
check "with the default seccomp profile, CAP_SYS_ADMIN is needed as well (it gates bpf())" case_default_seccomp

# ---- the daemon, as docs/CONTAINER.md runs it -------------------------------------------
mkdir -p "$WORK/etc" "$WORK/state" "$WORK/run" "$PINROOT"
cat >"$WORK/etc/connwatchd.conf" <<EOF
# The configuration volume: a file of the host's, read-only in the container.
block-duration = 10m
EOF
start_daemon() {
    pm run -d --name "$DAEMON" "${RUN_OPTS[@]}" "${NET[@]}" \
        --cap-drop=ALL --cap-add=BPF,NET_ADMIN,PERFMON "${SECCOMP[@]}" --group-add connwatch \
        -v "$PINROOT:/sys/fs/bpf" \
        -v "$WORK/etc:/etc/connwatch:ro" \
        -v "$WORK/state:/var/lib/connwatch" \
        -v "$WORK/run:/run/connwatch" \
        "$IMAGE" --interface "$IF_HOST" >/dev/null
}
daemon_running() { [ "$(pm inspect -f '{{.State.Running}}' "$DAEMON" 2>/dev/null)" = true ]; }
# wait_log ERE TIMEOUT_S: the daemon's output (podman logs) has a matching line;
# fails at once when the container has stopped.
wait_log() {
    local re=$1 deadline=$(($(cw_now_ms) + $2 * 1000))
    while :; do
        logs_have "$DAEMON" "$re" && return 0
        daemon_running || { logs_have "$DAEMON" "$re"; return; }
        [ "$(cw_now_ms)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}
daemon_tail() { pm logs "$DAEMON" 2>&1 | tail -"${1:-3}" | tr '\n' ';'; }
metrics() { ip netns exec "$NS_HOST" "$CW_PY" -c '
import urllib.request
print(urllib.request.urlopen("http://127.0.0.1:9467/metrics", timeout=3).read().decode())'; }
# metric_at_least NAME_WITH_LABELS N
metric_at_least() {
    local v
    v=$(awk -v m="$1" '$1 == m { print $2 }' <<<"$(metrics 2>/dev/null)")
    [ -n "$v" ] && awk -v v="$v" -v n="$2" 'BEGIN { exit !(v + 0 >= n + 0) }'
}
ctl() { pm exec "$DAEMON" connwatchctl "$@"; }

case_start() {
    start_daemon || { WHY="podman run failed"; return 1; }
    wait_log "Started, watching $IF_HOST" 30 || { WHY="no 'Started' line: $(daemon_tail 5)"; return 1; }
    xdp_on || { WHY="no XDP program on $IF_HOST"; return 1; }
    [ -e "$PIN/block_addr" ] || { WHY="nothing pinned in $PIN on the host"; return 1; }
}
check "starts with --cap-drop=ALL --cap-add=BPF,NET_ADMIN,PERFMON and the bpf-by-CAP_BPF seccomp profile; attaches; pins in its directory of the host's bpffs" case_start
if ! daemon_running; then
    echo "$PASSED passed, $FAILED failed (the daemon did not start; the rest is skipped)"
    exit 1
fi

case_connection() {
    local port
    port=$(cw_connect "$NS_PEER" "$ADDR_HOST" 8080 3) || { WHY="connect failed"; return 1; }
    wait_log "^${CW_TS_RE}New connection: $(cw_regex_escape "$ADDR_PEER:$port -> $ADDR_HOST:8080")\$" 10 ||
        { WHY="no New connection line: $(daemon_tail)"; return 1; }
    cw_wait_until 10 metric_at_least "connwatch_new_connections_total{interface=\"$IF_HOST\"}" 1 ||
        { WHY="metrics: connwatch_new_connections_total not >= 1"; return 1; }
}
check "a TCP connection from the peer is reported on stdout (podman logs) and counted at 127.0.0.1:9467/metrics" case_connection

case_scan() {
    bg ip netns exec "$NS_PEER" timeout 60 nmap -sS -n -Pn -p 1-10 --max-retries 1 --host-timeout 30s \
        "$ADDR_HOST" >"$WORK/nmap.log" 2>&1 || true
    wait_log "^${CW_TS_RE}Port scan detected: $(cw_regex_escape "$ADDR_PEER -> $ADDR_HOST") on ports [0-9,]+\$" 10 ||
        { WHY="no scan line: $(daemon_tail)"; return 1; }
    wait_log "^${CW_TS_RE}Blocked $(cw_regex_escape "$ADDR_PEER") until " 10 || { WHY="no Blocked line: $(daemon_tail)"; return 1; }
    local err
    if err=$(cw_connect "$NS_PEER" "$ADDR_HOST" 8080 2 2>&1); then
        WHY="the peer still connects after the block"; return 1
    fi
    [[ $err == *"timed out"* ]] || { WHY="connect after the block: $err (expected a timeout: dropped)"; return 1; }
    grep -Eq "^$(cw_regex_escape "$ADDR_PEER")/32 +scan " <<<"$(ctl list)" || { WHY="connwatchctl list: $(ctl list 2>&1 | head -3)"; return 1; }
    metric_at_least connwatch_port_scans_total 1 || { WHY="metrics: connwatch_port_scans_total"; return 1; }
    metric_at_least 'connwatch_packets_dropped_total{reason="blocklist"}' 1 || { WHY="metrics: no drops counted"; return 1; }
}
check "an nmap -sS of ports 1-10 is detected; the peer is blocked (connect times out, connwatchctl list via podman exec)" case_scan

case_control() {
    ctl reload >/dev/null || { WHY="podman exec connwatchctl reload failed"; return 1; }
    # The socket volume: another container (no capabilities) and the host use it.
    local out
    out=$(pm run --rm "${RUN_OPTS[@]}" --network none --cap-drop=ALL \
        -v "$WORK/run:/run/connwatch" --entrypoint /usr/bin/connwatchctl "$IMAGE" status 2>&1) ||
        { WHY="connwatchctl in a second container: $out"; return 1; }
    grep -q "Interfaces: *$IF_HOST" <<<"$out" || { WHY="status: $out"; return 1; }
    if [ -n "$BUILD" ] && [ -x "$BUILD/connwatchctl" ]; then
        out=$("$BUILD/connwatchctl" --socket "$WORK/run/control.sock" list 2>&1) ||
            { WHY="the host's connwatchctl: $out"; return 1; }
        grep -q "^$(cw_regex_escape "$ADDR_PEER")/32 " <<<"$out" || { WHY="host list: $out"; return 1; }
    fi
    [ -s "$WORK/state/state.json" ] || { WHY="no state.json in the state volume"; return 1; }
    # --group-add connwatch: the socket goes to the image's group without CAP_CHOWN.
    local gid
    gid=$(pm exec "$DAEMON" getent group connwatch | cut -d: -f3)
    [ "$(stat -c '%a %g' "$WORK/run/control.sock")" = "660 $gid" ] ||
        { WHY="socket $(stat -c '%a %g' "$WORK/run/control.sock"), want 660 $gid"; return 1; }
    ! logs_have "$DAEMON" "warning|Cannot|does not exist" || { WHY="warned: $(daemon_tail 3)"; return 1; }
}
check "the control socket through its volume (a second container$([ -n "$BUILD" ] && echo ", the host")), group connwatch's; reload; state.json in the state volume" case_control

STOP_EXIT=
case_stop() {
    local t0 took
    t0=$(cw_now_ms)
    pm stop -t 10 "$DAEMON" >/dev/null || { WHY="podman stop failed"; return 1; }
    took=$(($(cw_now_ms) - t0))
    STOP_EXIT=$(pm inspect -f '{{.State.ExitCode}}' "$DAEMON")
    [ "$took" -lt 5000 ] || { WHY="podman stop took $took ms (SIGTERM ignored; killed after the timeout?)"; return 1; }
    cw_wait_until 5 xdp_off || { WHY="XDP still attached to $IF_HOST"; return 1; }
    [ -e "$PIN/block_addr" ] || { WHY="the pinned blocklist is gone"; return 1; }
    echo "# podman stop took $took ms"
}
check "podman stop stops it promptly, XDP detached, the blocklist stays pinned" case_stop

case_sigterm_clean() {
    [ "$STOP_EXIT" = 0 ] && logs_have "$DAEMON" "received Terminated, detaching" && return 0
    WHY="exit status $STOP_EXIT, last lines: $(daemon_tail 2)"
    [ "$STOP_EXIT" = 143 ] && WHY="$WHY (143: SIGTERM killed the process instead of reaching the signalfd)"
    return 1
}
check "SIGTERM: connwatchd (PID 1) drains, detaches and exits 0" case_sigterm_clean

case_restart() {
    pm start "$DAEMON" >/dev/null || { WHY="podman start failed"; return 1; }
    wait_log "Kept 1 blocks from the previous run" 30 || { WHY="blocks not kept: $(daemon_tail 3)"; return 1; }
    cw_wait_until 10 xdp_on || { WHY="not attached again"; return 1; }
    if cw_connect "$NS_PEER" "$ADDR_HOST" 8080 2 >/dev/null 2>&1; then
        WHY="the peer connects after the restart"; return 1
    fi
    pm stop -t 10 "$DAEMON" >/dev/null
    cw_wait_until 5 xdp_off || { WHY="XDP still attached after the second stop"; return 1; }
}
check "a restarted container keeps the blocks (pinned maps, state volume)" case_restart

echo "# total $(secs_since "$T_START") s (image build $BUILD_SECS s)"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
