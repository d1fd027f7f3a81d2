#!/usr/bin/env bash
# Looks at the running daemon's status page (`/` on daemon.http_listen) in a real headless
# browser (Debian's chromium): starts `authpulse run` on the bundled 14-day sample plus an
# attack after its end that is still under way, waits for /readyz, and checks what the
# browser made of the page — the DOM it parsed has both charts, the band, alert markers
# and the open alert's row — and that the screenshot is not blank. Then stops the daemon
# with SIGTERM and checks it exits 0. `tests/integration/ops_daemon.rs` checks the markup
# itself; this checks that a browser draws it.
#
#   bash scripts/check-status-page.sh [OUT_DIR]     # default OUT_DIR: target/status-check
#
# Leaves OUT_DIR/status.png (1400x1800), OUT_DIR/dom.html and OUT_DIR/daemon.log to look
# at. Needs chromium (apt-get install chromium; `scripts/test.sh` installs it) and python3:
# fails when chromium is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/status-check}
mkdir -p "$out"
out=$(cd "$out" && pwd)

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "check-status-page: FAILED, chromium is not installed: apt-get update && apt-get install -y chromium" >&2
  echo "(scripts/test.sh installs it when missing)" >&2
  exit 1
fi

cargo build --quiet --bin authpulse
bin=${CARGO_TARGET_DIR:-target}/debug/authpulse

# The sample, then 400 failed sign-ins in the bin after its end and one ordinary sign-in
# after that bin (which closes it): a credential-stuffing alert that is open.
python3 - "$out/events.ndjson" <<'EOF'
import datetime as dt, gzip, json, sys
lines = gzip.open("samples/demo.ndjson.gz", "rt").read().splitlines()
last = max(json.loads(l)["detail"]["published"] for l in lines[-200:])
end = dt.datetime.fromisoformat(last.replace("Z", "+00:00"))
start = end.replace(minute=end.minute - end.minute % 15, second=0, microsecond=0) + dt.timedelta(minutes=15)
def event(t, result, ip, user):
    return json.dumps({"published": t.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                       "eventType": "user.session.start",
                       "outcome": {"result": result, "reason": "INVALID_CREDENTIALS" if result == "FAILURE" else None},
                       "actor": {"alternateId": user},
                       "client": {"ipAddress": ip, "geographicalContext": {"country": "NL"}}})
attack = [event(start + dt.timedelta(seconds=2 * i), "FAILURE", f"203.0.113.{i % 50}", f"victim{i % 97}@example.com")
          for i in range(400)]
after = event(start + dt.timedelta(minutes=20), "SUCCESS", "198.51.100.7", "someone@example.com")
with open(sys.argv[1], "w") as f:
    f.write("\n".join(lines + attack + [after]) + "\n")
EOF

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rm -rf "$out/state"
cat > "$out/authpulse.toml" <<EOF
[daemon]
state_dir = "$out/state"
http_listen = "127.0.0.1:$port"

[source]
kind = "file"
path = "$out/events.ndjson"
follow = true
settle = "0s"

[[sinks]]
kind = "file"
path = "$out/alerts.jsonl"
EOF

"$bin" run --config "$out/authpulse.toml" 2> "$out/daemon.log" > /dev/null &
daemon=$!
profile=$(mktemp -d)
trap 'kill "$daemon" 2>/dev/null || true; rm -rf "$profile"' EXIT

for _ in $(seq 1 300); do
  "$bin" healthcheck --url "http://127.0.0.1:$port/readyz" --timeout 1s > /dev/null 2>&1 && break
  kill -0 "$daemon" 2>/dev/null || { cat "$out/daemon.log"; echo "check-status-page: the daemon exited" >&2; exit 1; }
  sleep 0.2
done
"$bin" healthcheck --url "http://127.0.0.1:$port/readyz" > /dev/null

# Each run gets a fresh profile; no network beyond localhost, no first-run UI, no GPU.
chrome() {
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" "$@" 2>/dev/null
}
url="http://127.0.0.1:$port/"
chrome --dump-dom "$url" > "$out/dom.html"
# Counted from the first rule's section on, so that the legend's swatches (drawn with the
# same classes) do not count; markers are `<g class="marker fire alert-fired">`.
sed -n '/<section class="rule"/,$p' "$out/dom.html" > "$out/rules.html"
count() { grep -o "$1" "$out/rules.html" | wc -l; }
charts=$(count '<svg class="chart"')
bands=$(count 'class="band"')
fired=$(count 'class="[^"]*\balert-fired\b')
open_rows=$(sed -n '/id="open-alerts"/,/<\/section>/p' "$out/dom.html" | grep -o '<tr>' | wc -l)
echo "browser DOM: $charts chart(s), $bands band(s), $fired alert marker(s), $((open_rows - 1)) open alert row(s)"
[ "$charts" -ge 2 ] || { echo "check-status-page: fewer than two charts" >&2; exit 1; }
[ "$bands" -ge 1 ] || { echo "check-status-page: no band drawn" >&2; exit 1; }
[ "$fired" -ge 1 ] || { echo "check-status-page: no alert marker" >&2; exit 1; }
[ "$open_rows" -ge 2 ] || { echo "check-status-page: the open attack is not in the table" >&2; exit 1; }

chrome --screenshot="$out/status.png" --window-size=1400,1800 "$url" > /dev/null
size=$(stat -c %s "$out/status.png")
# A blank 1400x1800 page compresses to a few kB; a page with charts to tens.
[ "$size" -gt 40000 ] || { echo "check-status-page: the screenshot looks blank ($size bytes)" >&2; exit 1; }

kill -TERM "$daemon"
code=0
wait "$daemon" || code=$?
trap 'rm -rf "$profile"' EXIT
[ "$code" -eq 0 ] || { echo "check-status-page: the daemon exited $code after SIGTERM" >&2; exit 1; }
echo "check-status-page: ok, screenshot $out/status.png ($((size / 1024)) kB)"
