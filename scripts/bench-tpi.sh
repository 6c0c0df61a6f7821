#!/usr/bin/env bash
# TPI-LLM benchmark: synthetic llama-7b Q4_0 on 4 devices (master + 3 workers, --memory-window 2) vs the whole model
# in one process: TTFT, per-token latency and peak RSS per process. Every link between the master and a worker goes
# through its own 'tessera linkemu' (DELAY one way, RATE per direction): the control connection (worker's --listen)
# and the allreduce connection (the master's --tp-allreduce-listen, reached via --tp-allreduce-via).
# Making the 3.8 GB model takes minutes; pass MODEL=... to reuse one.
# Usage: scripts/bench-tpi.sh [OUT_DIR]
#   env: MODEL=OUT_DIR/llama-7b-q4_0.gguf PROMPT_TOKENS=16 GEN_TOKENS=8 REPS=1 THREADS=1 DELAY=1ms RATE=300mbit
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$here/bench-out/tpi}"
mkdir -p "$out"
tessera="$here/tessera"
model="${MODEL:-$out/llama-7b-q4_0.gguf}"
prompt="${PROMPT_TOKENS:-16}" gen="${GEN_TOKENS:-8}" reps="${REPS:-1}" threads="${THREADS:-1}"
delay="${DELAY:-1ms}" rate="${RATE:-300mbit}"
pids=() worker_pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

[[ -f "$model" ]] || "$tessera" synth --preset llama-7b --type q4_0 --out "$model"
shards="$out/shards"
if ! ls "$shards"/"$(basename "${model%.gguf}")".tp1-1-1-1.rank3.gguf >/dev/null 2>&1; then
  "$tessera" shard --model "$model" --tp-weights 1,1,1,1 --out-dir "$shards" >/dev/null
fi

# Peak RSS of a live process from /proc (VmHWM).
peak_rss() { awk '/VmHWM/ {print $2 " kB"}' "/proc/$1/status" 2>/dev/null || echo "?"; }

collective=47960            # the master's allreduce listener; each worker reaches it through its own emulator
workers=() vias=()
for i in 1 2 3; do
  port=$((47900 + i)) emu=$((47950 + i)) arEmu=$((47960 + i))
  "$tessera" worker --listen 127.0.0.1:$port --shard-dir "$shards" --memory-window 2 --threads "$threads" \
      2> "$out/worker$i.log" & pids+=($!) worker_pids+=($!)
  "$tessera" linkemu --listen 127.0.0.1:$emu --to 127.0.0.1:$port --delay "$delay" --rate "$rate" > /dev/null 2>&1 & pids+=($!)
  "$tessera" linkemu --listen 127.0.0.1:$arEmu --to 127.0.0.1:$collective --delay "$delay" --rate "$rate" > /dev/null 2>&1 & pids+=($!)
  workers+=("127.0.0.1:$emu") vias+=("127.0.0.1:$arEmu")
done
for i in 1 2 3; do   # wait until each worker listens
  for _ in $(seq 100); do grep -q "listening on" "$out/worker$i.log" 2>/dev/null && break; sleep 0.2; done
done
sleep 1
list="$(IFS=,; echo "${workers[*]}")" via="$(IFS=,; echo "${vias[*]}")"

cmd=("$tessera" bench --model "$model" --prompt-tokens "$prompt" --gen-tokens "$gen" --reps "$reps" --threads "$threads"
     --tp-workers "$list" --tp-weights 1,1,1,1 --memory-window 2 --tp-allreduce-listen 127.0.0.1:$collective --tp-allreduce-via "$via" --json)
echo "== 4 devices, W=2, every link $delay / $rate" | tee "$out/result.txt"
echo "\$ ${cmd[*]}" >> "$out/result.txt"
/usr/bin/time -v "${cmd[@]}" 2> "$out/master.err" | tee -a "$out/result.txt"
grep -E "Maximum resident" "$out/master.err" | sed 's/^\s*/master (rank 0) /' | tee -a "$out/result.txt"
grep "tessera bench: " "$out/master.err" | tee -a "$out/result.txt"
for i in 1 2 3; do echo "worker $i (rank $i) peak RSS $(peak_rss "${worker_pids[$((i - 1))]}")" | tee -a "$out/result.txt"; done
cleanup; pids=()

cmd=("$tessera" bench --model "$model" --prompt-tokens "$prompt" --gen-tokens "$gen" --reps "$reps" --threads "$threads" --device cpu --json)
echo "== whole model, one process" | tee -a "$out/result.txt"
echo "\$ ${cmd[*]}" >> "$out/result.txt"
/usr/bin/time -v "${cmd[@]}" 2> "$out/single.err" | tee -a "$out/result.txt"
grep -E "Maximum resident" "$out/single.err" | sed 's/^\s*/single /' | tee -a "$out/result.txt"
ls -l "$model" "$shards"/*.gguf | awk '{print $5, $9}' | tee -a "$out/result.txt"
