#!/usr/bin/env bash
# Expert parallelism on 4 devices (this server and 3 'tessera expert-worker' processes on one machine), ExFlow's
# coherent mode (one exchange per MoE layer) against the two-all-to-all baseline, with each worker's link to device 0
# through 'tessera linkemu'. For each link setting and mode: output tok/s and TTFT/ITL percentiles at --concurrency,
# and the same load on one process for reference.
#
#   scripts/bench-expert-parallel.sh [--model PATH] [--placement contiguous|round-robin|FILE] [--concurrency 8]
#                                    [--requests 16] [--prompt-tokens 128] [--gen-tokens 64]
#                                    [--links "50us:25gbit 1ms:1gbit"] [--threads 1] [--out DIR]
#
# Without --model it writes a synthetic Q8_0 model once (moe-16x: dim 512, 12 layers, 16 experts top-2, affinity 0.9).
# Results: DIR (default bench-out/expert-parallel)/summary.txt and the JSON of each run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
model=""
placement=contiguous
concurrency=8
requests=16
prompt_tokens=128
gen_tokens=64
links="50us:25gbit 1ms:1gbit"
threads=1
out="$here/bench-out/expert-parallel"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --placement) placement="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --requests) requests="$2"; shift 2 ;;
    --prompt-tokens) prompt_tokens="$2"; shift 2 ;;
    --gen-tokens) gen_tokens="$2"; shift 2 ;;
    --links) links="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "bench-expert-parallel: unknown option $1" >&2; exit 2 ;;
  esac
done
tessera=${TESSERA_CMD:-"$here/tessera"}
mkdir -p "$out" "$here/bench-out"
$tessera --help > /dev/null 2>&1 || true  # the launcher builds the jars here if sources changed, not inside a timed wait
if [[ -z "$model" ]]; then
  model="$here/bench-out/moe-16x-a09-q8_0.gguf"
  [[ -f "$model" ]] || $tessera synth --preset moe-16x --type q8_0 --affinity 0.9 --seed 1 --out "$model" > /dev/null
fi
name="$(basename "$model" .gguf)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "bench-expert-parallel: '$2' not in $1" >&2; cat "$1" >&2; exit 1; }
field() { sed -n "s/.*\"$2\":\([-0-9.eE]*\).*/\1/p" "$1" | awk '{printf "%.1f", $1}'; }
summary="$out/summary.txt"
: > "$summary"
echo "model $name, 4 devices ($threads thread(s) each, $(nproc) cores), placement $placement, concurrency $concurrency, $requests requests of $prompt_tokens prompt + $gen_tokens generated tokens, load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$summary"
printf '%-34s %9s %9s %9s %9s %9s %7s\n' setup out_tok/s ttft_p50 ttft_p99 itl_p50 itl_p99 failed | tee -a "$summary"

# One setup: start serve with the given flags, warm it up, run the load, report.
run() {
  local label="$1"; shift
  local tag="${label// /_}"; tag="${tag//\//_}"
  local log="$out/serve-$tag.log"
  $tessera serve --model "$model" --served-model-name "$name" --threads "$threads" --device cpu --host 127.0.0.1 --port 0 \
    --max-num-seqs 32 --max-num-batched-tokens 512 "$@" 2> "$log" &
  local pid=$!
  pids+=("$pid")
  wait_for "$log" "listening on"
  local url; url="$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$log" | head -1 | sed 's/listening on //')"
  until curl -sf "$url/ready" > /dev/null; do kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }; sleep 0.2; done
  $tessera bench serve --url "$url" --model "$name" --concurrency 1 --requests 1 --prompt-tokens 32 --gen-tokens 4 --seed 99 > /dev/null  # warm-up
  local f="$out/$tag.json"
  $tessera bench serve --url "$url" --model "$name" --concurrency "$concurrency" --requests "$requests" --prompt-tokens "$prompt_tokens" \
    --gen-tokens "$gen_tokens" --seed 7 --timeout 1200 --json > "$f" || true
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  printf '%-34s %9s %9s %9s %9s %9s %7s\n' "$label" "$(field "$f" output_throughput)" "$(field "$f" p50_ttft_ms)" "$(field "$f" p99_ttft_ms)" \
    "$(field "$f" p50_itl_ms)" "$(field "$f" p99_itl_ms)" "$(field "$f" failed)" | tee -a "$summary"
}

run "one process"

workers=""
for i in 1 2 3; do
  port=$(free_port)
  $tessera expert-worker --listen "127.0.0.1:$port" --model "$model" --threads "$threads" 2> "$out/worker$i.log" &
  pids+=($!)
  wait_for "$out/worker$i.log" "listening on"
  workers="${workers:+$workers,}127.0.0.1:$port"
done
for link in $links; do
  delay="${link%%:*}"; rate="${link##*:}"
  collective=$(free_port)
  via=""
  for i in 1 2 3; do
    lport=$(free_port)
    $tessera linkemu --listen "127.0.0.1:$lport" --to "127.0.0.1:$collective" --delay "$delay" --rate "$rate" > "$out/link$i-$delay.log" 2>&1 &
    pids+=($!)
    wait_for "$out/link$i-$delay.log" "linkemu"
    via="${via:+$via,}127.0.0.1:$lport"
  done
  for mode in coherent baseline; do
    run "$mode $delay/$rate" --expert-workers "$workers" --expert-placement "$placement" --expert-mode "$mode" \
      --expert-collective-listen "127.0.0.1:$collective" --expert-collective-via "$via"
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$summary"
