#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The .rpm, as far as this machine can take it: no RPM distribution's archive is
# reachable, so it is installed with `rpm --root` into a scratch root (a Debian 12
# rootfs, for its /bin/sh and systemd tools) with --nodeps, its scriptlets running
# chrooted there. Checked: every file lands, `rpm -V` is clean, %post makes the
# group and follows the distribution's presets (Fedora's "disable *" policy: not
# enabled), an upgrade to the next release (the same build, release 2, made with cpack
# here) keeps an edited configuration, the enablement and the runtime directory, and
# `rpm -e` keeps an edited configuration as .rpmsave and removes the rest but the group. Not checked here: its dependencies resolving in a real RPM
# distribution, and the service running there (docs/PACKAGING.md).
#
# Usage: rpm_test.sh BUILD_DIR   (root, after `make package`; ctest label "package")
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/preamble.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/preamble.sh"

if [ $# -ne 1 ] || [ ! -d "$1" ]; then cw_usage "BUILD_DIR (with the .rpm built: make package)"; fi
BUILD=$(realpath "$1")
cw_require_root
cw_require_tools rpm
RPM=$(cw_built_package "$BUILD" 'connwatch-*.rpm' 2>&1) || { echo "$RPM"; exit 1; }

# The same rootfs as the .deb's test (one cached tarball).
cw_rootfs_tarball systemd,systemd-sysv,dbus,iproute2,python3-minimal,nmap,procps
cw_workdir /var/tmp/cwrpm # no lock: leftovers of a killed run stay (a concurrent run may own one)
ROOT=$WORK/root
cw_rootfs_unpack "$ROOT"
# Fedora's and RHEL's policy: services are not enabled on install unless a preset
# says so.
mkdir -p "$ROOT/etc/systemd/system-preset"
echo 'disable *' >"$ROOT/etc/systemd/system-preset/99-default-disable.preset"
in_root() { chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

case_install() {
    local out f
    out=$(rpm --root "$ROOT" --initdb 2>&1 && rpm --root "$ROOT" -i --nodeps "$RPM" 2>&1) ||
        { WHY="rpm -i: $out"; return 1; }
    for f in $(rpm -qpl "$RPM" 2>/dev/null); do
        [ -e "$ROOT$f" ] || { WHY="$f missing"; return 1; }
    done
    # --nodeps: the scratch root's rpm database knows none of the libraries.
    out=$(rpm --root "$ROOT" -V --nodeps connwatch 2>&1) || { WHY="rpm -V: $out"; return 1; }
    in_root getent group connwatch >/dev/null || { WHY="%post made no connwatch group"; return 1; }
    [ "$(in_root systemctl is-enabled connwatchd 2>&1)" = disabled ] ||
        { WHY="enabled against a 'disable *' preset: $(in_root systemctl is-enabled connwatchd 2>&1)"; return 1; }
}
check "rpm -i: every file lands, rpm -V is clean, the group is made, presets are followed" case_install

case_upgrade() {
    local out next
    out=$(cpack --config "$BUILD/CPackConfig.cmake" -G RPM -D CPACK_RPM_PACKAGE_RELEASE=2 \
        -B "$WORK/next" 2>&1) || { WHY="cpack (release 2): $(tail -3 <<<"$out")"; return 1; }
    next=$(echo "$WORK"/next/connwatch-*-2.*.rpm)
    [ -f "$next" ] || { WHY="no release-2 rpm"; return 1; }
    in_root systemctl enable connwatchd >/dev/null 2>&1 || { WHY="systemctl enable"; return 1; }
    echo "threshold = 5" >>"$ROOT/etc/connwatch/connwatchd.conf"
    mkdir -p "$ROOT/run/connwatch" # what the service has while it runs
    out=$(rpm --root "$ROOT" -U --nodeps "$next" 2>&1) || { WHY="rpm -U: $out"; return 1; }
    [ "$(rpm --root "$ROOT" -q --qf '%{RELEASE}' connwatch)" = 2 ] || { WHY="not release 2"; return 1; }
    grep -q '^threshold = 5$' "$ROOT/etc/connwatch/connwatchd.conf" || { WHY="the edited configuration was replaced"; return 1; }
    [ "$(in_root systemctl is-enabled connwatchd 2>&1)" = enabled ] || { WHY="disabled by the upgrade"; return 1; }
    [ -d "$ROOT/run/connwatch" ] || { WHY="the upgrade removed /run/connwatch (erase-only work)"; return 1; }
}
check "rpm -U to the next release keeps the edited configuration, the enablement, the runtime directory" case_upgrade

case_erase() {
    local out
    echo "threshold = 7" >>"$ROOT/etc/connwatch/connwatchd.conf"
    out=$(rpm --root "$ROOT" -e connwatch 2>&1) || { WHY="rpm -e: $out"; return 1; }
    grep -q '^threshold = 7$' "$ROOT/etc/connwatch/connwatchd.conf.rpmsave" 2>/dev/null ||
        { WHY="the edited configuration was not kept as .rpmsave"; return 1; }
    [ ! -e "$ROOT/usr/sbin/connwatchd" ] && [ ! -e "$ROOT/usr/lib/systemd/system/connwatchd.service" ] ||
        { WHY="files left"; return 1; }
    [ ! -e "$ROOT/run/connwatch" ] || { WHY="/run/connwatch left"; return 1; }
    [ "$(in_root systemctl is-enabled connwatchd 2>&1)" != enabled ] || { WHY="still enabled"; return 1; }
    in_root getent group connwatch >/dev/null || { WHY="the group was removed (kept by design)"; return 1; }
}
check "rpm -e keeps the edited configuration as .rpmsave and removes the rest but the group" case_erase

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
