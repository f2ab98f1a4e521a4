#!/usr/bin/env bash
# The benchmark, one command on a fresh clone: builds opslake and the serde floor in release,
# installs DuckDB from PyPI into bench/.venv, generates the inputs under bench/data (kept
# between runs) and prints the table of bench/run.py.
#   bench/run.sh            1 M appointments, a 1 M-order universe, 5 rounds, targets checked
#   bench/run.sh --quick    small inputs, one run, no targets
#   bench/run.sh --quick --profile debug   the same on debug builds (CI runs this after the tests)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release
for arg in "$@"; do
  if [ "$arg" = debug ]; then profile=debug; fi
done
if [ "$profile" = release ]; then
  cargo build --release --quiet --bin opslake --example parse_floor
else
  cargo build --quiet --bin opslake --example parse_floor
fi
# OPSLAKE_BENCH_VENV: an existing virtualenv to install DuckDB into (CI reuses its own).
venv=${OPSLAKE_BENCH_VENV:-bench/.venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check 'duckdb==2.0.1'
exec "$venv/bin/python" bench/run.py "$@"
