#!/usr/bin/env bash
# Soak under faults: `authpulse run` against the AWS emulator's Logs Insights for a
# while, with seeded random faults (throttled, failed, timed-out and hung queries,
# unavailable results, slow answers and queries, a webhook answering 5xx or hanging,
# SIGKILL and restart, SIGHUP with good and bad configs) and incidents in the traffic;
# then every notification the backtest of the same events derives must have been
# delivered exactly once, RSS must have stayed bounded, and nothing may have panicked.
# The test is tests/integration/soak/; the suite runs it for 120 s.
#
#   bash scripts/soak.sh --minutes 30            # a random seed, printed
#   bash scripts/soak.sh --minutes 5 --seed 42   # replay a schedule
#
# Starts the emulator itself (and stops it), builds the debug test binary, prints the
# report and keeps the output in target/soak.log.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
minutes=30
seed=""
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes=${2:?--minutes needs a number}; shift 2 ;;
    --seed) seed=${2:?--seed needs a number}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$minutes" in ''|*[!0-9]*) echo "--minutes must be a whole number, got $minutes" >&2; exit 2 ;; esac
case "$seed" in *[!0-9]*) echo "--seed must be a whole number, got $seed" >&2; exit 2 ;; esac
[ "$minutes" -ge 1 ] || { echo "--minutes must be at least 1" >&2; exit 2; }

mkdir -p target
# shellcheck source=lib/emulator.sh
source scripts/lib/emulator.sh
ensure_venv
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
start_emulator target/soak-emulator.log

export AUTHPULSE_SOAK_SECONDS=$((minutes * 60))
if [ -n "$seed" ]; then export AUTHPULSE_SOAK_SEED="$seed"; fi
echo "soak: $minutes min of faults (plus about 2 min to set up and settle)"
cargo test --features aws-emulator --test integration -- --exact \
  soak::soak_under_faults_every_notice_of_the_backtest_exactly_once --nocapture 2>&1 \
  | tee target/soak.log
