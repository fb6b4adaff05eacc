# SPDX-License-Identifier: GPL-2.0-only
# The commands people (and CI, through .ci/run) use. The build itself is CMake's,
# in $(BUILD); every target here is phony and safe to repeat.
#
#   make deps            install what is missing (Debian 12; apt-get, root)
#   make [build]         configure if needed, then build
#   make test            deps, build, package, every test layer: unit, bpf,
#                        integration, packages and containers (root)
#   make test-unit       build, then only the tests that need no privileges
#   make run [IFACE=eth1]  deps, build, run connwatchd in the foreground
#   make package         the .deb and the .rpm (CPack), in $(BUILD)
#   make package-test    package, then only the package tests (lint, apt in a booted
#                        Debian container, rpm --root, the Dockerfile under podman)
#   make demo            deps, build, a narrated scan-and-block on throwaway namespaces
#   make clean           remove $(BUILD)

BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# For ctest, e.g. CTEST_ARGS='-L bpf' or CTEST_ARGS='-R netns'.
CTEST_ARGS ?=

# Debian 12 packages: to build, then to test (nmap, iproute2, python3: the
# integration tests; mandoc: the man page check; systemd: journalctl for the
# catalog check; debootstrap, systemd-container: the test under real systemd;
# prometheus: promtool, for the metrics checks; rpm: CPack's .rpm; lintian, rpmlint:
# the package checks; podman, runc, containernetworking-plugins: the container image
# test — runc named because podman would otherwise pull in crun, which refuses this
# machine's hybrid cgroups).
DEPS := build-essential cmake pkg-config clang llvm libbpf-dev bpftool libelf-dev \
        zlib1g-dev libsystemd-dev libcli11-dev nlohmann-json3-dev prometheus-cpp-dev \
        libgtest-dev googletest nmap iproute2 python3 mandoc systemd \
        debootstrap systemd-container prometheus rpm lintian rpmlint \
        podman runc containernetworking-plugins

.PHONY: all build deps package test test-unit package-test run demo clean require-root
.DEFAULT_GOAL := build
# Prerequisites in the order written (deps before build before tests), whatever -j
# says; the build itself runs $(JOBS) jobs.
.NOTPARALLEL:

all: build

deps:
	@missing=""; \
	for p in $(DEPS); do \
	  dpkg-query -W -f='$${db:Status-Status}' "$$p" 2>/dev/null | grep -qx installed || \
	    missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then \
	  echo "deps: all $(words $(DEPS)) packages are installed"; exit 0; \
	fi; \
	if [ "$$(id -u)" -ne 0 ]; then \
	  echo "deps: missing:$$missing" >&2; \
	  echo "deps: run 'make deps' as root (it installs them with apt-get)" >&2; exit 1; \
	fi; \
	echo "deps: installing$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -q && apt-get install -y -q --no-install-recommends $$missing </dev/null

build:
	@if [ ! -f "$(BUILD)/CMakeCache.txt" ]; then \
	  cmake -S "$(CURDIR)" -B "$(BUILD)" -DCMAKE_BUILD_TYPE=$(BUILD_TYPE); \
	fi
	cmake --build "$(BUILD)" -j $(JOBS)

# cpack, through CMake's own target: builds first, then both packages.
package: build
	cmake --build "$(BUILD)" --target package

require-root:
	@if [ "$$(id -u)" -ne 0 ]; then \
	  echo "" >&2; \
	  echo "*** make $(MAKECMDGOALS): must run as root: it loads the XDP program into the kernel" >&2; \
	  echo "*** and creates network namespaces and veth pairs to attach it to." >&2; \
	  echo "*** Run 'sudo make $(MAKECMDGOALS)'.$(if $(filter test,$(MAKECMDGOALS)), ('make test-unit' runs the tests that need no root.))" >&2; \
	  echo "" >&2; \
	  exit 1; \
	fi

# --timeout: the default for a test that sets none (the integration test sets 300 s).
test: require-root deps build package
	ctest --test-dir "$(BUILD)" --output-on-failure --no-tests=error --timeout 600 $(CTEST_ARGS)

package-test: require-root deps build package
	ctest --test-dir "$(BUILD)" --output-on-failure --no-tests=error --timeout 900 -L package $(CTEST_ARGS)

test-unit: build
	ctest --test-dir "$(BUILD)" --output-on-failure --no-tests=error -L unit $(CTEST_ARGS)

# Attaches to a real interface: for people, never run by the tests.
run: deps build
	"$(BUILD)/connwatchd" --log-target stdout $(if $(IFACE),--interface $(IFACE))

demo: require-root deps build
	bash tests/integration/demo.sh "$(BUILD)/connwatchd"

clean:
	@if [ -n "$(BUILD)" ] && [ "$(BUILD)" != / ] && [ "$(BUILD)" != . ]; then \
	  echo "rm -rf $(BUILD)"; rm -rf "$(BUILD)"; \
	fi
