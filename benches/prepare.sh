# Shared by the comparison benches (benches/compare_*.sh), sourced, not run: builds
# authpulse (release), writes the export with `authpulse simulate` (kept in target/bench/
# for the next run), installs the other tool's Python package into .venv from PyPI when
# it is missing, and reads the export once so both tools start from the page cache.
#
#   prepare_export NAME USERS DAYS PYTHON_PACKAGE
#
# sets: bin (the authpulse binary), export_file, dir (target/bench), and writes
# $dir/sessions-only.toml (one rule: the sign-in outcomes, every default detector).

prepare_export() {
  local name=$1 users=$2 days=$3 package=$4
  dir=target/bench
  mkdir -p "$dir"

  echo "==> building authpulse (release)"
  cargo build --release --quiet --bin authpulse
  bin=${CARGO_TARGET_DIR:-target}/release/authpulse

  export_file="$dir/${name}-${users}u-${days}d.ndjson"
  if [ ! -s "$export_file" ]; then
    echo "==> writing the export: $users users, $days days"
    "$bin" simulate --users "$users" --days "$days" --out "$export_file" \
      --labels "$dir/${name}-${users}u-${days}d.labels.jsonl"
  fi

  echo "==> $package in .venv"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  if ! .venv/bin/python -c "import $package" 2>/dev/null; then
    .venv/bin/pip install --quiet --disable-pip-version-check "$package"
  fi

  echo "==> warming the page cache"
  cat "$export_file" > /dev/null
  printf '[[rules]]\nname = "okta-sign-ins"\n' > "$dir/sessions-only.toml"
}
