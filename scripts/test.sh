#!/usr/bin/env bash
# The whole test suite from a fresh clone: installs what it needs (a Python venv with the
# AWS emulator and cfn-lint), starts the emulator, runs every check, and stops the
# emulator by its PID. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target

step() { printf '\n==> %s\n' "$*"; }

# 1. Python side: moto + our Logs Insights extension, cfn-lint. Reinstalled only when the
#    requirements change.
step "Python test dependencies (.venv)"
stamp=.venv/.requirements.sha256
want=$(sha256sum tests/support/requirements.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/support/requirements.txt
  echo "$want" > "$stamp"
fi

# 2. The AWS emulator (CloudWatch Logs with a real Insights engine, SNS, SQS) on a free port.
step "Starting the AWS emulator"
log=target/emulator.log
.venv/bin/python tests/support/emulator/server.py --host 127.0.0.1 --port 0 > "$log" 2>&1 &
emulator_pid=$!
trap 'kill "$emulator_pid" 2>/dev/null || true; wait "$emulator_pid" 2>/dev/null || true' EXIT
url=""
for _ in $(seq 1 150); do
  url=$(sed -n 's/^emulator listening on \(http:[^ ]*\).*/\1/p' "$log" | head -n 1)
  [ -n "$url" ] && break
  kill -0 "$emulator_pid" 2>/dev/null || { cat "$log"; echo "the emulator exited" >&2; exit 1; }
  sleep 0.2
done
[ -n "$url" ] || { cat "$log"; echo "the emulator did not start in 30 s" >&2; exit 1; }
echo "emulator at $url (pid $emulator_pid)"
export AUTHPULSE_TEST_AWS_ENDPOINT="$url"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true

# 3. The checks.
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --all-targets --all-features -- -D warnings
# Benches are compiled by clippy above; running them belongs to `cargo bench`.
step "cargo test"
cargo test --lib --bins --tests --features aws-emulator
step "import layers (no cycle)"
python3 scripts/check-layers.py
step "backtest report in a headless browser (skipped without chromium)"
bash scripts/check-report.sh
step "the daemon's status page in a headless browser (skipped without chromium)"
bash scripts/check-status-page.sh
step "emulator self-tests"
.venv/bin/python -m unittest discover -s tests/support/emulator
step "deployment checks (systemd unit, CloudFormation, IAM, ECS)"
.venv/bin/python -m unittest discover -s tests/deploy
step "all checks passed"
