#!/usr/bin/env bash
# Runs the apitest suite against the real bakch binary through the official Backup-chan client
# library and CLI from PyPI.
#   APITEST_VENV  virtualenv to use/create  (default: <repo>/target/apitest-venv)
#   BAKCH_BIN     the binary under test     (default: <repo>/target/debug/bakch; build it first)
#   PYTHON        interpreter for the venv  (default: python3; 3.10+)
# Extra arguments go to pytest, e.g. `apitest/run.sh -k seq -x`.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${APITEST_VENV:-$REPO/target/apitest-venv}"
export BAKCH_BIN="${BAKCH_BIN:-$REPO/target/debug/bakch}"

. "$REPO/apitest/common.sh"
require_bakch_bin apitest
ensure_venv "$VENV" "$REPO/apitest/requirements.txt"

cd "$REPO"
# Leave no .pytest_cache or __pycache__ behind in the work tree.
export PYTHONDONTWRITEBYTECODE=1
status=0
"$VENV/bin/python" -m pytest -q -p no:cacheprovider apitest "$@" || status=$?
exit "$status"
