#!/usr/bin/env bash
# Load check of `tessera serve`: time from launch to /ready, then requests/s and p50/p99 latency of
# non-streamed completions at each concurrency. Only talks to 127.0.0.1; bounded in requests and time.
#
#   scripts/serve-load.sh [--model PATH] [--requests N] [--concurrency "1 8"] [--max-tokens 16] [--url URL]
#
# Without --url it launches `./tessera serve --port 0` itself (TESSERA_CMD overrides the launcher) and stops it
# at the end. Needs curl; the load itself comes from scripts/ServeLoad.java (java.net.http, one thread per
# concurrent client).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model="$here/../shared/models/stories260K.gguf"
requests=200
concurrency="1 8"
max_tokens=16
url=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --requests) requests="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --max-tokens) max_tokens="$2"; shift 2 ;;
    --url) url="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "serve-load: unknown option $1" >&2; exit 2 ;;
  esac
done
name="$(basename "$model" .gguf)"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [[ -z "$url" ]]; then
  start_ns=$(date +%s%N)
  ${TESSERA_CMD:-"$here/tessera"} serve --model "$model" --host 127.0.0.1 --port 0 2> "$work/server.log" &
  server_pid=$!
  for _ in $(seq 1 600); do
    url="$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$work/server.log" | head -1 | sed 's/listening on //')" || true
    [[ -n "$url" ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.05
  done
  listen_ns=$(date +%s%N)
  until curl -sf "$url/ready" > /dev/null; do
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.05
  done
  ready_ns=$(date +%s%N)
  printf 'launch to listening: %.2f s; launch to ready: %.2f s\n' \
    "$(echo "($listen_ns - $start_ns) / 1000000000" | bc -l)" "$(echo "($ready_ns - $start_ns) / 1000000000" | bc -l)"
fi

java="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}/bin/java"
for c in $concurrency; do
  "$java" "$here/scripts/ServeLoad.java" "$url" "$name" "$requests" "$c" "$max_tokens"
done
