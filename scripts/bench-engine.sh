#!/usr/bin/env bash
# The engine's acceptance measurements, end to end over HTTP with `tessera bench serve`:
#   throughput: output tokens/s and TTFT/ITL percentiles at each concurrency (default 1 4 8 16), and the ratio of
#               concurrency 8 to concurrency 1;
#   prefix:     TTFT of a request whose 1024-token prefix is cold, then of requests sharing that prefix (warm),
#               with the server's prefix-cache hit counter before and after.
#   versus:     the same load (concurrency 1 and 8 by default) against `tessera serve` and against llama.cpp's
#               native `llama-server -np 8` (built for this CPU by scripts/llamacpp/build-native.sh), one engine
#               after the other and then again in the opposite order; prints both engines' output tok/s and the ratio.
#
#   scripts/bench-engine.sh [throughput|prefix|all|versus] [--model PATH] [--threads N] [--concurrency "1 4 8 16"]
#                           [--prompt-tokens 128] [--gen-tokens 64] [--waves 2] [--out DIR]
#
# Each concurrency C sends max(8, WAVES * C) requests: more waves weigh the start-up and drain (when fewer than C
# requests are left) less.
#
# Starts `./tessera serve` on a free port (TESSERA_CMD overrides the launcher) and stops it at the end; results go to
# DIR (default bench-out/engine) as JSON, one file per run, plus summary.txt.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
mode="all"
model="$here/bench-out/llama-1b-q4_0.gguf"
threads=2
concurrency="1 4 8 16"
prompt_tokens=128
gen_tokens=64
waves=2
out="$here/bench-out/engine"
serve_flags=()
[[ $# -gt 0 && "$1" != --* ]] && { mode="$1"; shift; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --prompt-tokens) prompt_tokens="$2"; shift 2 ;;
    --gen-tokens) gen_tokens="$2"; shift 2 ;;
    --waves) waves="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --serve-flag) serve_flags+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "bench-engine: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -f "$model" ]] || { echo "bench-engine: $model not found; make it with: ./tessera synth --preset llama-1b --type q4_0 --out $model" >&2; exit 2; }
tessera=${TESSERA_CMD:-"$here/tessera"}
name="$(basename "$model" .gguf)"
mkdir -p "$out"
log="$out/server.log"
server_pid=""
cleanup() { if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi; server_pid=""; }
trap cleanup EXIT
field() { sed -n "s/.*\"$2\":\([-0-9.eE]*\).*/\1/p" "$1" | awk '{printf "%.1f", $1}'; }

if [[ "$mode" == versus ]]; then
  [[ "$concurrency" == "1 4 8 16" ]] && concurrency="1 8"
  peer_bin="$("$here/scripts/llamacpp/build-native.sh" --targets "llama-server")" || { echo "bench-engine: building llama-server failed" >&2; exit 1; }
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
  wait_ready() {  # $1 url, $2 path that answers 200 once the model is loaded
    until curl -sf "$1$2" > /dev/null; do kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; exit 1; }; sleep 0.2; done
  }
  start_engine() {
    local port; port="$(free_port)"
    url="http://127.0.0.1:$port"
    if [[ "$1" == tessera ]]; then
      $tessera serve --model "$model" --threads "$threads" --host 127.0.0.1 --port "$port" --max-num-seqs 8 ${serve_flags[@]+"${serve_flags[@]}"} 2> "$log" &
      server_pid=$!
      wait_ready "$url" /ready
    else
      # -np 8 slots share -c: each slot gets room for one request of the load.
      "$peer_bin/llama-server" -m "$model" -t "$threads" -np 8 -c $(( 8 * (prompt_tokens * 2 + gen_tokens + 64) )) \
        --host 127.0.0.1 --port "$port" --no-webui --metrics > "$log" 2>&1 &
      server_pid=$!
      wait_ready "$url" /health
    fi
  }
  generated() {  # tokens generated so far, from the engine's metrics
    local m=tessera_generation_tokens_total
    [[ "$1" == tessera ]] || m="llamacpp:tokens_predicted_total"
    curl -s "$url/metrics" | awk -v m="$m" 'index($1, m) == 1 && (length($1) == length(m) || substr($1, length(m) + 1, 1) == "{") {s += $NF} END {printf "%.0f", s}'
  }
  summary="$out/versus.txt"
  echo "model $name, $threads threads, $(nproc) cores, $prompt_tokens prompt + $gen_tokens output tokens, load before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$summary"
  for round in 1 2; do
    engines="tessera llama-server"; (( round == 2 )) && engines="llama-server tessera"
    for engine in $engines; do
      start_engine "$engine"
      $tessera bench serve --url "$url" --model "$name" --concurrency 1 --requests 2 --prompt-tokens "$prompt_tokens" --gen-tokens 8 --seed 99 > /dev/null  # warm-up
      for c in $concurrency; do
        n=$(( waves * c < 8 ? 8 : waves * c ))
        f="$out/versus-$engine-c$c-r$round.json"
        before="$(generated "$engine")"
        $tessera bench serve --url "$url" --model "$name" --concurrency "$c" --requests "$n" --prompt-tokens "$prompt_tokens" \
          --gen-tokens "$gen_tokens" --seed $((1000 + c)) --json > "$f" || true
        # The server's own count of generated tokens over the run: a request whose stream the client drops as failed
        # (llama-server ends some streams of a random model's text with a parse error) was still computed.
        rate="$(echo "($(generated "$engine") - $before) / $(field "$f" duration_s)" | bc -l | awk '{printf "%.1f", $1}')"
        echo "$rate" > "${f%.json}.server-rate"
        echo "round $round  $engine  concurrency $c: $rate tok/s generated (server count), $(field "$f" output_throughput) tok/s in completed streams, $(field "$f" failed) failed" | tee -a "$summary"
      done
      cleanup
    done
  done
  printf '%-12s %16s %20s %8s\n' concurrency "tessera tok/s" "llama-server tok/s" ratio | tee -a "$summary"
  for c in $concurrency; do
    t="$(cat "$out"/versus-tessera-c$c-r*.server-rate | sort -n | tail -1)"
    l="$(cat "$out"/versus-llama-server-c$c-r*.server-rate | sort -n | tail -1)"
    printf '%-12s %16s %20s %8s\n' "$c" "$t" "$l" "$(echo "$t / $l" | bc -l 2>/dev/null | cut -c1-5)" | tee -a "$summary"
  done
  echo "(generated tok/s by the servers' counters, best of the two rounds per engine) load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$summary"
  exit 0
