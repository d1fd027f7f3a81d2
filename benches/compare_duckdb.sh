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
dir=target/bench
mkdir -p "$dir"

echo "==> building authpulse (release)"
cargo build --release --quiet --bin authpulse
bin=${CARGO_TARGET_DIR:-target}/release/authpulse

export_file="$dir/duckdb-${users}u-${days}d.ndjson"
if [ ! -s "$export_file" ]; then
  echo "==> writing the export: $users users, $days days"
  "$bin" simulate --users "$users" --days "$days" --out "$export_file" \
    --labels "$dir/duckdb-${users}u-${days}d.labels.jsonl"
fi

echo "==> duckdb in .venv"
[ -x .venv/bin/python ] || python3 -m venv .venv
if ! .venv/bin/python -c "import duckdb" 2>/dev/null; then
  .venv/bin/pip install --quiet --disable-pip-version-check duckdb
fi

echo "==> warming the page cache"
cat "$export_file" > /dev/null
printf '[[rules]]\nname = "okta-sign-ins"\n' > "$dir/sessions-only.toml"

python3 - "$bin" "$export_file" "$dir" "$runs" <<'PY'
import json, os, re, statistics, subprocess, sys, time

binary, path, out, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
size = os.path.getsize(path)

def timed(cmd, stdout):
    """Wall seconds, CPU seconds and peak RSS (MB) of one child process."""
    t0 = time.perf_counter()
    with open(stdout, "w") as f:
        child = subprocess.Popen(cmd, stdout=f)
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed; see {stdout}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024

tools = {
    "authpulse backtest, all built-in rules": [binary, "backtest", "--events", path,
        "--alerts-out", f"{out}/alerts-duckdb-bench.jsonl"],
    "authpulse backtest, sign-ins rule only": [binary, "backtest", "--config",
        f"{out}/sessions-only.toml", "--events", path, "--alerts-out", f"{out}/alerts-duckdb-bench-1.jsonl"],
    "DuckDB read_json + time_bucket (2 threads)": [".venv/bin/python",
        "benches/compare_duckdb.py", path, "2"],
}
results = {name: [] for name in tools}
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
print(f"\n{mb:.0f} MB export, median of {runs} runs\n")
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
