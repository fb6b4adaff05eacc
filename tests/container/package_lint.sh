#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The packages, checked without installing them: lintian finds no error and no
# warning in the .deb, rpmlint no error in the .rpm (with the settings and the one
# filter in packaging/rpm, each explained there), and the two packages agree: the
# same files, the same configuration file, and requirements that name the same
# shared libraries (dpkg-shlibdeps' packages against rpmbuild's sonames).
#
# Usage: package_lint.sh BUILD_DIR SOURCE_DIR   (after `make package`; ctest label "package")
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/preamble.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/preamble.sh"

if [ $# -ne 2 ]; then cw_usage "BUILD_DIR SOURCE_DIR"; fi
BUILD=$(realpath "$1")
SRC=$(realpath "$2")
cw_require_tools lintian rpmlint rpm dpkg-deb
DEB=$(cw_built_package "$BUILD" 'connwatch_*.deb' 2>&1) || { echo "$DEB"; exit 1; }
RPM=$(cw_built_package "$BUILD" 'connwatch-*.rpm' 2>&1) || { echo "$RPM"; exit 1; }

case_lintian() {
    local out
    # lintian's exit status is 0 for warnings; the tags are what count. (It warns
    # that it runs as root; that line is not a tag.)
    out=$(lintian --fail-on none "$DEB" 2>&1 | grep -E '^[EW]: ') || true
    [ -z "$out" ] || { WHY=$'\n'"$out"; return 1; }
}
check "lintian: no error, no warning on the .deb" case_lintian

case_rpmlint() {
    local out
    out=$(rpmlint -c "$SRC/packaging/rpm/rpmlint.toml" -r "$SRC/packaging/rpm/connwatch.rpmlintrc" "$RPM" 2>&1) || true
    grep -qE '[0-9]+ packages and [0-9]+ specfiles checked; 0 errors' <<<"$out" ||
        { WHY=$'\n'"$(grep -E ': [EW]: |errors' <<<"$out")"; return 1; }
    grep -E ': W: ' <<<"$out" | sed 's/^/  (accepted, see docs\/PACKAGING.md) /' || true
}
check "rpmlint: no error on the .rpm" case_rpmlint

case_same_files() {
    local deb_files rpm_files
    deb_files=$(dpkg-deb --fsys-tarfile "$DEB" | tar -t | grep -v '/$' | sed 's|^\./|/|' | sort)
    rpm_files=$(rpm -qpl "$RPM" 2>/dev/null | while read -r f; do
        # rpm lists directories it owns too; compare regular files.
        case $f in /etc/connwatch | /usr/share/doc/connwatch) ;; *) echo "$f" ;; esac
    done | sort)
    [ "$deb_files" = "$rpm_files" ] || { WHY=$'\n'"$(diff <(echo "$deb_files") <(echo "$rpm_files"))"; return 1; }
    [ "$(dpkg-deb -I "$DEB" conffiles)" = /etc/connwatch/connwatchd.conf ] || { WHY="deb conffiles"; return 1; }
    [ "$(rpm -qpc "$RPM" 2>/dev/null)" = /etc/connwatch/connwatchd.conf ] || { WHY="rpm %config files"; return 1; }
}
check "the .deb and the .rpm ship the same files and the same configuration file" case_same_files

case_cited_docs() {
    # Every document a man page cites under /usr/share/doc/connwatch/ is in the
    # package (the .rpm ships the same files: case_same_files).
    local files cited doc missing=""
    files=$(dpkg-deb --fsys-tarfile "$DEB" | tar -t | sed 's|^\./|/|')
    cited=$(grep -ohE '/usr/share/doc/connwatch/[A-Za-z_]+\.md' "$SRC"/man/*.[0-9] | sort -u)
    [ -n "$cited" ] || { WHY="no man page cites a document (the pattern is out of date?)"; return 1; }
    for doc in $cited; do
        grep -qx "$doc" <<<"$files" || missing+=" $doc"
    done
    [ -z "$missing" ] || { WHY="cited by a man page, not in the .deb:$missing"; return 1; }
}
check "every document the man pages cite is installed in /usr/share/doc/connwatch" case_cited_docs

case_same_requirements() {
    # rpmbuild names sonames (libbpf.so.1()(64bit)); dpkg-shlibdeps names Debian
    # packages. The package of this machine that holds each soname must be among
    # the .deb's Depends, and every library package there must hold one of them.
    local sonames depends so pkg want=""
    sonames=$(rpm -qpR "$RPM" 2>/dev/null | sed -nE 's/^(lib[^()]+\.so[.0-9]*)\(\)\(64bit\)$/\1/p' | sort -u)
    depends=$(dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed -E 's/^ *//; s/ .*//' | sort -u)
    [ -n "$sonames" ] || { WHY="no soname requirements in the .rpm (AUTOREQ off?)"; return 1; }
    for so in $sonames; do
        pkg=$(dpkg -S "*/$so" 2>/dev/null | grep -v '^diversion' | head -1 | cut -d: -f1) ||
            { WHY="no package of this machine holds $so"; return 1; }
        [ -n "$pkg" ] || { WHY="no package of this machine holds $so"; return 1; }
        grep -qx "$pkg" <<<"$depends" || { WHY="the .rpm requires $so ($pkg), the .deb does not depend on $pkg"; return 1; }
        want+="$pkg"$'\n'
    done
    for pkg in $depends; do
        grep -qx "$pkg" <<<"$want" || { WHY="the .deb depends on $pkg, the .rpm requires none of its libraries"; return 1; }
    done
}
check "the .rpm's requirements name the same libraries as the .deb's Depends" case_same_requirements

case_versions() {
    local deb_v rpm_v
    deb_v=$(dpkg-deb -f "$DEB" Version)
    rpm_v=$(rpm -qp --qf '%{VERSION}' "$RPM" 2>/dev/null)
    [ "$deb_v" = "$rpm_v" ] || { WHY="deb $deb_v, rpm $rpm_v"; return 1; }
    grep -qE "^project\(connwatch VERSION $deb_v " "$SRC/CMakeLists.txt" || { WHY="not the project's version"; return 1; }
}
check "both carry the project's version" case_versions

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
