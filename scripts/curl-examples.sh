#!/usr/bin/env bash
# Example requests against `make run` (http://127.0.0.1:${PORT:-8000}, tenant acme).
# Uses CLIENT_ID/CLIENT_SECRET if set; otherwise creates a client with manage.py (same machine).
set -euo pipefail
cd "$(dirname "$0")/.."
BASE="${BASE_URL:-http://127.0.0.1:${PORT:-8000}}"
TENANT="${TENANT:-acme}"
PY="${PYTHON:-.venv/bin/python}"

if [[ -z "${CLIENT_ID:-}" || -z "${CLIENT_SECRET:-}" ]]; then
  creds=$(DEBUG=${DEBUG:-1} "$PY" manage.py create_api_client --tenant "$TENANT" --json --name curl-examples \
    --scope flags:read --scope flags:write --scope segments:read --scope segments:write \
    --scope evaluate --scope audit:read)
  CLIENT_ID=$(printf '%s' "$creds" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
  CLIENT_SECRET=$(printf '%s' "$creds" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
fi

show() { echo; echo "### $*"; }
TOKEN=$(curl -sf -X POST "$BASE/v1/auth/token" -H 'Content-Type: application/json' \
  -d "{\"client_id\": \"$CLIENT_ID\", \"client_secret\": \"$CLIENT_SECRET\"}" \
  | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
H=(-H "Authorization: Bearer $TOKEN" -H "X-Tenant-ID: $TENANT" -H 'Content-Type: application/json')
KEY="curl-demo-$RANDOM"

show "health and readiness"
curl -sf "$BASE/healthz"; echo; curl -sf "$BASE/readyz"; echo

show "list flags"
curl -sf "${H[@]}" "$BASE/v1/flags?limit=5"; echo

show "create a flag ($KEY): NL users on, everyone else 50 %"
curl -sf "${H[@]}" -X POST "$BASE/v1/flags" -d "{
  \"key\": \"$KEY\", \"name\": \"curl demo\", \"state\": \"on\",
  \"variants\": [{\"key\": \"on\", \"value\": true, \"weight\": 50}, {\"key\": \"off\", \"value\": false, \"weight\": 50}],
  \"rules\": [{\"id\": \"nl\", \"when\": {\"attr\": \"country\", \"op\": \"eq\", \"value\": \"NL\"}, \"serve\": {\"variant\": \"on\"}}]
}"; echo

show "evaluate it"
curl -sf "${H[@]}" -X POST "$BASE/v1/evaluate" \
  -d "{\"flag_key\": \"$KEY\", \"user\": {\"id\": \"u-42\", \"attributes\": {\"country\": \"NL\"}}}"; echo

show "update it with If-Match"
curl -sf "${H[@]}" -X PATCH "$BASE/v1/flags/$KEY" -H 'If-Match: "1"' -d '{"description": "changed by curl"}'; echo

show "bulk evaluation for one user"
curl -sf "${H[@]}" -X POST "$BASE/v1/evaluate/bulk" -d '{"user": {"id": "u-42", "attributes": {"country": "DE"}}}'; echo

show "preview with trace"
curl -sf "${H[@]}" -X POST "$BASE/v1/evaluate/preview" \
  -d "{\"flag_key\": \"$KEY\", \"users\": [{\"id\": \"u-1\"}, {\"id\": \"u-2\", \"attributes\": {\"country\": \"NL\"}}]}"; echo

show "versions, audit"
curl -sf "${H[@]}" "$BASE/v1/flags/$KEY/versions"; echo
curl -sf "${H[@]}" "$BASE/v1/audit?flag_key=$KEY&limit=2"; echo

show "archive it"
curl -sf "${H[@]}" -X DELETE "$BASE/v1/flags/$KEY" -o /dev/null -w '%{http_code}\n'
