#!/usr/bin/env bash
# Backtest throughput next to pandas, on the same export, in one run (a benchmark, not a
# test: it takes minutes and needs ~1.4 GB of disk and a few GB of memory for pandas).
#
#   bash benches/compare_pandas.sh            # 8,000 users x 14 days: a ~1.4 GB export
#   USERS=2000 DAYS=7 bash benches/compare_pandas.sh    # a quicker, smaller run
#
# 1. builds authpulse (release) and writes the export with `authpulse simulate` (kept in
#    target/bench/ for the next run);
# 2. installs pandas into .venv from PyPI when it is missing;
# 3. reads the file once so both tools start from the page cache;
# 4. times `authpulse backtest` (parse + bin + baseline + detect + lifecycle, one thread)
#    twice — with only the sign-in outcomes rule, the same work the pandas script does,
#    and with every built-in rule (adds per-source spraying and per-user MFA fatigue) —
#    and benches/compare_pandas.py (read_json in chunks + 15-minute binning + a rolling
#    z-score): wall time, CPU time and peak memory of each;
# 5. prints a table, with the sign-ins each counted as a cross-check.
set -euo pipefail
cd "$(dirname "$0")/.."
users=${USERS:-8000}
days=${DAYS:-14}
source benches/prepare.sh
prepare_export okta "$users" "$days" pandas
size=$(stat -c %s "$export_file")
if [ "$size" -lt 1000000000 ]; then
  echo "note: the export is $((size / 1000000)) MB, under the 1 GB the published figure uses"
fi

echo "==> timing both on $export_file ($((size / 1000000)) MB)"
python3 - "$bin" "$export_file" "$dir" <<'PY'
import json, os, re, sys

sys.path.insert(0, "benches")
from timed import timed

binary, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
size = os.path.getsize(path)

def authpulse(name, config):
    args = [binary, "backtest", "--events", path, "--alerts-out", f"{out}/alerts-{name}.jsonl"]
    wall, cpu, rss = timed(args + config, f"{out}/authpulse-{name}.txt")
    summary = open(f"{out}/authpulse-{name}.txt").read()
    lines = int(re.search(r"read (\d+) lines", summary).group(1))
    counted = int(re.search(r"events counted by rules: (\d+)", summary).group(1))
    return wall, cpu, rss, lines, counted

same = authpulse("sessions", ["--config", f"{out}/sessions-only.toml"])
every = authpulse("builtin", [])

p_wall, p_cpu, p_rss = timed(
    [".venv/bin/python", "benches/compare_pandas.py", path], f"{out}/pandas.json"
)
pandas = json.loads(open(f"{out}/pandas.json").read())

mb = size / 1e6
rows = [
    ("authpulse, the same rule", *same),
    ("authpulse, all built-in rules", *every),
    ("pandas (read_json + z-score)", p_wall, p_cpu, p_rss, pandas["events"], pandas["counted"]),
]
print()
print(f"{'':30} {'wall s':>8} {'CPU s':>8} {'MB/s':>8} {'MB/s/core':>10} {'events/s':>11} {'peak MB':>8} {'counted':>10}")
for name, wall, cpu, rss, events, count in rows:
    print(
        f"{name:30} {wall:8.1f} {cpu:8.1f} {mb / wall:8.0f} {mb / max(cpu, 1e-9):10.0f}"
        f" {events / wall:11.0f} {rss:8.0f} {count:10}"
    )
print(
    f"\nauthpulse is {p_wall / same[0]:.0f}x faster than pandas doing the same work"
    f" ({p_wall / every[0]:.0f}x with every built-in rule) on {mb:.0f} MB ({same[3]} events)"
)
if same[4] != pandas["counted"]:
    print(f"warning: the two counted different numbers of sign-ins ({same[4]} vs {pandas['counted']})")
PY
