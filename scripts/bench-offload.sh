#!/usr/bin/env bash
# Attention offloading (Lamina) against local attention, on one machine. The compute node has a fixed KV budget
# (--compute-kv); offloaded, it keeps its weights and dense work and sends attention to two memory nodes
# ('tessera attention-worker', --node-kv each) through 'tessera linkemu' links. For each setup: the most concurrent
# SEQ-token sequences its KV pool holds (read from the server's pool, then served at that concurrency with no
# preemption), output tok/s and TTFT/ITL percentiles at that concurrency, and for the offloaded runs the share of step
# time the compute node waited on the network and the bytes per token per layer against Lamina's (2 + 2/G)·e·d.
#
#   scripts/bench-offload.sh [--model PATH] [--seq-tokens 2048] [--gen-tokens 32] [--compute-kv 32MiB]
#                            [--node-kv 32MiB] [--links "50us:25gbit 1ms:1gbit"] [--wire f16] [--threads 1] [--out DIR]
#
# Without --model it writes a synthetic Q8_0 model once (tiny preset: dim 256, 4 layers, 8/4 heads, context 4096).
# Results: DIR (default bench-out/offload)/summary.txt and the JSON of each run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
model=""
seq_tokens=2048
gen_tokens=32
compute_kv=32MiB
node_kv=32MiB
links="50us:25gbit 1ms:1gbit"
wire=f16
threads=1
out="$here/bench-out/offload"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --seq-tokens) seq_tokens="$2"; shift 2 ;;
    --gen-tokens) gen_tokens="$2"; shift 2 ;;
    --compute-kv) compute_kv="$2"; shift 2 ;;
    --node-kv) node_kv="$2"; shift 2 ;;
    --links) links="$2"; shift 2 ;;
    --wire) wire="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "bench-offload: unknown option $1" >&2; exit 2 ;;
  esac
done
tessera=${TESSERA_CMD:-"$here/tessera"}
mkdir -p "$out" "$here/bench-out"
$tessera --help > /dev/null 2>&1 || true  # the launcher builds the jars here if sources changed, not inside a timed wait
if [[ -z "$model" ]]; then
  model="$here/bench-out/offload-tiny-q8_0.gguf"
  [[ -f "$model" ]] || $tessera synth --preset tiny --type q8_0 --out "$model" --seed 7 > /dev/null
fi
name="$(basename "$model" .gguf)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "bench-offload: '$2' not in $1" >&2; cat "$1" >&2; exit 1; }
field() { sed -n "s/.*\"$2\":\([-0-9.eE]*\).*/\1/p" "$1" | awk '{printf "%.1f", $1}'; }
summary="$out/summary.txt"
: > "$summary"
echo "model $name, $seq_tokens-token sequences ($gen_tokens generated), compute node KV $compute_kv, memory nodes 2 x $node_kv, wire $wire, $threads thread(s) per process, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$summary"
printf '%-28s %5s %5s %9s %9s %9s %9s %9s %7s %7s %9s %9s\n' setup seqs preempt out_tok/s ttft_p50 ttft_p99 itl_p50 itl_p99 failed wait% B/tok/lyr paper | tee -a "$summary"

# One setup: start serve with the given flags, size the load from its KV pool, run it, report.
run() {
  local label="$1"; shift
  local log="$out/serve-$label.log"
  $tessera serve --model "$model" --served-model-name "$name" --threads "$threads" --device cpu --host 127.0.0.1 --port 0 \
    --max-num-seqs 64 --max-num-batched-tokens 512 "$@" 2> "$log" &
  local pid=$!
  pids+=("$pid")
  wait_for "$log" "listening on"
  local url; url="$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$log" | head -1 | sed 's/listening on //')"
  until curl -sf "$url/ready" > /dev/null; do kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }; sleep 0.2; done
  metric() { curl -s "$url/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
  local blocks; blocks="$(metric tessera_kv_cache_blocks | cut -d. -f1)"
  local seqs=$(( blocks / ((seq_tokens + 15) / 16) ))
  $tessera bench serve --url "$url" --model "$name" --concurrency 1 --requests 1 --prompt-tokens 64 --gen-tokens 4 --seed 99 > /dev/null  # warm-up
  local p0; p0="$(metric tessera_num_preemptions_total)"
  local f="$out/$label.json"
  $tessera bench serve --url "$url" --model "$name" --concurrency "$seqs" --requests "$seqs" --prompt-tokens $(( seq_tokens - gen_tokens - 16 )) \
    --gen-tokens "$gen_tokens" --seed 7 --timeout 1200 --json > "$f" || true
  local preempt; preempt="$(awk -v a="$(metric tessera_num_preemptions_total)" -v b="$p0" 'BEGIN {printf "%d", a - b}')"
  local waitp="-" bytes="-" paper="-"
  if [[ "$*" == *attention-workers* ]]; then
    waitp="$(awk -v r="$(metric tessera_offload_network_wait_ratio)" 'BEGIN {printf "%.1f", 100 * r}')"
    bytes="$(metric tessera_offload_wire_bytes_per_token_layer | awk '{printf "%.0f", $1}')"
    paper="$(metric tessera_offload_model_bytes_per_token_layer | awk '{printf "%.0f", $1}')"
  fi
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  printf '%-28s %5s %5s %9s %9s %9s %9s %9s %7s %7s %9s %9s\n' "$label" "$seqs" "$preempt" "$(field "$f" output_throughput)" \
    "$(field "$f" p50_ttft_ms)" "$(field "$f" p99_ttft_ms)" "$(field "$f" p50_itl_ms)" "$(field "$f" p99_itl_ms)" "$(field "$f" failed)" \
    "$waitp" "$bytes" "${paper:--}" | tee -a "$summary"
}

run local --kv-cache-memory "$compute_kv"

# Two memory nodes, each behind its own emulated link, for every link setting.
nodes=()
for i in 1 2; do
  port=$(free_port)
  $tessera attention-worker --listen "127.0.0.1:$port" --kv-cache-memory "$node_kv" --threads "$threads" 2> "$out/node$i.log" &
  pids+=($!)
  wait_for "$out/node$i.log" "listening on"
  nodes+=("$port")
done
for link in $links; do
  delay="${link%%:*}"; rate="${link##*:}"
  list=""
  for i in 0 1; do
    lport=$(free_port)
    $tessera linkemu --listen "127.0.0.1:$lport" --to "127.0.0.1:${nodes[$i]}" --delay "$delay" --rate "$rate" > "$out/link$i-$delay.log" 2>&1 &
    pids+=($!)
    wait_for "$out/link$i-$delay.log" "linkemu"
    list="${list:+$list,}127.0.0.1:$lport"
  done
  run "offload-2-nodes-$delay-$rate" --attention-workers "$list" --offload-wire "$wire"
  # The same without the staggered pipeline: one micro-batch per step, so the device idles during every remote call.
  [[ "$link" == "${links%% *}" ]] && run "  same, 1 micro-batch" --attention-workers "$list" --offload-wire "$wire" --offload-micro-batches 1
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$summary"
