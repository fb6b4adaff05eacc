# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# shellcheck disable=SC2034  # CW_* variables are read by the scripts that source this
# Shell helpers for tests and demos that need network namespaces, veth pairs and
# real traffic. Source this file from a bash script that runs `set -euo pipefail`.
#
# The rules these helpers keep, so a caller cannot forget them:
# - traffic only ever goes to namespaces and veth pairs the caller created here
#   (or loopback); nothing here knows any other address;
# - every wait is a poll with a deadline, never a fixed sleep used to synchronise;
# - everything created is registered for cleanup, which runs in reverse order from
#   an EXIT trap (cw_cleanup), on success and failure alike.
#
# Names: each caller uses its own prefix (cwit for the integration tests, cwdemo for
# the demo) so that concurrent users of the machine never touch each other's links.

# A python3 that is the system's own where there is one: tests must not depend on a
# per-user interpreter shim, and `ip netns exec` keeps the environment anyway.
if [ -x /usr/bin/python3 ]; then
    CW_PY=/usr/bin/python3
else
    CW_PY=$(command -v python3 || true)
fi

# ---- time and waiting -------------------------------------------------------------

# Milliseconds on a monotonic-enough clock (bash's EPOCHREALTIME, microseconds).
cw_now_ms() {
    local us=${EPOCHREALTIME/[.,]/}
    echo $((us / 1000))
}

