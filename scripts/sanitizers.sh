#!/usr/bin/env bash
# The suites built with ThreadSanitizer and AddressSanitizer (issue 15 item 4).
#
#   scripts/sanitizers.sh [thread|address|all]     default: all
#
# thread:  RedlineCore, RedlineDaemon and the end-to-end suites (without the UnderLoad, HIL and
#          red-team suites, which the plain run covers), built with --sanitize=thread in
#          .build-tsan. The daemons and simulators the end-to-end tests spawn are the same
#          TSan builds; a report in a child's stderr fails the test that stopped it
#          (Tests/RedlineTestSupport/Processes.swift, SanitizerReports).
# address: the whole suite but UnderLoad, built with --sanitize=address in .build-asan.
#
# Suppressions: Tests/Sanitizers/tsan.supp, each entry with its reason.
# What TSan can tell today: nothing yet about our own locking. Synchronization.Mutex locks with
# futexes that TSan does not intercept on Linux (Tests/Sanitizers/mutex-false-positive.swift is
# a correct 15-line program that TSan reports), and every shared state of the daemon and the
# simulator is behind one. Measured 2026-12-01: 199 tests, 185 reports, every one of them between
# two critical sections of one Mutex (AuditLog.state, DedicatedExecutor, the simulator's plant).
# The fix is a TSan-visible lock (pthread_mutex) behind the same API in sanitizer builds; until
# then the thread run shows races outside Mutexes only, and fails on every report.
# Not part of the default scripts/test.sh run: the two builds and runs take about 25 minutes on
# the 2-core CI machine, beyond the 60-minute budget beside the VM rigs. SANITIZERS=1 makes
# scripts/test.sh run this script too.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
export SWIFT_BACKTRACE=enable=no   # the backtracer hangs after a sanitizer report
export TSAN_OPTIONS="suppressions=$PWD/Tests/Sanitizers/tsan.supp ${TSAN_OPTIONS:-}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"   # one-off allocations of Foundation at exit are not findings
what=${1:-all}
rc=0

run() {   # $1 = thread|address, $2 = scratch, then swift test arguments
    local san=$1 scratch=$2; shift 2
    local t0=$SECONDS
    echo "sanitizers: building with --sanitize=$san in $scratch"
    mkdir -p "$scratch"
    swift build --sanitize="$san" --build-tests --scratch-path "$scratch" >"$scratch/sanitizer-build.log" 2>&1 \
        || { tail -30 "$scratch/sanitizer-build.log"; return 1; }
    echo "sanitizers: build $((SECONDS - t0)) s; testing"
    local t1=$SECONDS r=0
    swift test --sanitize="$san" --scratch-path "$scratch" --skip-build "$@" >"$scratch/sanitizer-test.log" 2>&1 || r=$?
    grep -E '^✘|Test run with' "$scratch/sanitizer-test.log" | tail -15
    local reports
    reports=$(grep -cE 'WARNING: ThreadSanitizer:|ERROR: AddressSanitizer:|ERROR: LeakSanitizer:' "$scratch/sanitizer-test.log" || true)
    echo "sanitizers: $san: tests $((SECONDS - t1)) s, exit $r, $reports sanitizer report(s) (full log: $scratch/sanitizer-test.log)"
    return $r
}

case "$what" in
    thread|all)
        run thread .build-tsan --filter 'RedlineCoreTests|RedlineDaemonTests|EndToEndTests' --skip 'UnderLoad|HIL|RedTeam' || rc=1 ;;&
    address|all)
        run address .build-asan --skip UnderLoad || rc=1 ;;
    thread) ;;
    *) echo "usage: scripts/sanitizers.sh [thread|address|all]" >&2; exit 2 ;;
esac
exit $rc
