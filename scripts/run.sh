#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine and runs the daemon in the foreground (as root).
# Extra arguments go to `mdevmon run`, e.g. scripts/run.sh --web.listen-address=127.0.0.1:9850
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"
scripts/deps.sh
swift build -c release --product mdevmon 2>&1 | tail -n 3
exec .build/release/mdevmon run "$@"
