#!/usr/bin/env bash
# Tensor-parallel serving under the batching engine: `tessera serve --tp-workers` with N worker processes on loopback,
# loaded by `tessera bench serve` at each concurrency (default 1 and 8) through scripts/bench-engine.sh. Batching must
# gain with concurrency here too: every step carries all running sequences to every rank.
#
#   scripts/bench-tp-serve.sh [--model PATH] [--workers 2] [--threads 1] [--concurrency "1 8"]
#                             [--prompt-tokens 128] [--gen-tokens 64] [--out DIR]
#
# Without --model it writes a synthetic Q8_0 model (dim 1024, 8 layers, 16 heads, 4 KV heads, FFN 2816) once, into
# bench-out/. Results: DIR (default bench-out/tp-serve)/summary.txt, plus the workers' logs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
model=""
workers=2
threads=1
concurrency="1 8"
prompt_tokens=128
gen_tokens=64
out="$here/bench-out/tp-serve"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --prompt-tokens) prompt_tokens="$2"; shift 2 ;;
    --gen-tokens) gen_tokens="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "bench-tp-serve: unknown option $1" >&2; exit 2 ;;
  esac
done
tessera=${TESSERA_CMD:-"$here/tessera"}
mkdir -p "$out" "$here/bench-out"
if [[ -z "$model" ]]; then
  model="$here/bench-out/tp-bench-q8_0.gguf"
  [[ -f "$model" ]] || $tessera synth --dim 1024 --layers 8 --heads 16 --kv-heads 4 --ffn 2816 --type q8_0 --out "$model" --seed 7 --vocab-from "$here/../shared/models/llama.cpp-vocab/ggml-vocab-llama-spm.gguf"
fi
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
list=""
for i in $(seq 1 "$workers"); do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$out/shards$i"
  $tessera worker --listen "127.0.0.1:$port" --shard-dir "$out/shards$i" --threads "$threads" --device cpu 2> "$out/worker$i.log" &
  pids+=($!)
  for _ in $(seq 300); do grep -q "listening on" "$out/worker$i.log" 2>/dev/null && break; sleep 0.2; done
  list="${list:+$list,}127.0.0.1:$port"
done
echo "bench-tp-serve: $workers workers at $list, model $(basename "$model")" | tee "$out/summary.txt"
"$here/scripts/bench-engine.sh" throughput --model "$model" --threads "$threads" --concurrency "$concurrency" \
  --prompt-tokens "$prompt_tokens" --gen-tokens "$gen_tokens" --out "$out" \
  --serve-flag --tp-workers --serve-flag "$list" --serve-flag --device --serve-flag cpu | tee -a "$out/summary.txt"
