#!/usr/bin/env python3
"""Measure authpulse's pages on NAB's public Twitter mention counts.

The data are fetched, not bundled: take `data/realTweets/Twitter_volume_*.csv` and
`labels/combined_windows.json` from Numenta's anomaly benchmark
(https://github.com/numenta/NAB) and put them in one folder. Each CSV is already in the
shape `authpulse backtest` reads (`timestamp,value`, 5-minute rows).

For every series this runs `authpulse backtest --events <csv> --alerts-out <tmp>` with
the built-in config (or `--config`), counts the pages (firing notices, once per detector
and bin: the built-in rules that take plain counts each judge the series), divides by the
days judged (the series' span less the warm-up the backtest reports, two days by
default), and counts NAB's labelled windows with at least one page whose bin starts
inside the window. It prints a Markdown table, one row per series, and a total row.

Usage:
    scripts/nab-bench.py DIR [--authpulse target/debug/authpulse] [--config F]
                         [--warmup-days 2] [--detail]

`--detail` also lists every page (series, bin, detector, observed, expected).
Exit status 2 when DIR holds no Twitter_volume_*.csv.
"""

import argparse
import csv
import datetime as dt
import glob
import json
import os
import subprocess
import sys
import tempfile

TIME = "%Y-%m-%d %H:%M:%S"


def parse_time(text):
    text = text.strip().replace("T", " ").rstrip("Z")
    return dt.datetime.strptime(text[:19], TIME)


def span(path):
    """First and last timestamp of a `timestamp,value` CSV."""
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and r[0][:1].isdigit()]
    return parse_time(rows[0][0]), parse_time(rows[-1][0])


def labelled_windows(labels, name):
    for key, windows in labels.items():
        if os.path.basename(key) == name:
            return [(parse_time(a), parse_time(b)) for a, b in windows]
    return []


def pages_of(binary, config, path):
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as out:
        alerts_path = out.name
    cmd = [binary, "backtest", "--events", path, "--alerts-out", alerts_path]
    if config:
        cmd[2:2] = ["--config", config]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode not in (0, 3):
        sys.stderr.write(done.stderr)
        raise SystemExit(f"authpulse backtest failed on {path} (exit {done.returncode})")
    with open(alerts_path) as f:
        alerts = [json.loads(line) for line in f if line.strip()]
    os.unlink(alerts_path)
    # Every built-in rule that takes plain counts judges the same series, so one burst
    # can page on several rules: a page is counted once per detector and bin.
    seen, pages = set(), []
    for a in alerts:
        key = (a.get("detector"), a.get("bin_start"))
        if a.get("status") == "firing" and key not in seen:
            seen.add(key)
            pages.append(a)
    return pages


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--authpulse", default="target/debug/authpulse")
    ap.add_argument("--config")
    ap.add_argument("--warmup-days", type=float, default=2.0)
    ap.add_argument("--detail", action="store_true")
    args = ap.parse_args()

    files = sorted(glob.glob(os.path.join(args.dir, "Twitter_volume_*.csv")))
    if not files:
        sys.stderr.write(f"no Twitter_volume_*.csv in {args.dir}\n")
        return 2
    labels_path = os.path.join(args.dir, "combined_windows.json")
    labels = json.load(open(labels_path)) if os.path.exists(labels_path) else {}

    print("| series | days judged | pages | pages/day | kinds | labelled windows with a page |")
    print("| --- | --- | --- | --- | --- | --- |")
    total_pages, total_days, total_hit, total_windows = 0, 0.0, 0, 0
    for path in files:
        name = os.path.basename(path)
        first, last = span(path)
        days = (last - first).total_seconds() / 86400 - args.warmup_days
        fires = pages_of(args.authpulse, args.config, path)
        kinds = {}
        for a in fires:
            kinds[a["detector"]] = kinds.get(a["detector"], 0) + 1
        windows = labelled_windows(labels, name)
        hit = sum(
            any(a <= parse_time(f["bin_start"]) <= b for f in fires) for a, b in windows
        )
        total_pages += len(fires)
        total_days += days
        total_hit += hit
        total_windows += len(windows)
        kind_text = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
        series = name[len("Twitter_volume_"):-len(".csv")]
        print(
            f"| {series} | {days:.1f} | {len(fires)} | {len(fires) / days:.2f} | "
            f"{kind_text or '-'} | {hit} of {len(windows)} |"
        )
        if args.detail:
            for f in fires:
                sys.stderr.write(
                    f"  {series} {f['bin_start']} {f['detector']} observed {f['observed']:.0f}"
                    f" expected {f['expected']:.1f}\n"
                )
    print(
        f"| all | {total_days:.1f} | {total_pages} | {total_pages / total_days:.2f} | | "
        f"{total_hit} of {total_windows} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
