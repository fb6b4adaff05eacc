# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# For the package tests: the packages under test, and a Debian 12 root file system
# to install them in, built once with debootstrap (needs Debian's archive, ~1-2 min)
# and cached as a tarball, keyed by its package list, in $CW_CACHE (default
# /var/cache/connwatch-test).

# cw_built_package BUILD_DIR GLOB: prints the one package matching GLOB in BUILD_DIR
# (e.g. 'connwatch_*.deb'); fails saying what to do when there is none, more than
# one, or one older than the build's connwatchd (a stale package would be tested).
cw_built_package() {
    local build=$1 glob=$2 found
    shopt -s nullglob
    # shellcheck disable=SC2206 # the glob is meant to expand
    found=("$build"/$glob)
    shopt -u nullglob
    if [ ${#found[@]} -ne 1 ]; then
        echo "FAIL: setup: want exactly one $glob in $build, found ${#found[@]}: run 'make package'" >&2
        return 1
    fi
    if [ -x "$build/connwatchd" ] && [ "$build/connwatchd" -nt "${found[0]}" ]; then
        echo "FAIL: setup: ${found[0]} is older than $build/connwatchd: run 'make package'" >&2
        return 1
    fi
    echo "${found[0]}"
}

CW_CACHE=${CW_CACHE:-/var/cache/connwatch-test}

# cw_rootfs_tarball PACKAGES: sets CW_TARBALL to the cached tarball of a minbase
# bookworm with PACKAGES (comma-separated) added, building it if it is missing.
CW_TARBALL=
cw_rootfs_tarball() {
    local packages=$1 tmp
    command -v debootstrap >/dev/null || { echo "FAIL: setup: debootstrap is not installed (make deps)"; return 1; }
    mkdir -p "$CW_CACHE"
    CW_TARBALL=$CW_CACHE/bookworm-$(echo "$packages" | md5sum | cut -c1-8).tar
    [ -s "$CW_TARBALL" ] && return 0
    echo "# building a Debian 12 rootfs (cached in $CW_TARBALL)"
    tmp=$(mktemp -d "$CW_CACHE/rootfs.XXXXXX")
    chmod 0755 "$tmp" # it becomes a container's /: mktemp's 0700 would lock out every non-root daemon
    if ! debootstrap --variant=minbase --include="$packages" bookworm "$tmp" >"$tmp.log" 2>&1; then
        echo "FAIL: setup: debootstrap failed (is Debian's archive reachable?):"
        tail -5 "$tmp.log"
        rm -rf "$tmp" "$tmp.log"
        return 1
    fi
    tar -C "$tmp" -cf "$CW_TARBALL.new" . && mv "$CW_TARBALL.new" "$CW_TARBALL"
    rm -rf "$tmp" "$tmp.log"
}

# cw_rootfs_unpack DIR: a fresh copy of $CW_TARBALL in DIR, with this machine's apt
# settings for reaching the archive (a snapshot mirror may need them) and DNS, so
# that apt-get inside it can fetch dependencies.
cw_rootfs_unpack() {
    local root=$1 f
    mkdir -p "$root"
    tar -C "$root" -xf "$CW_TARBALL"
    chmod 0755 "$root"
    cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
    for f in /etc/apt/apt.conf.d/*; do
        # Only settings about reaching and trusting the archive, not the host's quirks.
        if grep -qE '^Acquire::(Check-Valid-Until|Check-Date|http::Proxy|https::Proxy)' "$f" 2>/dev/null; then
            grep -E '^Acquire::(Check-Valid-Until|Check-Date|http::Proxy|https::Proxy)' "$f" \
                >"$root/etc/apt/apt.conf.d/50cw-host-$(basename "$f")"
        fi
    done
}
