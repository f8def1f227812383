#!/usr/bin/env bash
# Fuzzes the live bakch binary with schemathesis, driven by the OpenAPI document it serves
# (/api/openapi.json). Fails on any 5xx, any reply that breaks the document (status, content
# type, headers or JSON schema), and any request that hangs past the timeout.
#   FUZZ_VENV          virtualenv to use/create   (default: <repo>/target/fuzz-venv)
#   BAKCH_BIN          the binary under test      (default: <repo>/target/debug/bakch; build it first)
#   FUZZ_MAX_EXAMPLES  test cases per operation   (default: 100; about a minute here)
#   FUZZ_SEED          schemathesis seed           (default: random; printed for a rerun)
#   PYTHON             interpreter for the venv   (default: python3; 3.10+)
# Extra arguments go to `st run`, e.g. `apitest/fuzz.sh --include-path-regex seq`.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FUZZ_VENV:-$REPO/target/fuzz-venv}"
BAKCH_BIN="${BAKCH_BIN:-$REPO/target/debug/bakch}"
MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-100}"
SEED="${FUZZ_SEED:-$RANDOM$RANDOM}"

. "$REPO/apitest/common.sh"
require_bakch_bin fuzz
ensure_venv "$VENV" "$REPO/apitest/fuzz-requirements.txt"
PY="$VENV/bin/python"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/data" "$WORK/locations"

PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"
KEY="$("$BAKCH_BIN" newapikey --data-dir "$WORK/data" | tail -n 1)"
BAKCH_LOG=info "$BAKCH_BIN" serve --bind "127.0.0.1:$PORT" --data-dir "$WORK/data" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

# Waits for the server, then makes a few targets (one with a backup) so that ids exist; their
# aliases are the examples the document gives for `{id}`.
BAKCH_URL="$URL" BAKCH_KEY="$KEY" BAKCH_FUZZ_ROOT="$WORK/locations" "$PY" - <<'PYEOF'
import json, os, time, urllib.request, uuid

url, key, root = os.environ["BAKCH_URL"], os.environ["BAKCH_KEY"], os.environ["BAKCH_FUZZ_ROOT"]

def call(method, path, body=None, content_type="application/json"):
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(url + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", content_type)
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.load(res)

for _ in range(300):
    try:
        call("GET", "/api/stats")
        break
    except OSError:
        time.sleep(0.1)
else:
    raise SystemExit("fuzz: bakch did not start")

ids = {}
for alias, kind in [("photos", "single"), ("documents", "multi")]:
    ids[alias] = call("POST", "/api/target", {
        "name": alias, "backup_type": kind, "recycle_criteria": "count", "recycle_value": 5,
        "recycle_action": "recycle", "location": f"{root}/{alias}", "name_template": f"{alias}-$I", "alias": alias,
    })["id"]
boundary = uuid.uuid4().hex
form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"manual\"\r\n\r\n1\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"backup_file\"; filename=\"a.txt\"\r\n"
        f"Content-Type: application/octet-stream\r\n\r\nhello\r\n--{boundary}--\r\n").encode()
job = call("POST", "/api/target/photos/upload", form, f"multipart/form-data; boundary={boundary}")["job_id"]
for _ in range(300):
    if call("GET", f"/api/jobs/{job}")["job"]["status"] in ("FINISHED", "ERROR"):
        break
    time.sleep(0.1)
print(f"fuzz: targets {ids}, upload job {job}")
PYEOF

echo "fuzz: schemathesis against $URL, $MAX_EXAMPLES examples per operation, seed $SEED"
status=0
# Every check but two, which judge the API's deliberate leniency rather than its correctness:
# - negative_data_rejection: bakch reads fields as the official Python clients send them, so it
#   takes `0`/`1` and strings for booleans, digit strings for counts, and unknown search values
#   (which match nothing); the document states the canonical types.
# - positive_data_acceptance: many schema-valid requests are refused for the state they meet
#   (a sequential upload on a single-file target, a finish with no upload open, a search with
#   no filter); those refusals are documented 4xx replies.
# - use_after_free: a deleted backup is held and `POST /api/held/{id}/restore` brings it back
#   under the same id (by design: a stolen key can hide backups, not destroy them); the stateful
#   phase chains the two and then reads the backup again. tests/held.rs checks delete → 404 →
#   restore → the same bytes.
# Request timeout: a reply slower than that counts as a hang. One worker: with two, CPython 3.11's
# ast.parse races in hypothesis ("AST constructor recursion depth mismatch"), an error in the
# fuzzer, not in bakch.
# GET /api/health is left out: its 503 ("something monitored is not ok") is the answer uptime
# monitors watch for, which the server-error check cannot tell from a failure; it takes no
# input to fuzz, and tests/health.rs checks both of its answers.
# From the temp folder, where schemathesis leaves its cache (.schemathesis/).
cd "$WORK"
PYTHONPATH="$REPO/apitest" SCHEMATHESIS_HOOKS=fuzz_hooks BAKCH_FUZZ_ROOT="$WORK/locations" \
PYTHONDONTWRITEBYTECODE=1 \
    "$VENV/bin/st" run "$URL/api/openapi.json" \
    --header "Authorization: Bearer $KEY" \
    --checks all \
    --exclude-checks negative_data_rejection,positive_data_acceptance,use_after_free \
    --exclude-path /api/health \
    --max-examples "$MAX_EXAMPLES" \
    --request-timeout 10 \
    --seed "$SEED" \
    --workers 1 \
    --suppress-health-check too_slow \
    "$@" || status=$?

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "fuzz: bakch died during the run; its log:" >&2
    tail -n 50 "$WORK/server.log" >&2
    status=1
fi
if grep -q "panicked" "$WORK/server.log"; then
    echo "fuzz: bakch logged a panic:" >&2
    grep -A3 "panicked" "$WORK/server.log" >&2
    status=1
fi
exit "$status"
