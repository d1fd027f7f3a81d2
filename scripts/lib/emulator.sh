# Sourced by scripts/test.sh and scripts/soak.sh (from the repository's root): the
# Python venv with the AWS emulator, and the emulator itself on a free port.

# ensure_venv: create .venv, or reinstall it when tests/aws_emulator/requirements.txt
# changed.
ensure_venv() {
  local stamp=.venv/.requirements.sha256 want
  want=$(sha256sum tests/aws_emulator/requirements.txt | cut -d' ' -f1)
  if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r tests/aws_emulator/requirements.txt
    echo "$want" > "$stamp"
  fi
}

# start_emulator LOG: the AWS emulator (CloudWatch Logs with a real Insights engine,
# SNS, SQS, DynamoDB) on a free port, logging to LOG. Appends its PID to the caller's
# `pids` array (the caller's EXIT trap stops them), exports AUTHPULSE_TEST_AWS_ENDPOINT
# and dummy AWS credentials; exits 1 with the log if it does not come up in 30 s.
start_emulator() {
  local log=$1 url="" pid
  .venv/bin/python tests/aws_emulator/server.py --host 127.0.0.1 --port 0 > "$log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 150); do
    url=$(sed -n 's/^emulator listening on \(http:[^ ]*\).*/\1/p' "$log" | head -n 1)
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "the emulator exited" >&2; exit 1; }
    sleep 0.2
  done
  [ -n "$url" ] || { cat "$log"; echo "the emulator did not start in 30 s" >&2; exit 1; }
  echo "emulator at $url (pid $pid)"
  export AUTHPULSE_TEST_AWS_ENDPOINT="$url"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
  export AWS_EC2_METADATA_DISABLED=true
}
