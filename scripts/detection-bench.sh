#!/usr/bin/env bash
# Detection quality on the simulator: for the easy and the hard setting, simulate several
# seeds of labelled Okta traffic, backtest each with the built-in rules, and score the
# alerts against the labels. Prints one Markdown table per setting (the README's
# "Detection quality" section) and keeps every file in $OUT for a closer look.
#
#   scripts/detection-bench.sh                    # seeds 1-5, 2000 users, 14 days
#   SEEDS="1 2" USERS=5000 DAYS=21 scripts/detection-bench.sh
#   CONFIG=my.toml scripts/detection-bench.sh     # score your own rules instead
#
# Takes about a minute per run on one core of the project's machine (release build).
set -euo pipefail
cd "$(dirname "$0")/.."

SEEDS=${SEEDS:-"1 2 3 4 5"}
USERS=${USERS:-2000}
DAYS=${DAYS:-14}
OUT=${OUT:-target/detection-bench}
BIN=${CARGO_TARGET_DIR:-target}/release/authpulse
config_args=()
if [[ -n "${CONFIG:-}" ]]; then config_args=(--config "$CONFIG"); fi

cargo build --release --quiet
mkdir -p "$OUT"

run() { # difficulty seed
  local d=$1 s=$2 base="$OUT/$1-seed$2"
  "$BIN" simulate --difficulty "$d" --seed "$s" --users "$USERS" --days "$DAYS" \
    --out "$base.ndjson.gz" --labels "$base.labels.jsonl" >/dev/null
  "$BIN" backtest "${config_args[@]}" --events "$base.ndjson.gz" \
    --alerts-out "$base.alerts.jsonl" >"$base.backtest.txt"
}

for d in easy hard; do
  pids=()
  # Two runs at a time: the machine has two cores.
  for s in $SEEDS; do
    run "$d" "$s" &
    pids+=($!)
    if (( ${#pids[@]} >= 2 )); then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  done
  for p in "${pids[@]}"; do wait "$p"; done
done

for d in easy hard; do
  args=()
  for s in $SEEDS; do
    args+=(--alerts "$OUT/$d-seed$s.alerts.jsonl" --labels "$OUT/$d-seed$s.labels.jsonl")
  done
  "$BIN" evaluate "${args[@]}" --days "$DAYS" \
    --title "$d: seeds $(echo $SEEDS | tr ' ' ','), $USERS users, $DAYS days" >"$OUT/$d.txt"
  # The per-run tables stay in the file; the summary is the last block.
  sed -n '/^\*\*/,$p' "$OUT/$d.txt"
  echo
done
