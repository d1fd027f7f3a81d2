#!/usr/bin/env bash
# Renders `authpulse backtest --report` in a real headless browser (Debian's chromium) and
# checks what the browser made of it: the DOM it parsed has the charts and panels, and the
# screenshot is not blank. The Rust test `tests/integration/tuning.rs` checks the markup
# itself; this checks that a browser draws it.
#
#   bash scripts/check-report.sh [OUT_DIR]     # default OUT_DIR: target/report-check
#
# Leaves OUT_DIR/report.html and OUT_DIR/report.png to look at. Needs `chromium`
# (apt-get install chromium; `scripts/test.sh` installs it): fails when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/report-check}
mkdir -p "$out"
out=$(cd "$out" && pwd)

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "check-report: FAILED, chromium is not installed: apt-get update && apt-get install -y chromium" >&2
  echo "(scripts/test.sh installs it when missing)" >&2
  exit 1
fi

cargo build --quiet --bin authpulse
bin=${CARGO_TARGET_DIR:-target}/debug/authpulse
"$bin" backtest --events samples/demo.ndjson.gz --report "$out/report.html" \
  --alerts-out "$out/alerts.jsonl" > "$out/backtest.txt"

# Each run gets a fresh profile; no network, no first-run UI, no GPU.
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chrome() {
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" "$@" 2>/dev/null
}

chrome --dump-dom "file://$out/report.html" > "$out/dom.html"
charts=$(grep -o '<svg class="chart"' "$out/dom.html" | wc -l)
panels=$(grep -o '<g class="panel"' "$out/dom.html" | wc -l)
markers=$(grep -o 'class="marker ' "$out/dom.html" | wc -l)
notices=$(wc -l < "$out/alerts.jsonl")
echo "browser DOM: $charts chart(s), $panels panel(s), $markers alert marker(s) for $notices notice(s)"
[ "$charts" -ge 1 ] || { echo "check-report: no chart in the rendered DOM" >&2; exit 1; }
[ "$panels" -ge "$charts" ] || { echo "check-report: charts without panels" >&2; exit 1; }
[ "$markers" -eq "$notices" ] || { echo "check-report: $markers markers for $notices notices" >&2; exit 1; }

chrome --screenshot="$out/report.png" --window-size=1400,2000 "file://$out/report.html" > /dev/null
size=$(stat -c %s "$out/report.png")
# A blank 1400x2000 page compresses to a few kB; a page of charts to hundreds.
[ "$size" -gt 100000 ] || { echo "check-report: the screenshot looks blank ($size bytes)" >&2; exit 1; }
echo "check-report: ok, screenshot $out/report.png ($((size / 1024)) kB)"
