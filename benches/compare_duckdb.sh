#!/usr/bin/env bash
# Backtest wall time next to DuckDB's, on the same export, in one run (a benchmark, not a
# test: it takes a few minutes, mostly the release build).
#
#   bash benches/compare_duckdb.sh                  # 1,400 users x 14 days: ~200 MB
#   USERS=4000 DAYS=14 RUNS=5 bash benches/compare_duckdb.sh
#
# 1. builds authpulse (release) and writes the export with `authpulse simulate` (kept in
#    target/bench/ for the next run);
# 2. installs duckdb into .venv from PyPI when it is missing;
# 3. reads the file once so both tools start from the page cache;
# 4. times, RUNS times each, alternating: `authpulse backtest` with every built-in rule
#    (parse, filter, bin, baselines, detectors, lifecycle — more than DuckDB does) and
#    benches/compare_duckdb.py (`read_json` + `time_bucket`, parse + filter + bin only,
#    2 threads): wall time, CPU time and peak memory of each process;
# 5. prints the medians, the ratio, and the sign-ins each counted as a cross-check.
set -euo pipefail
cd "$(dirname "$0")/.."
users=${USERS:-1400}
days=${DAYS:-14}
runs=${RUNS:-3}
source benches/prepare.sh
prepare_export duckdb "$users" "$days" duckdb

python3 - "$bin" "$export_file" "$dir" "$runs" <<'PY'
import json, os, re, statistics, sys

sys.path.insert(0, "benches")
from timed import load, timed

binary, path, out, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
size = os.path.getsize(path)

tools = {
    "authpulse backtest, all built-in rules": [binary, "backtest", "--events", path,
        "--alerts-out", f"{out}/alerts-duckdb-bench.jsonl"],
    "authpulse backtest, sign-ins rule only": [binary, "backtest", "--config",
        f"{out}/sessions-only.toml", "--events", path, "--alerts-out", f"{out}/alerts-duckdb-bench-1.jsonl"],
    "DuckDB read_json + time_bucket (2 threads)": [".venv/bin/python",
        "benches/compare_duckdb.py", path, "2"],
}
results = {name: [] for name in tools}
load_before = load()
for _ in range(runs):
    for name, cmd in tools.items():
        results[name].append(timed(cmd, f"{out}/{abs(hash(name))}.txt"))

counted = {}
for name in tools:
    text = open(f"{out}/{abs(hash(name))}.txt").read()
    if name.startswith("DuckDB"):
        counted[name] = json.loads(text.strip().splitlines()[-1])["counted"]
    else:
        m = re.search(r"events counted by rules: (\d+)", text)
        counted[name] = int(m.group(1)) if m else -1

mb = size / 1e6
print(f"\n{mb:.0f} MB export, median of {runs} runs, load average {load_before:.1f} before, {load():.1f} after\n")
print(f"{'':44} {'wall s':>7} {'CPU s':>7} {'MB/s':>7} {'peak MB':>8} {'counted':>9}")
med = {}
for name, rs in results.items():
    wall = statistics.median(r[0] for r in rs)
    cpu = statistics.median(r[1] for r in rs)
    rss = max(r[2] for r in rs)
    med[name] = wall
    print(f"{name:44} {wall:7.2f} {cpu:7.2f} {mb / wall:7.0f} {rss:8.0f} {counted[name]:9}")
a, d = list(med.values())[0], list(med.values())[2]
print(f"\nauthpulse (all rules) / DuckDB wall time: {a / d:.2f}x")
PY