fi

$tessera serve --model "$model" --threads "$threads" --host 127.0.0.1 --port 0 ${serve_flags[@]+"${serve_flags[@]}"} 2> "$log" &
server_pid=$!
url=""
until [[ -n "$url" ]]; do
  kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
  url="$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$log" | head -1 | sed 's/listening on //')" || true
  sleep 0.1
done
until curl -sf "$url/ready" > /dev/null; do kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; exit 1; }; sleep 0.2; done
bench() { $tessera bench serve --url "$url" --model "$name" "$@"; }
metric() { curl -s "$url/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
summary="$out/summary.txt"
: > "$summary"
echo "model $name, $threads threads, $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$summary"

if [[ "$mode" == throughput || "$mode" == all ]]; then
  bench --concurrency 1 --requests 2 --prompt-tokens "$prompt_tokens" --gen-tokens 8 --seed 99 > /dev/null  # warm-up (JIT)
  printf '%-5s %9s %9s %9s %9s %9s %9s %9s %9s %7s\n' conc req out_tok/s ttft_p50 ttft_p90 ttft_p99 itl_p50 itl_p90 itl_p99 failed | tee -a "$summary"
  for c in $concurrency; do
    n=$(( waves * c < 8 ? 8 : waves * c ))
    f="$out/throughput-c$c.json"
    # A seed per run: prompts repeated from an earlier run would hit the prefix cache and flatter the later runs.
    bench --concurrency "$c" --requests "$n" --prompt-tokens "$prompt_tokens" --gen-tokens "$gen_tokens" --seed $((1000 + c)) --json > "$f" || true
    printf '%-5s %9s %9s %9s %9s %9s %9s %9s %9s %7s\n' "$c" "$n" "$(field "$f" output_throughput)" \
      "$(field "$f" p50_ttft_ms)" "$(field "$f" p90_ttft_ms)" "$(field "$f" p99_ttft_ms)" \
      "$(field "$f" p50_itl_ms)" "$(field "$f" p90_itl_ms)" "$(field "$f" p99_itl_ms)" "$(field "$f" failed)" | tee -a "$summary"
  done
  if [[ -f "$out/throughput-c1.json" && -f "$out/throughput-c8.json" ]]; then
    echo "output throughput c8 / c1: $(echo "$(field "$out/throughput-c8.json" output_throughput) / $(field "$out/throughput-c1.json" output_throughput)" | bc -l | cut -c1-5)" | tee -a "$summary"
  fi
fi

if [[ "$mode" == prefix || "$mode" == all ]]; then
  echo "prefix-cache hit tokens before the prefix check (from the runs above, should be 0): $(metric tessera_prefix_cache_hits_total)" | tee -a "$summary"
  hits0="$(metric tessera_prefix_cache_hits_total)"
  # Same seed, so the same 1024-token prefix; the first request finds it cold, the next ones warm.
  bench --concurrency 1 --requests 1 --prompt-tokens 1100 --shared-prefix 1024 --gen-tokens 4 --seed 7 --json > "$out/prefix-cold.json"
  hits1="$(metric tessera_prefix_cache_hits_total)"
  bench --concurrency 1 --requests 4 --prompt-tokens 1100 --shared-prefix 1024 --gen-tokens 4 --seed 7 --json > "$out/prefix-warm.json"
  hits2="$(metric tessera_prefix_cache_hits_total)"
  cold="$(field "$out/prefix-cold.json" p50_ttft_ms)"; warm="$(field "$out/prefix-warm.json" p50_ttft_ms)"
  echo "prefix 1024 of ~1100 prompt tokens: cold TTFT $cold ms, warm TTFT p50 $warm ms, warm/cold $(echo "$warm / $cold" | bc -l | cut -c1-5)" | tee -a "$summary"
  echo "prefix-cache hit tokens: before $hits0, after cold $hits1, after 4 warm $hits2" | tee -a "$summary"
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$summary"
