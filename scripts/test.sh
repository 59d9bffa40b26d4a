#!/usr/bin/env bash
# The test command: installs what is missing, starts libvirtd and journald, builds, and runs every
# test against the real stack. Tests that kill libvirtd run afterwards in their own process.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"

scripts/deps.sh

swift build --build-tests 2>&1 | tail -n 3
# Everything that needs libvirtd up, in parallel.
swift test --skip-build --skip LibvirtRestartTests
# Kills and restarts libvirtd: alone, in its own process.
MDEVMON_DISRUPTIVE=1 swift test --skip-build --filter LibvirtRestartTests
