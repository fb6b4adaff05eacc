// SPDX-License-Identifier: GPL-2.0-only
// Linked into connwatchd, connwatchctl and the unit tests of the sanitizer build
// (-DCONNWATCH_SANITIZE=ON) only. The runtimes call these at start-up, so the
// options hold however a binary is run — by ctest, by an integration script that
// starts connwatchd with its own environment, by hand; ASAN_OPTIONS and
// UBSAN_OPTIONS given in the environment still add to and override them
// (tests/sanitize/run.sh adds log_path).
//
// Every report ends the process with a non-zero status: ASan's by default, UBSan's
// because everything is built with -fno-sanitize-recover=all, LeakSanitizer's at
// exit through ASan's exitcode. A test that checks the exit status, or
// tests/sanitize/run.sh, then fails.

extern "C" {

// detect_stack_use_after_return: off by default because it costs memory, which
// the tests can spare. check_initialization_order: the static tables of
// stats.cpp and the defaults are initialised across files.
const char* __asan_default_options()
{
    return "detect_stack_use_after_return=1:check_initialization_order=1:"
           "strict_init_order=1:detect_leaks=1:halt_on_error=1";
}

// Without a stack a UBSan report says where, but not how it got there.
const char* __ubsan_default_options()
{
    return "print_stacktrace=1:halt_on_error=1";
}

// LeakSanitizer suppressions: none. connwatchd frees everything on its clean exit
// (SIGTERM); a leak found there is a bug to fix, not to hide. Should one have to
// be suppressed (say, inside libbpf or prometheus-cpp), it goes here, one line
// each with the reason, e.g. "leak:some_libbpf_function".
const char* __lsan_default_suppressions()
{
    return "";
}

} // extern "C"
