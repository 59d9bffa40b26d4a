#!/usr/bin/env bash
# The issue's 1 s latency target as a benchmark, apart from CI (issue 23). run.sh's verdict asserts 3x the
# target (guest/lib.sh: BOUND_MS), so a slower or loaded machine does not fail a healthy daemon; this
# checks the figures of a finished run against the target itself. It reads the E2E-LATENCY lines run.sh
# gathered from the guests' results (logs/<run>/latency.txt, "<flavour> <scenario> total=<ms>
# libvirt=<+ms|-ms|-> mdevmon=<ms|-> target=<ms> <what>"), prints a table per flavour and exits 1 when any
# figure exceeds the target. The figure is mdevmon's share after libvirt's own event where that is known,
# else the total: mdevmon cannot show a change libvirt has not announced (the rule CI applies to its bound).
# Boots nothing, needs no root.
#
# Usage: Tests/e2e/latency-report.sh [--brief] [--target MS] [RUN_LOGS | latency.txt]
#   RUN_LOGS     a run's folder, .e2e-cache/logs/<run> (default: .e2e-cache/logs/latest)
#   --target MS  check against MS instead of the target each line carries (lib.sh's TARGET_MS, 1000)
#   --brief      one line per flavour, no table (what run.sh prints after its summary)
# Exit: 0 every figure within the target, 1 some figure over it, 2 no figures or a usage error.
set -euo pipefail
e2e=$(cd "$(dirname "$0")" && pwd)
brief=0 target="" src=""
while (($#)); do
  case "$1" in
    --brief) brief=1; shift ;;
    --target) [[ ${2:-} =~ ^[0-9]+$ ]] || { echo "latency-report.sh: --target takes ms, not '${2:-}'" >&2; exit 2; }
              target=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "latency-report.sh: unknown argument $1" >&2; exit 2 ;;
    *) src=$1; shift ;;
  esac
done
src=${src:-$e2e/../../.e2e-cache/logs/latest}
[ -d "$src" ] && src=$src/latency.txt
[ -s "$src" ] || { echo "latency-report.sh: no latency figures in $src (run Tests/e2e/run.sh first)" >&2; exit 2; }

flavours=()
declare -A table=() count=() over=() max=() worst=() tgt=()
while read -r f scenario total libvirt mdevmon tg what; do
  total=${total#total=} libvirt=${libvirt#libvirt=} mdevmon=${mdevmon#mdevmon=} tg=${tg#target=}
  [[ $total =~ ^[0-9]+$ && $tg =~ ^[0-9]+$ && $mdevmon =~ ^(-|-?[0-9]+)$ ]] || continue
  t=${target:-$tg}
  if [ "$mdevmon" = - ]; then figure=$total; else figure=$mdevmon; fi
  [ -n "${count[$f]:-}" ] || { flavours+=("$f"); count[$f]=0 over[$f]=0; }
  count[$f]=$((count[$f] + 1)) tgt[$f]=$t
  verdict=ok
  if ((figure > t)); then verdict=OVER over[$f]=$((over[$f] + 1)); fi
  if [ -z "${max[$f]:-}" ] || ((figure > max[$f])); then max[$f]=$figure worst[$f]="$scenario: $what"; fi
  printf -v row '%-4s %-15s %7s %8s %8s  %s' "$verdict" "$scenario" "$total" "$libvirt" "$mdevmon" "$what"
  table[$f]+=$row$'\n'
done < "$src"
((${#flavours[@]})) || { echo "latency-report.sh: no E2E-LATENCY figures in $src" >&2; exit 2; }

rc=0
for f in "${flavours[@]}"; do
  if ((!brief)); then
    echo "$f: latencies in ms after the step (figure: mdevmon's share after libvirt's event where known, else the total; target ${tgt[$f]} ms)"
    printf '%-4s %-15s %7s %8s %8s  %s\n' "" scenario total libvirt mdevmon what
    printf '%s' "${table[$f]}"
  fi
  echo "$f latency: ${count[$f]} figures, ${over[$f]} over the ${tgt[$f]} ms target; highest ${max[$f]} ms (${worst[$f]})"
  ((over[$f] == 0)) || rc=1
  ((brief)) || echo
done
exit $rc
