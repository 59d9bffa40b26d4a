#!/usr/bin/env bash
# The test command: installs what is missing, starts libvirtd and journald, builds, and runs every
# test against the real stack. Tests that kill libvirtd run afterwards in their own process.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"

scripts/deps.sh

# Show errors and warnings (the project builds without warnings), not the whole log.
if ! swift build --build-tests > .build-test.log 2>&1; then
  grep -E "error:|warning:" .build-test.log | sort -u | head -n 50
  tail -n 5 .build-test.log
  exit 1
fi
grep -E "^/.*(error|warning):" .build-test.log | sort -u | head -n 50 || true
# Unit tests, in parallel.
swift test --skip-build --skip IntegrationTests
# Integration tests against the real stack, one at a time: they block on virsh and daemons, and
# with 2 cores in parallel they starve Swift's cooperative pool and each other.
swift test --skip-build --no-parallel --filter IntegrationTests --skip 'LibvirtRestartTests|StuckLibvirtCallTests'
# Kill and restart libvirtd, or hold every mdevctl call: alone, one at a time, in their own process.
MDEVMON_DISRUPTIVE=1 swift test --skip-build --no-parallel --filter 'LibvirtRestartTests|StuckLibvirtCallTests'
# The proof on a real kernel (issues 10 and 17): qemu guests with the mtty mdev driver and the release
# mdevmon .deb, four boots each, for both flavours (Debian 12 and Debian 13, the same .deb).
# MDEVMON_SKIP_E2E=1 skips it (local iterations only; CI always runs it).
if [ "${MDEVMON_SKIP_E2E:-0}" = 1 ] && [ "${CI:-}" != true ]; then
  echo "test.sh: skipping Tests/e2e/run.sh (MDEVMON_SKIP_E2E=1)"
else
  Tests/e2e/run.sh
fi
