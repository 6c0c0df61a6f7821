#!/usr/bin/env bash
# TPI-LLM benchmark: synthetic llama-7b Q4_0 on 4 devices (master + 3 workers, --memory-window 2) vs the whole model
# in one process: TTFT, per-token latency and peak RSS per process. Long: making the 3.8 GB model takes minutes.
# Usage: scripts/bench-tpi.sh [OUT_DIR]   (env: PROMPT_TOKENS=32 GEN_TOKENS=16 THREADS=1 DELAY=1ms RATE=300mbit)
#
# Limitation: linkemu sits on the workers' control connections only. The allreduce links are opened by
# CollectiveGroup straight to the master's collective listener, so they do not pass through linkemu yet; the
# allreduce time reported is loopback time. Routing them needs a per-rank collective address override (unfinished).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$here/bench-out/tpi}"
mkdir -p "$out"
tessera="$here/tessera"
model="$out/llama-7b-q4_0.gguf"
prompt="${PROMPT_TOKENS:-32}" gen="${GEN_TOKENS:-16}" threads="${THREADS:-1}"
delay="${DELAY:-1ms}" rate="${RATE:-300mbit}"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

[[ -f "$model" ]] || "$tessera" synth --preset llama-7b --type q4_0 --out "$model"
"$tessera" shard --model "$model" --tp-weights 1,1,1,1 --out-dir "$out/shards" >/dev/null

# Peak RSS of a process from /proc (VmHWM), read just before it is killed.
peak_rss() { awk '/VmHWM/ {print $2 " kB"}' "/proc/$1/status" 2>/dev/null || echo "?"; }

workers=()
for i in 1 2 3; do
  port=$((47900 + i)) emu=$((47950 + i))
  "$tessera" worker --listen 127.0.0.1:$port --shard-dir "$out/shards" --memory-window 2 --threads "$threads" \
      2> "$out/worker$i.log" & pids+=($!)
  "$tessera" linkemu --listen 127.0.0.1:$emu --to 127.0.0.1:$port --delay "$delay" --rate "$rate" > /dev/null & pids+=($!)
  workers+=("127.0.0.1:$emu")
done
sleep 3
list="$(IFS=,; echo "${workers[*]}")"

echo "== 4 devices, W=2, links $delay / $rate" | tee "$out/result.txt"
/usr/bin/time -v "$tessera" bench --model "$model" --prompt-tokens "$prompt" --gen-tokens "$gen" --reps 1 --threads "$threads" \
    --tp-workers "$list" --tp-weights 1,1,1,1 --memory-window 2 --json 2> "$out/master.err" | tee -a "$out/result.txt"
grep -E "Maximum resident" "$out/master.err" | sed 's/^/master /' | tee -a "$out/result.txt"
grep "tessera bench: .*blocks resident" "$out/master.err" | tee -a "$out/result.txt"
for i in 0 2 4; do echo "worker pid ${pids[$i]} peak RSS $(peak_rss "${pids[$i]}")" | tee -a "$out/result.txt"; done

echo "== whole model, one process" | tee -a "$out/result.txt"
/usr/bin/time -v "$tessera" bench --model "$model" --prompt-tokens "$prompt" --gen-tokens "$gen" --reps 1 --threads "$threads" \
    --device cpu --json 2> "$out/single.err" | tee -a "$out/result.txt"
grep -E "Maximum resident" "$out/single.err" | sed 's/^/single /' | tee -a "$out/result.txt"
