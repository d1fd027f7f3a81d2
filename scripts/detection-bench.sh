#!/usr/bin/env bash
# Detection quality on the simulator: for the easy and the hard setting, simulate several
# seeds of labelled Okta traffic, backtest each with the built-in rules, and score the
# alerts against the labels. Prints one Markdown table per setting and seed set (the
# README's "Detection quality" section) and keeps every file in $OUT for a closer look.
#
# Three seed sets, reported separately: the seeds the thresholds were tuned on (SEEDS),
# held-out seeds that were never looked at while tuning, only their summary (HELDOUT),
# and final seeds used for nothing but the report (FINAL: run them last, once; not 21-25,
# whose 21-23 make the golden alert files in tests/golden/). Seeds 31-35, 41-45, 51-55, 61-65,
# 71-75, 81-85, 91-95, 101-105, 111-115, 121-125, 131-135, 141-145, 151-155, 161-165, 171-175 and 181-185 were the final sets of earlier reports and are spent; 191-195 replaced them.
#
#   scripts/detection-bench.sh                    # seeds 1-5, 11-15 and 191-195, both settings
#   SETTINGS=hard FINAL="" scripts/detection-bench.sh   # while iterating: hard, two sets
#   SEEDS="1 2" HELDOUT="" FINAL="" USERS=5000 DAYS=21 scripts/detection-bench.sh
#   CONFIG=my.toml scripts/detection-bench.sh     # score your own rules instead
#
# By default the backtests use config/simulated-org.toml: the built-in rules with the
# simulated organisation's time zone, as its operator would set it.
#
# The four weeks start on Monday 19 October 2026, so the US and EU daylight saving
# changes (25 October, 1 November) fall inside them. Takes about 15 seconds per run on
# one core of the project's machine (release build), two runs at a time.
set -euo pipefail
cd "$(dirname "$0")/.."

SEEDS=${SEEDS:-"1 2 3 4 5"}
HELDOUT=${HELDOUT-"11 12 13 14 15"}
FINAL=${FINAL-"191 192 193 194 195"}
SETTINGS=${SETTINGS:-"easy hard"}
USERS=${USERS:-2000}
DAYS=${DAYS:-28}
START=${START:-2026-10-19T00:00:00Z}
OUT=${OUT:-target/detection-bench}
BIN=${CARGO_TARGET_DIR:-target}/release/authpulse
CONFIG=${CONFIG-config/simulated-org.toml}
config_args=()
if [[ -n "$CONFIG" ]]; then config_args=(--config "$CONFIG"); fi

cargo build --release --quiet
mkdir -p "$OUT"

run() { # difficulty seed
  local d=$1 s=$2 base="$OUT/$1-seed$2"
  "$BIN" simulate --difficulty "$d" --seed "$s" --users "$USERS" --days "$DAYS" \
    --start "$START" --out "$base.ndjson.gz" --labels "$base.labels.jsonl" >/dev/null
  "$BIN" backtest "${config_args[@]}" --events "$base.ndjson.gz" \
    --alerts-out "$base.alerts.jsonl" >"$base.backtest.txt"
}

for d in $SETTINGS; do
  pids=()
  # Two runs at a time: the machine has two cores.
  for s in $SEEDS $HELDOUT $FINAL; do
    run "$d" "$s" &
    pids+=($!)
    if (( ${#pids[@]} >= 2 )); then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  done
  for p in "${pids[@]}"; do wait "$p"; done
done

score() { # difficulty label seeds...
  local d=$1 label=$2; shift 2
  local args=()
  for s in "$@"; do
    args+=(--alerts "$OUT/$d-seed$s.alerts.jsonl" --labels "$OUT/$d-seed$s.labels.jsonl")
  done
  "$BIN" evaluate "${args[@]}" --days "$DAYS" \
    --title "$d, $label: seeds $(echo "$@" | tr ' ' ','), $USERS users, $DAYS days" >"$OUT/$d-$label.txt"
  # The per-run tables stay in the file; the summary is the last block.
  sed -n '/^\*\*/,$p' "$OUT/$d-$label.txt"
  echo
}

for d in $SETTINGS; do
  if [[ -n "${SEEDS// /}" ]]; then # SEEDS=" " runs no tuned set
    # shellcheck disable=SC2086
    score "$d" tuned $SEEDS
  fi
  if [[ -n "$HELDOUT" ]]; then
    # shellcheck disable=SC2086
    score "$d" held-out $HELDOUT
  fi
  if [[ -n "$FINAL" ]]; then
    # shellcheck disable=SC2086
    score "$d" final $FINAL
  fi
done
