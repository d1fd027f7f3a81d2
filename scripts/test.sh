#!/usr/bin/env bash
# The whole test suite from a fresh clone: installs what it needs (a Python venv with the
# AWS emulator and cfn-lint, Debian's prometheus-alertmanager and chromium), starts the
# emulator and an Alertmanager, runs every check, and stops both by their PIDs. `.ci/run`
# calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target

step() { printf '\n==> %s\n' "$*"; }

# 0. Room on disk. A fresh clone's run writes about 2.5 GB (the venv, clippy's metadata,
#    the debug test build, the fuzz driver). A full disk otherwise shows up minutes in as
#    the linker dying with a bus error; say it up front instead.
step "free disk space"
need_kb=$((5 * 1024 * 1024))
free_kb=$(df -Pk target | awk 'NR == 2 { print $4 }')
echo "$((free_kb / 1024)) MB free where target/ is; the suite needs about 5 GB"
if [ "$free_kb" -lt "$need_kb" ]; then
  df -h target >&2
  echo "not enough disk space: $((free_kb / 1024)) MB free, the suite needs about 5 GB (free some, then re-run)" >&2
  exit 1
fi
# A fresh clone compiles everything once: incremental state would only add about 1 GB.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# 1. Python side: moto + our Logs Insights extension, cfn-lint. Reinstalled only when the
#    requirements change.
step "Python test dependencies (.venv)"
# shellcheck source=lib/emulator.sh
source scripts/lib/emulator.sh
ensure_venv

# 1b. Headless Chromium (Debian's package) for the two page checks below, which fail
#     without it. Installed when missing; if it cannot be, the run fails.
step "chromium for the page checks"
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  echo "chromium is not installed: installing Debian's package"
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then as_root=(sudo -n); fi
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq chromium > /dev/null
fi
command -v chromium || command -v chromium-browser \
  || { echo "cannot install chromium: the page checks cannot run" >&2; exit 1; }

# 2. The AWS emulator (CloudWatch Logs with a real Insights engine, SNS, SQS) on a free port.
step "Starting the AWS emulator"
pids=()
scratch=""
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$scratch" ]; then rm -rf "$scratch"; fi
}
trap cleanup EXIT
start_emulator target/emulator.log

# 3. A real Alertmanager (Debian's package; the alertmanager sink's tests post to it and
#    read back through its API). Installed when missing; if it cannot be, the run fails.
step "Starting Alertmanager"
if ! command -v prometheus-alertmanager >/dev/null 2>&1; then
  echo "prometheus-alertmanager is not installed: installing Debian's package"
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then as_root=(sudo -n); fi
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq prometheus-alertmanager
fi
command -v prometheus-alertmanager >/dev/null 2>&1 \
  || { echo "cannot install prometheus-alertmanager: the Alertmanager tests cannot run" >&2; exit 1; }
scratch=$(mktemp -d)
printf 'route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n' > "$scratch/alertmanager.yml"
am_port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
am_log=target/alertmanager.log
# No systemd here: run the binary itself; an empty cluster address turns gossip off.
prometheus-alertmanager --config.file="$scratch/alertmanager.yml" \
  --storage.path="$scratch/alertmanager-data" \
  --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= > "$am_log" 2>&1 &
am_pid=$!
pids+=("$am_pid")
am_url="http://127.0.0.1:$am_port"
ready=""
for _ in $(seq 1 150); do
  if .venv/bin/python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/-/ready", timeout=1)' "$am_url" 2>/dev/null; then
    ready=yes
    break
  fi
  kill -0 "$am_pid" 2>/dev/null || { cat "$am_log"; echo "Alertmanager exited" >&2; exit 1; }
  sleep 0.2
done
[ -n "$ready" ] || { cat "$am_log"; echo "Alertmanager was not ready in 30 s" >&2; exit 1; }
echo "Alertmanager $(prometheus-alertmanager --version 2>&1 | head -n 1 | cut -d' ' -f3) at $am_url (pid $am_pid)"
export AUTHPULSE_TEST_ALERTMANAGER_URL="$am_url"

# 4. The checks.
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --all-targets --all-features -- -D warnings
# Benches are compiled by clippy above; running them belongs to `cargo bench`. The
# features add the integration tests that need the emulator and the Alertmanager
# started above (a plain `cargo test` leaves them out).
step "cargo test"
cargo test --lib --bins --tests --features aws-emulator,alertmanager
step "fuzz every parser (short: 1,500 inputs each; scripts/fuzz.sh runs the long one)"
cargo run --quiet --example fuzz --features aws-emulator,alertmanager -- --iterations 1500 --seed "${AUTHPULSE_FUZZ_SEED:-1}"
step "import layers (no cycle), file and function sizes"
python3 scripts/check-layers.py
step "backtest report in a headless browser"
bash scripts/check-report.sh
step "the daemon's status page in a headless browser"
bash scripts/check-status-page.sh
step "emulator self-tests"
.venv/bin/python -m unittest discover -s tests/aws_emulator
step "the outside traffic generator (deterministic, Okta-shaped, read without a drop)"
python3 -m unittest discover -s tests/tools
step "deployment checks (systemd unit, CloudFormation, IAM, ECS)"
.venv/bin/python -m unittest discover -s tests/deploy
step "all checks passed"
