#!/usr/bin/env bash
# End to end, without Docker: links the images' Java runtime (docker/jlink-runtime.sh), starts `tessera serve` on it
# through the images' entry point (docker/tessera) on loopback, probes it with the images' HEALTHCHECK script, makes a
# completion and a chat completion, checks that every metric the dashboard and the rules use is in the real scrape,
# then runs a real Prometheus with docker/prometheus/rules.yml scraping it and checks, over Prometheus's HTTP API,
# that the target is up, the TTFT histogram counts the requests and every dashboard query and recording rule returns
# data. usage: check_metrics_e2e.sh (after mvn package; JAVA_HOME a Java 25 JDK; promtool's package on PATH)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
docker="$root/docker"
models="${TESSERA_MODELS:-$root/../shared/models}"
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "check_metrics_e2e: FAILED $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

target="$root/serving/target"
ls "$target"/serving-*.jar >/dev/null 2>&1 || fail "no serving jar in $target; run mvn package first"
mkdir -p "$work/opt/lib"
cp "$target"/serving-*.jar "$target"/lib/*.jar "$work/opt/lib/"
bash "$docker/jlink-runtime.sh" "$work/opt/lib" "$work/opt/runtime"

port="$(free_port)"
TESSERA_HOME="$work/opt" "$docker/tessera" serve --model "$models/stories260K.gguf" --host 127.0.0.1 --port "$port" \
  --threads 1 >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do
  [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready")" == 200 ]] && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/serve.log" >&2; fail "tessera serve exited"; }
  sleep 0.5
done
[[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready")" == 200 ]] || { cat "$work/serve.log" >&2; fail "serve not ready in 60 s"; }

TESSERA_PORT="$port" bash "$docker/healthcheck.sh" || fail "healthcheck.sh against a healthy server"
if TESSERA_PORT="$(free_port)" bash "$docker/healthcheck.sh" 2>/dev/null; then fail "healthcheck.sh passed with no server"; fi

curl -sf "http://127.0.0.1:$port/v1/completions" -H 'Content-Type: application/json' \
  -d '{"model":"stories260K","prompt":"Once upon a time","max_tokens":8,"temperature":0}' >"$work/completion.json" \
  || fail "completion"
curl -sf "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model":"stories260K","messages":[{"role":"user","content":"Hi"}],"max_tokens":8,"temperature":0}' \
  >"$work/chat.json" || fail "chat completion (Jinjava, java.desktop in the linked runtime)"
grep -q '"text_completion"' "$work/completion.json" || fail "completion body: $(cat "$work/completion.json")"
grep -q '"chat.completion"' "$work/chat.json" || fail "chat body: $(cat "$work/chat.json")"

curl -sf "http://127.0.0.1:$port/metrics" >"$work/metrics.txt" || fail "scrape /metrics"
promtool check metrics <"$work/metrics.txt" || fail "promtool check metrics"
missing=0
used=0
while read -r name; do
  [[ "$name" == up ]] && continue
  used=$((used + 1))
  grep -q "^$name[{ ]" "$work/metrics.txt" || { echo "check_metrics_e2e: $name is used by the dashboard or rules but not exported" >&2; missing=$((missing + 1)); }
done < <(python3 "$docker/test/check_dashboard.py" "$docker" --metrics)
(( missing == 0 )) || fail "$missing metric names missing from the scrape"
echo "check_metrics_e2e: all $used metric names of the dashboard and rules are in the scrape"

prom_port="$(free_port)"
mkdir -p "$work/prometheus"
cp "$docker/prometheus/rules.yml" "$work/prometheus/"
cat >"$work/prometheus/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
scrape_configs:
  - job_name: tessera
    static_configs:
      - targets: ["127.0.0.1:$port"]
YAML
prometheus --config.file="$work/prometheus/prometheus.yml" --storage.tsdb.path="$work/prometheus/data" \
  --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
pids+=($!)
python3 "$docker/test/check_prometheus_queries.py" "http://127.0.0.1:$prom_port" "$docker" 2 60 \
  || { tail -5 "$work/prometheus.log" >&2; fail "Prometheus queries"; }
