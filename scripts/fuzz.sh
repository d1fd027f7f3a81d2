#!/usr/bin/env bash
# Fuzz every authpulse parser on the stable toolchain (see fuzz/main.rs and the README's
# "Fuzzing"): builds the driver with release speed and overflow checks (the `fuzz`
# profile) and runs it. Arguments go to the driver:
#   scripts/fuzz.sh --iterations 1000000          # the full run, a million inputs each
#   scripts/fuzz.sh --targets csv,config --seed 7 --iterations 50000
#   scripts/fuzz.sh --replay target/fuzz-crashes/<file>.bin --targets <target>
#   scripts/fuzz.sh --list
# A failing input is saved under target/fuzz-crashes/ and the run exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --profile fuzz --example fuzz
exec target/fuzz/examples/fuzz "$@"
