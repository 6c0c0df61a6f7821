#!/usr/bin/env bash
# The compose topology as local processes on loopback, for hosts without Docker: tensor-parallel workers, the server
# (their master when there are workers) and Prometheus with docker/prometheus/rules.yml. Runs in the foreground until
# Ctrl-C or SIGTERM, then stops the server first (it drains for --shutdown-grace), then the workers and Prometheus.
# With --check it makes one completion, asks Prometheus whether the server is up, stops everything and exits 0 or 1.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() {
  cat <<'USAGE'
usage: scripts/cluster-local.sh [options]
  --model PATH             GGUF model (default ../shared/models/stories260K.gguf)
  --workers N              tensor-parallel workers; 0 serves on one process (default 2)
  --port N                 the server's port (default 8000)
  --worker-port N          the first worker's port; the others follow (default 7000)
  --prometheus-port N      Prometheus' port (default 9090)
  --no-prometheus          do not start Prometheus
  --shutdown-grace S       seconds the server drains on SIGTERM (passed when this serve has the flag; default 30)
  --run-dir DIR            logs and Prometheus data (default: a new temporary folder)
  --check                  make one completion, check Prometheus sees the server up, stop, exit 0 or 1
USAGE
}
model="$root/../shared/models/stories260K.gguf"
workers=2
port=8000
worker_port=7000
prometheus_port=9090
prometheus=1
grace=30
run_dir=""
check=0
while (( $# )); do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --worker-port) worker_port="$2"; shift 2 ;;
    --prometheus-port) prometheus_port="$2"; shift 2 ;;
    --no-prometheus) prometheus=0; shift ;;
    --shutdown-grace) grace="$2"; shift 2 ;;
    --run-dir) run_dir="$2"; shift 2 ;;
    --check) check=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "cluster-local: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ -f "$model" ]] || { echo "cluster-local: --model $model is not a file" >&2; exit 2; }
[[ "$workers" =~ ^[0-9]+$ ]] || { echo "cluster-local: --workers must be a number, got $workers" >&2; exit 2; }
if (( prometheus )) && ! command -v prometheus >/dev/null; then
  echo "cluster-local: prometheus not found (Debian package prometheus), or pass --no-prometheus" >&2; exit 1
fi
own_run_dir=0
[[ -z "$run_dir" ]] && { run_dir="$(mktemp -d -t tessera-cluster-XXXXXX)"; own_run_dir=1; }
mkdir -p "$run_dir"
tessera="$root/tessera"
"$tessera" --help >/dev/null 2>&1 || true   # builds the jars once, before several processes race to

pids=()
names=()
start() {
  local name="$1"; shift
  "$@" >"$run_dir/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
  echo "cluster-local: $name (pid $!): $* (log $run_dir/$name.log)" >&2
}
stop_all() {
  trap - INT TERM EXIT
  # Server first, so it drains while its workers are still there; then the rest.
  for i in "${!pids[@]}"; do [[ "${names[$i]}" == server ]] && kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  for i in "${!pids[@]}"; do [[ "${names[$i]}" == server ]] && wait "${pids[$i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  # A check leaves nothing behind; a run keeps its logs.
  if (( check && own_run_dir )); then rm -rf "$run_dir"; fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

workers_list=""
for (( i = 0; i < workers; i++ )); do
  p=$((worker_port + i))
  start "worker-$i" "$tessera" worker --listen "127.0.0.1:$p"
  workers_list+="${workers_list:+,}127.0.0.1:$p"
done
serve=(serve --model "$model" --host 127.0.0.1 --port "$port")
[[ -n "$workers_list" ]] && serve+=(--tp-workers "$workers_list")
# --shutdown-grace comes with the HTTP hardening; pass it where this build has it.
"$tessera" serve --help 2>&1 | grep -q -- '--shutdown-grace' && serve+=(--shutdown-grace "$grace")
# Workers listen before the master connects: wait for their ports.
for (( i = 0; i < workers; i++ )); do
  for _ in $(seq 1 120); do (exec 3<>"/dev/tcp/127.0.0.1/$((worker_port + i))") 2>/dev/null && break; sleep 0.5; done
done
start server "$tessera" "${serve[@]}"

if (( prometheus )); then
  mkdir -p "$run_dir/prometheus"
  cp "$root/docker/prometheus/rules.yml" "$run_dir/prometheus/"
  cat >"$run_dir/prometheus/prometheus.yml" <<YAML
# docker/prometheus/prometheus.yml for loopback: the same job and rules, a static target instead of compose DNS.
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files: [rules.yml]
scrape_configs:
  - job_name: tessera
    static_configs:
      - targets: ["127.0.0.1:$port"]
        labels:
          service: ${workers_list:+tessera-tp}${workers_list:-tessera}
YAML
  start prometheus prometheus --config.file="$run_dir/prometheus/prometheus.yml" \
    --storage.tsdb.path="$run_dir/prometheus/data" --web.listen-address="127.0.0.1:$prometheus_port"
fi

ready=0
for _ in $(seq 1 240); do
  if [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready")" == 200 ]]; then ready=1; break; fi
  for i in "${!pids[@]}"; do
    kill -0 "${pids[$i]}" 2>/dev/null || { echo "cluster-local: ${names[$i]} exited; log:" >&2; tail -20 "$run_dir/${names[$i]}.log" >&2; exit 1; }
  done
  sleep 0.5
done
(( ready )) || { echo "cluster-local: server not ready after 120 s; see $run_dir/server.log" >&2; exit 1; }
echo "cluster-local: ready: http://127.0.0.1:$port (${workers} workers)${prometheus:+, Prometheus http://127.0.0.1:$prometheus_port}" >&2

if (( check )); then
  name="$(basename "$model" .gguf)"
  curl -sf "http://127.0.0.1:$port/v1/completions" -H 'Content-Type: application/json' \
    -d "{\"model\":\"$name\",\"prompt\":\"Once upon a time\",\"max_tokens\":8,\"temperature\":0}" \
    | grep -q '"text_completion"' || { echo "cluster-local: completion failed; see $run_dir/server.log" >&2; exit 1; }
  echo "cluster-local: completion answered" >&2
  if (( prometheus )); then
    for _ in $(seq 1 60); do
      curl -s "http://127.0.0.1:$prometheus_port/api/v1/query" --data-urlencode 'query=up{job="tessera"} == 1' \
        | grep -q '"value"' && { echo "cluster-local: Prometheus sees the server up" >&2; exit 0; }
      sleep 1
    done
    echo "cluster-local: Prometheus never saw the server up; see $run_dir/prometheus.log" >&2
    exit 1
  fi
  exit 0
fi
wait -n "${pids[@]}" || true
echo "cluster-local: a process exited; stopping the rest" >&2
