#!/usr/bin/env bash
# Soak: SIGKILLs and restarts libvirtd ROUNDS times (default 100) under a live Monitor and checks after
# every round that the index equals a fresh listing and libvirtd holds exactly one client of the test
# process; prints fds and RSS across the rounds. Kills libvirtd: never run it beside other tests.
# Usage: sudo scripts/soak.sh [ROUNDS]   (8-12 s a round here: libvirtd's restart dominates)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"
rounds=${1:-100}
# A soak stopped mid-round (Ctrl-C, a timeout) must not leave libvirtd dead for whatever runs next.
trap 'pgrep -x libvirtd >/dev/null || libvirtd -d' EXIT
scripts/deps.sh
swift build --build-tests 2>&1 | grep -E "error:|warning:" || true
MDEVMON_DISRUPTIVE=1 MDEVMON_SOAK_ROUNDS=$rounds \
  swift test --skip-build --filter 'LibvirtRestartTests/reconnectsAndResyncsAcrossKills' 2>&1 |
  grep --line-buffered -E "restart soak|passed|failed|Expectation|recorded an issue"
