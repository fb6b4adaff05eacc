# SPDX-License-Identifier: GPL-2.0-only
# connwatch as a container image: connwatchd watching the HOST's interfaces.
# docs/CONTAINER.md explains how to run it (host network, capabilities, bpffs,
# volumes, the control socket, metrics) and what that gives away.
#
#   podman build -t connwatch .          (or docker build; BuildKit is not needed)
#   podman build --build-arg BASE=localhost/my-bookworm -t connwatch .
#
# Two stages: `build` has the compilers and headers and makes the .deb (the same
# package `cpack` makes outside a container); the runtime stage installs only that
# .deb, so it gets exactly the package's computed dependencies and nothing else.
# tests/podman/podman_test.sh builds this file offline from a debootstrap base.

# Any Debian 12 (bookworm) image with apt sources that reach Debian's archive.
ARG BASE=docker.io/library/debian:bookworm-slim

# ---- build stage ------------------------------------------------------------------
FROM ${BASE} AS build
ENV DEBIAN_FRONTEND=noninteractive
# The Makefile's DEPS minus the test tools, plus what `cpack -G DEB` runs: file
# (CPack checks for it before running dpkg-shlibdeps), dpkg-dev (dpkg-shlibdeps,
# in build-essential), binutils' strip. This layer depends on nothing from the
# source tree, so an unchanged list is reused from the build cache.
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends \
        build-essential cmake pkg-config clang llvm libbpf-dev bpftool libelf-dev \
        zlib1g-dev libsystemd-dev libcurl4-openssl-dev libcli11-dev nlohmann-json3-dev prometheus-cpp-dev \
        file gzip \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# .dockerignore keeps build trees, .git, tests/, bench/ and docs/ out, so editing
# them does not invalidate this layer.
COPY . .
# Only the .deb: the package target also makes an .rpm, which would need rpmbuild.
RUN cmake -S /src -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DBUILD_TESTING=OFF -DCONNWATCH_BUILD_BENCH=OFF \
 && cmake --build /build -j "$(nproc)" \
 && cd /build && cpack -G DEB \
 && mkdir /out && cp /build/connwatch_*_*.deb /out/

# ---- runtime stage ----------------------------------------------------------------
FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/ /tmp/connwatch-deb/
# apt resolves the package's Depends (libbpf1, libprometheus-cpp-pull1.0,
# libsystemd0, ...). The postinst creates the group `connwatch`; with no systemd
# in the image it starts nothing.
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends /tmp/connwatch-deb/connwatch_*.deb \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/connwatch-deb

# /var/lib/connwatch: manual blocks and allow entries (state.json), kept across
# container restarts when it is a volume. The configuration, /etc/connwatch, is the
# package's commented default; bind-mount your own. The pinned blocklists live in
# the host's bpffs, which must be mounted at /sys/fs/bpf (docs/CONTAINER.md).
VOLUME ["/var/lib/connwatch"]

LABEL org.opencontainers.image.title="connwatch" \
      org.opencontainers.image.description="XDP connection tracker, port-scan detector and blocker" \
      org.opencontainers.image.licenses="GPL-2.0-only"

# connwatchd is PID 1 (exec form, no shell): SIGTERM from `podman stop` reaches it
# directly, and it detaches from every interface and exits 0. Events go to stdout
# (`podman logs`); there is no journald in the image. Arguments given to
# `podman run IMAGE ...` are appended: --interface eth0 --threshold 5 ...
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/sbin/connwatchd", "--log-target", "stdout"]
CMD []
