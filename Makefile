# SPDX-License-Identifier: GPL-2.0-only
# The commands people (and CI, through .ci/run) use. The build itself is CMake's,
# in $(BUILD); every target here is phony and safe to repeat.
#
#   make deps            install what is missing (Debian 12; apt-get, root)
#   make [build]         configure if needed, then build
#   make test            deps, build, package, every test layer: unit, bpf,
#                        integration, packages and containers (root); then
#                        test-sanitizers and test-fuzz
#   make test-unit       build, then only the tests that need no privileges
#   make test-sanitizers connwatchd, connwatchctl and the unit tests built with ASan
#                        and UBSan (clang) in $(BUILD_ASAN); the unit and integration
#                        tests run against them (root)
#   make test-fuzz       the libFuzzer targets (clang) built in $(BUILD_FUZZ), each run
#                        over its seed corpus for a fixed number of inputs (~1 min)
#   make fuzz [FUZZ_SECONDS=600] [FUZZ_TARGETS='config state']
#                        each target for FUZZ_SECONDS (default 300), keeping what it
#                        learns in $(BUILD_FUZZ)/corpus (docs/FUZZING.md)
#   make run [IFACE=eth1]  deps, build, run connwatchd in the foreground
#   make package         the .deb and the .rpm (CPack), in $(BUILD)
#   make package-test    package, then only the package tests (lint, apt in a booted
#                        Debian container, rpm --root, the Dockerfile under podman)
#   make podman-full-test  the podman test with both Dockerfile stages built from
#                        source (the other targets take the .deb already packaged)
#   make demo            deps, build, a narrated scan-and-block on throwaway namespaces
#   make bench           the packet-rate benchmark, every row (root, ~30-60 min on a
#                        shared 2-CPU VM; bench/README.md): results and plots in
#                        bench/results/. Not part of make test.
#   make clean           remove $(BUILD), $(BUILD_ASAN) and $(BUILD_FUZZ)

BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
# The sanitizer and fuzz builds: clang, each in a directory of its own, and only
# the targets their tests need, so they add little to CI.
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 300
FUZZ_TARGETS ?= config request address state crowdsec
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# For ctest, e.g. CTEST_ARGS='-L bpf' or CTEST_ARGS='-R netns'.
CTEST_ARGS ?=

# Debian 12 packages: to build (libcurl4-openssl-dev: the CrowdSec client), then to
# test (nmap, iproute2, python3: the integration tests; curl, util-linux (nsenter):
# the CrowdSec test, which fetches crowdsec itself with apt-get download; mandoc:
# the man page check; systemd: journalctl for the catalog check; debootstrap,
# systemd-container: the test under real systemd; prometheus: promtool, for the
# metrics checks; rpm: CPack's .rpm; lintian, rpmlint:
# the package checks; podman, runc, containernetworking-plugins: the container image
# test — runc named because podman would otherwise pull in crun, which refuses this
# machine's hybrid cgroups; libclang-rt-14-dev: libFuzzer and the sanitizer runtimes
# for clang, only recommended by clang, which apt skips here).
DEPS := build-essential cmake pkg-config clang llvm libclang-rt-14-dev libbpf-dev bpftool libelf-dev \
        zlib1g-dev libsystemd-dev libcurl4-openssl-dev libcli11-dev nlohmann-json3-dev prometheus-cpp-dev \
        libgtest-dev googletest nmap iproute2 python3 curl util-linux mandoc systemd \
        debootstrap systemd-container prometheus rpm lintian rpmlint \
        podman runc containernetworking-plugins

.PHONY: all build deps package test test-unit docs-check package-test run demo clean require-root \
        build-asan build-fuzz test-sanitizers test-fuzz fuzz podman-full-test bench
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

# --timeout: the default for a test that sets none (the integration tests set 300 s).
# The main build's tests first; the sanitizer and fuzz layers run even when one of
# those failed (so one run says everything), and the target fails if any did.
# CTEST_ARGS selects among the main build's tests only: `-R netns` would leave the
# fuzz layer without a test.
#
# $(JOBS) tests at once, in every layer: the integration and package tests mostly
# wait (on namespaces, nmap's timing, containers, Debian's archive), and each owns
# its names, nets, pins and ports and takes a lock of its own
# (tests/integration/CMakeLists.txt), so two of them, or one beside the unit and
# bpf tests, do not meet. The container tests take turns among themselves
# (RESOURCE_LOCK: each boots or builds a whole system). COST starts the long
# ones first.
#
# The sanitizer and fuzz builds compile (niced) while the main build's tests run:
# those mostly wait on namespaces, containers and the network, and the two builds
# are a third of CI's time when they run after them. Their output goes to
# $(BUILD)/side-builds.log, shown when they fail; the layers then build again in
# the foreground (a no-op when the side build succeeded).
#
# The fuzz layer runs beside the sanitizer layer, one target at a time (JOBS=1):
# its targets are CPU-bound and bounded by a number of inputs, not by time, while
# the sanitizer layer mostly waits on its integration tests. Its output is kept
# in $(BUILD)/fuzz-layer.log and shown whole after the sanitizer layer's.
test: require-root deps build package
	@rc=0; t=$$(date +%s); \
	( nice -n 10 $(MAKE) --no-print-directory build-asan build-fuzz >"$(BUILD)/side-builds.log" 2>&1; \
	  echo $$? >"$(BUILD)/side-builds.rc" ) & side=$$!; \
	ctest --test-dir "$(BUILD)" --output-on-failure --no-tests=error --timeout 600 -j $(JOBS) \
	  $(CTEST_ARGS) || rc=1; \
	echo "test: the main build's tests took $$(($$(date +%s) - t)) s"; t=$$(date +%s); \
	wait $$side; \
	echo "test: the sanitizer and fuzz builds took $$(($$(date +%s) - t)) s more"; t=$$(date +%s); \
	if [ "$$(cat "$(BUILD)/side-builds.rc")" != 0 ]; then \
	  echo "test: the sanitizer/fuzz build failed; its log's end ($(BUILD)/side-builds.log):"; \
	  tail -40 "$(BUILD)/side-builds.log"; \
	fi; \
	( $(MAKE) --no-print-directory test-fuzz CTEST_ARGS= JOBS=1 >"$(BUILD)/fuzz-layer.log" 2>&1; \
	  echo $$? >"$(BUILD)/fuzz-layer.rc" ) & fuzz=$$!; \
	$(MAKE) --no-print-directory test-sanitizers CTEST_ARGS= || rc=1; \
	echo "test: the sanitizer layer took $$(($$(date +%s) - t)) s"; \
	wait $$fuzz; \
	cat "$(BUILD)/fuzz-layer.log"; \
	echo "test: the fuzz layer (beside it) ended $$(($$(date +%s) - t)) s after it began"; \
	[ "$$(cat "$(BUILD)/fuzz-layer.rc")" = 0 ] || rc=1; \
	exit $$rc