# cw_wait_for_line FILE ERE TIMEOUT_S [PID]
# Polls FILE until a line matches the extended regex ERE. Fails after TIMEOUT_S
# seconds, or at once when PID is given and that process has exited (so a daemon
# that died is reported now, not after the whole timeout).
cw_wait_for_line() {
    local file=$1 re=$2 timeout=$3 pid=${4:-}
    local deadline=$(($(cw_now_ms) + timeout * 1000))
    while :; do
        if [ -f "$file" ] && grep -Eq -- "$re" "$file"; then
            return 0
        fi
        if [ -n "$pid" ] && ! cw_pid_alive "$pid"; then
            # One last look: the line may have been written just before the exit.
            [ -f "$file" ] && grep -Eq -- "$re" "$file" && return 0
            return 1
        fi
        [ "$(cw_now_ms)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# cw_daemon_start [--ready ERE] TIMEOUT_S OUT ERR PIDFILE CMD...: starts CMD (a
# connwatchd command line) in the background, stdout appended to OUT and stderr to
# ERR, without the run lock's descriptor 9; records its pid in CW_DAEMON_PID and
# PIDFILE, ends it and removes PIDFILE at cleanup, and waits until ERR holds one more line matching ERE
# (default '^connwatchd: Started') than before (this start's own, not an earlier
# run's). Fails at once when the process exits first, or after TIMEOUT_S; the
# caller says what that means for it.
cw_daemon_start() {
    local ready='^connwatchd: Started'
    if [ "$1" = --ready ]; then
        ready=$2
        shift 2
    fi
    local timeout=$1 out=$2 err=$3 pidfile=$4 before deadline
    shift 4
    before=$(cw_count_lines "$err" "$ready")
    "$@" >>"$out" 2>>"$err" 9>&- &
    CW_DAEMON_PID=$!
    cw_pidfile_track "$pidfile" "$CW_DAEMON_PID"
    cw_on_cleanup "cw_kill $CW_DAEMON_PID 5"
    deadline=$(($(cw_now_ms) + timeout * 1000))
    while [ "$(cw_count_lines "$err" "$ready")" -le "$before" ]; do
        if ! cw_pid_alive "$CW_DAEMON_PID"; then
            # One last look: the line may have been written just before the exit.
            [ "$(cw_count_lines "$err" "$ready")" -gt "$before" ]
            return
        fi
        [ "$(cw_now_ms)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# cw_daemon_stop PID TIMEOUT_S: SIGTERM, then waits for the exit (its status in
# CW_EXIT_STATUS); fails when PID still runs after TIMEOUT_S.
cw_daemon_stop() {
    kill -TERM "$1" 2>/dev/null || true
    cw_wait_exit "$1" "$2"
}

# cw_wait_until TIMEOUT_S CMD...: polls CMD until it succeeds or the deadline passes.
cw_wait_until() {
    local timeout=$1
    shift
    local deadline=$(($(cw_now_ms) + timeout * 1000))
    while :; do
        "$@" && return 0
        [ "$(cw_now_ms)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# cw_pid_alive PID: true while PID runs. An exited process that nobody has reaped
# yet (a zombie) still answers kill -0; its state in /proc says it is gone.
cw_pid_alive() {
    kill -0 "$1" 2>/dev/null || return 1
    local state
    state=$(sed -e 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || true
    [ "$state" != Z ]
}

# cw_wait_exit PID TIMEOUT_S: waits for a child of this shell to exit and sets
# CW_EXIT_STATUS to its exit status. Fails when it is still running at the deadline.
# (Not meant for $(...): a subshell cannot reap its parent's children.)
CW_EXIT_STATUS=
cw_wait_exit() {
    local pid=$1 timeout=$2
    local deadline=$(($(cw_now_ms) + timeout * 1000))
    CW_EXIT_STATUS=
    while cw_pid_alive "$pid"; do
        [ "$(cw_now_ms)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
    CW_EXIT_STATUS=0
    wait "$pid" 2>/dev/null || CW_EXIT_STATUS=$?
    return 0
}

# cw_count_lines FILE ERE: how many lines of FILE match (0 when none or no file).
cw_count_lines() {
    local n
    n=$(grep -Ec -- "$2" "$1" 2>/dev/null) || true
    echo "${n:-0}"
}

# ---- cleanup ------------------------------------------------------------------------

CW_CLEANUP=()

# cw_on_cleanup CMD...: registers CMD (one string, eval'ed) to run at cleanup.
cw_on_cleanup() {
    CW_CLEANUP+=("$*")
}

# Runs the registered commands, newest first, ignoring their failures: cleanup must
# get through everything even when the test broke half-way. Install it with
#   trap cw_cleanup EXIT
cw_cleanup() {
    local i
    set +e
    for ((i = ${#CW_CLEANUP[@]} - 1; i >= 0; i--)); do
        eval "${CW_CLEANUP[$i]}" >/dev/null 2>&1
    done
    CW_CLEANUP=()
}

# cw_install_traps: cleanup on every way out — normal exit, failure, Ctrl-C,
# SIGTERM (ctest's timeout, a CI runner stopping). bash runs the EXIT trap after
# the INT/TERM/HUP handlers call exit.
cw_install_traps() {
    trap cw_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
}

# cw_lock FILE TIMEOUT_S: holds an exclusive lock on FILE, on file descriptor 9, for
# the rest of the script, so that two runs that use the same names take turns.
# Long-lived children must not inherit descriptor 9 (an orphan left by a killed run
# would hold the lock forever): start them with `9>&-`, as cw_listen does.
cw_lock() {
    exec 9>"$1"
    flock -w "$2" 9
}

# cw_pidfile_track PIDFILE PID: records PID so that a later run can end it if this
# run is killed without its cleanup (SIGKILL); removed again at cleanup.
cw_pidfile_track() {
    echo "$2" >"$1"
    cw_on_cleanup "rm -f $1"
}

# cw_pidfile_reap PIDFILE MARKER: ends the process a killed earlier run left behind,
# when PIDFILE names one whose command line still contains MARKER (so a recycled
# PID that now belongs to something else is left alone).
cw_pidfile_reap() {
    local file=$1 marker=$2 pid
    [ -f "$file" ] || return 0
    pid=$(cat "$file" 2>/dev/null) || true
    rm -f "$file"
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$marker"; then
        echo "note: ending process $pid left over from an earlier, killed run" >&2
        kill -TERM "$pid" 2>/dev/null || return 0
        if ! cw_wait_until 5 eval "! cw_pid_alive $pid"; then
            kill -KILL "$pid" 2>/dev/null || true
            cw_wait_until 5 eval "! cw_pid_alive $pid" || true
        fi
    fi
}

# cw_kill PID [TIMEOUT_S]: SIGTERM, then SIGKILL if it is still there at the deadline.
cw_kill() {
    local pid=$1 timeout=${2:-5}
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    if ! cw_wait_exit "$pid" "$timeout"; then
        kill -KILL "$pid" 2>/dev/null
        cw_wait_exit "$pid" 5 || true
    fi
    return 0
}

# ---- namespaces, veth pairs, addresses ------------------------------------------

cw_require_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "$0: needs root (network namespaces, veth pairs, XDP); run it as root" >&2
        exit 1
    fi
}

# cw_ns_destroy NS: removes a namespace (and with it every veth end inside it).
cw_ns_destroy() {
    ip netns del "$1" 2>/dev/null || true
}

# cw_link_destroy IF: removes a link in the root namespace if it is there.
cw_link_destroy() {
    ip link del dev "$1" 2>/dev/null || true
}

# cw_ns_create NS: a fresh namespace with loopback up; removed at cleanup.
# A namespace of the same name left over from an earlier, killed run of the same
# caller is removed first (the names are the caller's own prefix).
cw_ns_create() {
    local ns=$1
    cw_ns_destroy "$ns"
    ip netns add "$ns"
    cw_on_cleanup "cw_ns_destroy $ns"
    ip -n "$ns" link set lo up
}

# cw_veth HOST_IF NS PEER_IF: a veth pair, HOST_IF in the root namespace, PEER_IF in
# NS, both up. Deleting either end deletes both; cleanup deletes the host end.
cw_veth() {
    local host_if=$1 ns=$2 peer_if=$3
    cw_link_destroy "$host_if"
    ip link add "$host_if" type veth peer name "$peer_if" netns "$ns"
    cw_on_cleanup "cw_link_destroy $host_if"
    # No IPv6 router solicitations or DAD noise on the test links.
    sysctl -qw "net.ipv6.conf.$host_if.accept_ra=0" 2>/dev/null || true
    ip link set "$host_if" up
    ip -n "$ns" link set "$peer_if" up
}

# cw_addr [NS] IF ADDR/LEN: adds an address (in NS when given, else the root
# namespace). IPv6 addresses get `nodad`: usable at once, no DAD wait.
cw_addr() {
    local ns=
    if [ $# -eq 3 ]; then
        ns=$1
        shift
    fi
    local dev=$1 addr=$2 extra=()
    case $addr in *:*) extra=(nodad) ;; esac
    if [ -n "$ns" ]; then
        ip -n "$ns" addr add "$addr" dev "$dev" "${extra[@]}"
    else
        ip addr add "$addr" dev "$dev" "${extra[@]}"
    fi
}

# cw_route NS default via GW: a route inside NS (v4 or v6 chosen from GW).
cw_default_route() {
    local ns=$1 gw=$2
    case $gw in
    *:*) ip -n "$ns" -6 route add default via "$gw" ;;
    *) ip -n "$ns" route add default via "$gw" ;;
    esac
}

# cw_xdp_attached IF: true when IF (root namespace) has an XDP program attached.
cw_xdp_attached() {
    # A here-string, not a pipe: with pipefail, grep -q exiting at the first
    # match can make the writer die of SIGPIPE and the whole test fail.
    grep -Eq 'prog/xdp|(^| )xdp(generic|drv|offload)? ' <<<"$(ip -d link show dev "$1" 2>/dev/null)"
}

# ---- connwatchd instances that share nothing with the machine's own ----------------

# cw_isolation BIN WORKDIR NAME: sets CW_ISOLATE to the options that give one
# connwatchd instance its own configuration file (empty), control socket, state
# directory and bpffs pin directory, and no metrics endpoint, so that it neither reads nor changes the state
# of an installed connwatchd, of another test, or of an earlier run (pinned blocks
# outlive the process). Only the options this binary lists in --help are used, so
# the helper works across versions. The pin directory (/sys/fs/bpf/NAME) is removed
# now, if an earlier killed run left it, and again at cleanup.
CW_ISOLATE=()
cw_isolation() {
    local bin=$1 work=$2 name=$3 help
    help=$("$bin" --help 2>&1) || true
    CW_ISOLATE=()
    if [[ $help == *--config* ]]; then
        : >"$work/$name.conf"
        CW_ISOLATE+=(--config "$work/$name.conf")
    fi
    [[ $help == *--control-socket* ]] && CW_ISOLATE+=(--control-socket "$work/$name.sock")
    [[ $help == *--state-dir* ]] && CW_ISOLATE+=(--state-dir "$work/$name.state")
    # No metrics endpoint unless a test asks for one: the default port is shared.
    [[ $help == *--metrics-listen* ]] && CW_ISOLATE+=(--metrics-listen "")
    if [[ $help == *--pin-dir* ]]; then
        rm -rf "/sys/fs/bpf/$name"
        cw_on_cleanup "rm -rf /sys/fs/bpf/$name"
        CW_ISOLATE+=(--pin-dir "/sys/fs/bpf/$name")
    fi
    return 0
}

# ---- traffic ------------------------------------------------------------------------

# cw_listen LIFETIME_S READY_FILE ADDR:PORT...: TCP listener(s) in the current
# (root) namespace that accept and close every connection. Runs in the background
# and stops by itself after LIFETIME_S seconds; writes "ready" into READY_FILE once
# every socket listens. Sets CW_LISTEN_PID; killed at cleanup. IPv6 as [addr]:port.
cw_listen() {
    local lifetime=$1 ready=$2
    shift 2
    "$CW_PY" - "$lifetime" "$ready" "$@" 9>&- <<'EOF' &
import selectors, socket, sys, time
lifetime, ready, specs = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
deadline = time.monotonic() + lifetime
sel = selectors.DefaultSelector()
for spec in specs:
    host, port = spec.rsplit(":", 1)
    host = host.strip("[]")
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(64)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
with open(ready, "w") as f:
    f.write("ready\n")
while time.monotonic() < deadline:
    for key, _ in sel.select(timeout=0.5):
        try:
            c, _ = key.fileobj.accept()
            c.close()
        except OSError:
            pass
EOF
    CW_LISTEN_PID=$!
    cw_on_cleanup "cw_kill $CW_LISTEN_PID 2"
}

# cw_connect NS DST PORT [TIMEOUT_S] [SRC]: one TCP connection from inside NS
# (SRC: the local address to bind, optional). On success prints the local port
# and returns 0; on failure (refused, timed out) prints the reason to stderr and
# returns 1.
cw_connect() {
    local ns=$1 dst=$2 port=$3 timeout=${4:-2} src=${5:-}
    ip netns exec "$ns" "$CW_PY" - "$dst" "$port" "$timeout" "$src" <<'EOF'
import socket, sys
dst, port, timeout, src = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(timeout)
try:
    if src:
        s.bind((src, 0))
    s.connect((dst, port))
    print(s.getsockname()[1])
except OSError as e:
    print(f"connect to {dst} port {port}: {e}", file=sys.stderr)
    sys.exit(1)
finally:
    s.close()
EOF
}

# cw_regex_escape STR: STR with ERE metacharacters escaped (addresses in patterns).
cw_regex_escape() {
    printf '%s' "$1" | sed -e 's/[][\.*^$+?(){}|/]/\\&/g'
}

# The timestamp every event line starts with: "YYYY-MM-DD HH:MM:SS: ".
CW_TS_RE='[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}: '
