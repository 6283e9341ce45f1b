#!/usr/bin/env bash
# Idle memory of the standalone agent with two small pods (examples/pods hello and counter), under the
# runtime settings given as variants, one after the other in one run (issue #18 item 6).
# Usage: bench/idle-rss.sh [settle-seconds]   (build first: dotnet build -c Release src/Host)
# Prints, per variant, /proc/PID/status (VmRSS, RssAnon, RssFile, RssShmem) and smaps_rollup
# (Pss, Private_Dirty, Shared_Clean) after the agent has settled.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
agent="${AGENT:-$root/src/Host/bin/Release/net10.0/krustlet.dll}"   # AGENT=/path/krustlet.dll measures another build (e.g. a ReadyToRun publish)
settle="${1:-30}"
[ -f "$agent" ] || { echo "build first: dotnet build -c Release $root/src/Host" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/pods"
cp "$root/examples/pods/hello.yaml" "$root/examples/pods/counter.yaml" "$work/pods/"

measure() {
  local label="$1"; shift
  rm -rf "$work/data"
  env "$@" dotnet "$agent" standalone "$work/pods" --images "$root/examples/images" --data-dir "$work/data" --page-port -1 >"$work/$label.log" 2>&1 &
  local pid=$!
  sleep "$settle"
  local status rollup
  status=$(awk '/^(VmRSS|RssAnon|RssFile|RssShmem):/ {printf "%s %.1f MiB  ", $1, $2/1024}' "/proc/$pid/status")
  rollup=$(awk '/^(Pss|Private_Dirty|Shared_Clean):/ {printf "%s %.1f MiB  ", $1, $2/1024}' "/proc/$pid/smaps_rollup")
  printf '%-28s %s%s\n' "$label" "$status" "$rollup"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

measure "defaults"
[ -n "${ONLY_DEFAULTS:-}" ] && exit 0
measure "W^X off" DOTNET_EnableWriteXorExecute=0
measure "gen0 budget 4 MiB" DOTNET_GCgen0size=0x400000
measure "GC conserve memory 9" DOTNET_GCConserveMemory=9
measure "tiered PGO off" DOTNET_TieredPGO=0
measure "tiered compilation off" DOTNET_TieredCompilation=0
measure "server GC" DOTNET_gcServer=1
measure "gen0 4 MiB + PGO off" DOTNET_GCgen0size=0x400000 DOTNET_TieredPGO=0