# clang for both: the main build is g++, so these also keep the code compiling
# with clang. Hardening is off in both (CMakeLists.txt says why). The sanitizer
# build is Debug (-O0, asserts on): it compiles in half the time of -O2 with the
# sanitizers, and its tests wait on the network, not on the CPU.
build-asan:
	@if [ ! -f "$(BUILD_ASAN)/CMakeCache.txt" ]; then \
	  CC=clang CXX=clang++ cmake -S "$(CURDIR)" -B "$(BUILD_ASAN)" -DCMAKE_BUILD_TYPE=Debug \
	    -DCONNWATCH_SANITIZE=ON -DCONNWATCH_BUILD_BENCH=OFF; \
	fi
	cmake --build "$(BUILD_ASAN)" -j $(JOBS) --target connwatchd connwatchctl unit_tests

build-fuzz:
	@if [ ! -f "$(BUILD_FUZZ)/CMakeCache.txt" ]; then \
	  CC=clang CXX=clang++ cmake -S "$(CURDIR)" -B "$(BUILD_FUZZ)" -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	    -DCONNWATCH_FUZZ=ON; \
	fi
	cmake --build "$(BUILD_FUZZ)" -j $(JOBS)

# Unit and integration tests only: the bpf tests would only instrument the test
# program around the kernel, and the package tests install the main build's.
# $(JOBS) at once, as in the main build's run (see test). The fuzz targets are one
# process each, CPU-bound: one a core.
test-sanitizers: require-root build-asan
	ctest --test-dir "$(BUILD_ASAN)" --output-on-failure --no-tests=error --timeout 600 \
	  -j $(JOBS) -L 'unit|integration' $(CTEST_ARGS)

test-fuzz: build-fuzz
	ctest --test-dir "$(BUILD_FUZZ)" --output-on-failure --no-tests=error -j $(JOBS) -L fuzz $(CTEST_ARGS)

fuzz: build-fuzz
	@rc=0; for t in $(FUZZ_TARGETS); do \
	  bash tests/fuzz/run_fuzzer.sh "$(BUILD_FUZZ)/tests/fuzz/fuzz_$$t" tests/fuzz/corpus/$$t \
	    --seconds $(FUZZ_SECONDS) --keep "$(BUILD_FUZZ)/corpus/$$t" \
	    --artifacts "$(BUILD_FUZZ)/artifacts" || rc=1; \
	done; exit $$rc

package-test: require-root deps build package
	ctest --test-dir "$(BUILD)" --output-on-failure --no-tests=error --timeout 900 -L package $(CTEST_ARGS)

podman-full-test: require-root deps build package
	CW_PODMAN_FULL_BUILD=1 ctest --test-dir "$(BUILD)" --output-on-failure --no-tests=error --timeout 900 -R '^podman_image$$'

# The commands README.md and docs/*.md show, run or claimed by a test (tests/docs_check.py).
# It needs the two binaries only (their --help, --check-config, a throwaway daemon).
docs-check:
	@if [ ! -f "$(BUILD)/CMakeCache.txt" ]; then \
	  cmake -S "$(CURDIR)" -B "$(BUILD)" -DCMAKE_BUILD_TYPE=$(BUILD_TYPE); \
	fi
	cmake --build "$(BUILD)" -j $(JOBS) --target connwatchd connwatchctl
	ctest --test-dir "$(BUILD)" --output-on-failure --no-tests=error -L docs $(CTEST_ARGS)

test-unit: build
	ctest --test-dir "$(BUILD)" --output-on-failure --no-tests=error -L unit $(CTEST_ARGS)

# Attaches to a real interface: for people, never run by the tests.
run: deps build
	"$(BUILD)/connwatchd" --log-target stdout $(if $(IFACE),--interface $(IFACE))

demo: require-root deps build
	bash tests/integration/demo.sh "$(BUILD)/connwatchd"

bench: require-root
	bash bench/bench.sh "$(BUILD)"

clean:
	@for d in "$(BUILD)" "$(BUILD_ASAN)" "$(BUILD_FUZZ)"; do \
	  if [ -n "$$d" ] && [ "$$d" != / ] && [ "$$d" != . ]; then \
	    echo "rm -rf $$d"; rm -rf "$$d"; \
	  fi; \
	done
