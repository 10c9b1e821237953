#!/usr/bin/env bash
# Acceptance run of Hive's real web UI (aden-hive/hive core/frontend, unchanged) in headless
# Chromium against this repository's server: starts `hive-server serve --ui-dir DIST` on a free
# port with a fresh HIVE_HOME, runs driver/drive.mjs, stops the server. Exit 0 only when every
# step passes. See scripts/hive_ui/README.md.
#
# Usage: scripts/hive_ui/run.sh [--frontend DIR] [--out DIR] [drive.mjs options...]
#   --frontend DIR  a Hive core/frontend checkout (default $HIVE_FRONTEND_DIR); dist/ is built
#                   with `npm ci && npx vite build` when DIR/dist/index.html is missing
#   --out DIR       report.json, shots/, server.log and the temp home go here
#                   (default: a fresh mktemp -d); never inside this repository
#   other options go to the driver: --queen ID  --colony SLUG  --step-timeout MS  --headful
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
FRONTEND=${HIVE_FRONTEND_DIR:-}
OUT=
DRIVER_ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --frontend) FRONTEND=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) DRIVER_ARGS+=("$1"); shift ;;
  esac
done
die() { echo "hive_ui: $*" >&2; exit 2; }
[ -n "$FRONTEND" ] || die "give --frontend DIR (Hive's core/frontend) or set HIVE_FRONTEND_DIR"
FRONTEND=$(cd "$FRONTEND" && pwd) || die "no such directory: $FRONTEND"
[ -f "$FRONTEND/package.json" ] || die "$FRONTEND is not Hive's core/frontend (no package.json)"
command -v node >/dev/null || die "node (>= 20) is needed"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || die "no Chromium at $CHROMIUM (apt-get install chromium, or set CHROMIUM)"

if [ -z "$OUT" ]; then OUT=$(mktemp -d "${TMPDIR:-/tmp}/hive_ui.XXXXXX"); fi
OUT=$(realpath -m "$OUT")
case "$OUT/" in "$REPO"/*) die "--out must be outside the repository ($REPO)" ;; esac
mkdir -p "$OUT"

if [ ! -f "$FRONTEND/dist/index.html" ]; then
  echo "hive_ui: building $FRONTEND/dist (npm ci && npx vite build)" >&2
  (cd "$FRONTEND" && npm ci --no-audit --no-fund && npx vite build) >"$OUT/frontend-build.log" 2>&1 \
    || { tail -20 "$OUT/frontend-build.log" >&2; die "frontend build failed ($OUT/frontend-build.log)"; }
fi
if [ ! -d "$HERE/driver/node_modules/playwright-core" ]; then
  (cd "$HERE/driver" && npm ci --no-audit --no-fund) >&2 || die "npm ci in $HERE/driver failed"
fi
[ -x "$REPO/.venv/bin/hive-server" ] || "$REPO/scripts/setup"

HOME_DIR=$(mktemp -d "$OUT/home.XXXXXX")
LOG=$OUT/server.log
SERVER_PID=
DRIVER_PID=
stop_pid() {  # TERM, up to 5 s to exit, then KILL
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
  kill "$1" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}
cleanup() {
  stop_pid "$DRIVER_PID"  # the driver closes its Chromium on TERM
  stop_pid "$SERVER_PID"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$REPO/.venv/bin/hive-server" serve --port 0 --home "$HOME_DIR" \
  --agents-dir "$REPO/agents" --queens-dir "$REPO/queens" --ui-dir "$FRONTEND/dist" \
  >"$LOG" 2>&1 &
SERVER_PID=$!

READY=
for _ in $(seq 1 300); do  # up to 30 s for the line with the login URL
  READY=$(grep -m1 -oE 'http://127\.0\.0\.1:[0-9]+/\?token=[^ ]+' "$LOG" 2>/dev/null || true)
  [ -n "$READY" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
[ -n "$READY" ] || { cat "$LOG" >&2; die "server did not start (log: $LOG)"; }
BASE=${READY%%\?token=*}
TOKEN=${READY#*\?token=}
echo "hive_ui: server ${BASE} (pid $SERVER_PID), home $HOME_DIR, out $OUT" >&2

start=$(date +%s)
rc=0
# In the background and waited for, so an INT/TERM to this script runs the cleanup at once.
CHROMIUM=$CHROMIUM node "$HERE/driver/drive.mjs" --base "$BASE" --token "$TOKEN" --out "$OUT" \
  ${DRIVER_ARGS[@]+"${DRIVER_ARGS[@]}"} &
DRIVER_PID=$!
wait "$DRIVER_PID" || rc=$?
DRIVER_PID=
echo "hive_ui: driver took $(( $(date +%s) - start ))s; exit $rc; outputs in $OUT" >&2
exit $rc
