#!/usr/bin/env bash
# Tessera vs llama.cpp (through node-llama-cpp@3.21.1, prebuilt CPU binary) on the synthetic
# llama-1b GGUF files, same machine, same thread count, one run. See docs/BENCHMARKS.md.
#
#   scripts/bench-cpu.sh [--threads N] [--prompt-tokens 128] [--gen-tokens 64] [--reps 3]
#                        [--rounds 1] [--types "q8_0 q4_0"] [--out-dir bench-out]
#
# Results: a markdown table on stdout and OUT_DIR/results.json; progress on stderr; raw engine
# output and logs under OUT_DIR/raw/. Exits 1 when a step fails (slow results are not failures),
# 2 on bad usage. TESSERA=path overrides the ./tessera launcher.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

usage() {
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
log() { printf '[bench-cpu] %s\n' "$*" >&2; }
fail() { printf 'bench-cpu: %s\n' "$*" >&2; exit 1; }

physical_cores() {
    local n
    n=$(lscpu -p=Core,Socket 2>/dev/null | grep -v '^#' | sort -u | wc -l || true)
    if [[ -z "$n" || "$n" -lt 1 ]]; then n=$(nproc); fi
    echo "$n"
}

THREADS=$(physical_cores)
PROMPT_TOKENS=128
GEN_TOKENS=64
REPS=3
ROUNDS=1
TYPES="q8_0 q4_0"
OUT_DIR=bench-out
while [[ $# -gt 0 ]]; do
    case "$1" in
        --threads) THREADS=${2:?}; shift 2 ;;
        --prompt-tokens) PROMPT_TOKENS=${2:?}; shift 2 ;;
        --gen-tokens) GEN_TOKENS=${2:?}; shift 2 ;;
        --reps) REPS=${2:?}; shift 2 ;;
        --rounds) ROUNDS=${2:?}; shift 2 ;;
        --types) TYPES=${2:?}; shift 2 ;;
        --out-dir) OUT_DIR=${2:?}; shift 2 ;;
        -h|--help) usage ;;
        *) echo "bench-cpu: unknown flag $1" >&2; usage ;;
    esac
done
for value in "$THREADS" "$PROMPT_TOKENS" "$GEN_TOKENS" "$REPS" "$ROUNDS"; do
    [[ "$value" =~ ^[1-9][0-9]*$ ]] || { echo "bench-cpu: expected a positive integer, found '$value'" >&2; exit 2; }
done
for type in $TYPES; do
    [[ "$type" =~ ^(q8_0|q4_0)$ ]] || { echo "bench-cpu: --types: expected q8_0 and/or q4_0, found '$type'" >&2; exit 2; }
done

# (1) tools
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
export PATH="$JAVA_HOME/bin:$PATH"
TESSERA=${TESSERA:-$ROOT/tessera}
[[ -x "$TESSERA" ]] || fail "tessera launcher: expected an executable at $TESSERA, found none (build it, or set TESSERA=path)"
command -v node >/dev/null || fail "node: expected on PATH (Node.js 20+), found none"
command -v gcc >/dev/null || fail "gcc: expected on PATH for the bandwidth probe, found none"
# The launcher builds the jars when sources changed; do that now, not inside a timed or
# memory-measured call.
"$TESSERA" --help >/dev/null 2>&1 || fail "$TESSERA --help failed (does the build pass?)"
mkdir -p "$OUT_DIR/raw"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
RAW="$OUT_DIR/raw"
rm -f "$RAW"/*.json "$RAW"/*.log "$RAW"/*.txt
LLAMA_DIR="$ROOT/scripts/llamacpp"

# (2) node-llama-cpp, from the lockfile; reinstall only when the lockfile changed.
if [[ ! -f "$LLAMA_DIR/node_modules/.package-lock.json" \
      || "$LLAMA_DIR/package-lock.json" -nt "$LLAMA_DIR/node_modules/.package-lock.json" ]]; then
    log "npm ci in scripts/llamacpp (node-llama-cpp 3.21.1 and its prebuilt binaries)"
    (cd "$LLAMA_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2) || fail "npm ci in $LLAMA_DIR failed"
fi

# (3) bandwidth probe
MEMBW="$OUT_DIR/membw"
if [[ ! -x "$MEMBW" || "$ROOT/scripts/membw/membw.c" -nt "$MEMBW" ]]; then
    log "building $MEMBW"
    gcc -O2 -march=native -fopenmp -o "$MEMBW" "$ROOT/scripts/membw/membw.c" || fail "gcc scripts/membw/membw.c failed"
fi

# (4) synthetic models
for type in $TYPES; do
    model="$OUT_DIR/llama-1b-$type.gguf"
    if [[ ! -s "$model" ]]; then
        log "synthesizing $model"
        "$TESSERA" synth --preset llama-1b --type "$type" --out "$model.tmp" >&2 \
            || { rm -f "$model.tmp"; fail "tessera synth --preset llama-1b --type $type failed"; }
        mv "$model.tmp" "$model"
    fi
    node "$LLAMA_DIR/gguf-weights.mjs" "$model" > "$RAW/weights-$type.json" || fail "reading the tensor directory of $model failed"
done

# (5) bandwidth, same thread count
log "measuring read bandwidth with $THREADS threads"
"$MEMBW" --threads "$THREADS" --size-mib 1024 --passes 10 > "$RAW/membw.json" || fail "$MEMBW failed"

# (6) speed, engines alternating (order flips every round) to spread drift over both.
TESSERA_REPS_FLAG=()
if "$TESSERA" bench --help 2>&1 | grep -q -- '--reps'; then TESSERA_REPS_FLAG=(--reps "$REPS"); fi
FAILED=0
run_llamacpp() {  # type round
    local model="$OUT_DIR/llama-1b-$1.gguf" out="$RAW/llamacpp-$1-round$2"
    log "llama.cpp  $1 round $2"
    if ! (cd "$LLAMA_DIR" && node bench.mjs --model "$model" --threads "$THREADS" \
            --prompt-tokens "$PROMPT_TOKENS" --gen-tokens "$GEN_TOKENS" --reps "$REPS") > "$out.txt" 2> "$out.log"; then
        log "llama.cpp bench failed on $model, see $out.log"; FAILED=1
    fi
}
run_tessera() {  # type round
    local model="$OUT_DIR/llama-1b-$1.gguf" out="$RAW/tessera-$1-round$2"
    log "tessera    $1 round $2"
    if ! "$TESSERA" bench --model "$model" --prompt-tokens "$PROMPT_TOKENS" --gen-tokens "$GEN_TOKENS" \
            --threads "$THREADS" "${TESSERA_REPS_FLAG[@]}" --json > "$out.txt" 2> "$out.log"; then
        log "tessera bench failed on $model, see $out.log"; FAILED=1
    fi
}
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v load="${LOAD_BEFORE%% *}" 'BEGIN { exit !(load >= 1.0) }'; then
    # ggml's thread pool spins at barriers: with other busy processes on the cores, llama.cpp at
    # --threads = cores can run several times slower, which would flatter Tessera's ratios.
    log "warning: 1-minute load average is $LOAD_BEFORE before the run; other work is using the CPUs, numbers will be noisy"
fi
for ((round = 1; round <= ROUNDS; round++)); do
    for type in $TYPES; do
        if (( round % 2 == 1 )); then run_llamacpp "$type" "$round"; run_tessera "$type" "$round"
        else run_tessera "$type" "$round"; run_llamacpp "$type" "$round"; fi
    done
done

# (7) peak resident memory of a short generation on the q4_0 file
RSS_MODEL="$OUT_DIR/llama-1b-q4_0.gguf"
if [[ -s "$RSS_MODEL" ]]; then
    log "peak RSS of tessera generate on $RSS_MODEL"
    generate=("$TESSERA" generate --model "$RSS_MODEL" --prompt "Once upon a time" --max-tokens 32 --threads "$THREADS")
    if [[ -x /usr/bin/time ]]; then
        if /usr/bin/time -v -o "$RAW/generate-time.txt" "${generate[@]}" > "$RAW/generate.txt" 2> "$RAW/generate.log"; then
            kib=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$RAW/generate-time.txt")
            echo "{\"peak_rss_bytes\": $((kib * 1024)), \"method\": \"/usr/bin/time -v\"}" > "$RAW/rss.json"
        else
            log "tessera generate failed, see $RAW/generate.log"; FAILED=1
        fi
    else
        # getrusage(RUSAGE_CHILDREN).ru_maxrss is what /usr/bin/time reports, in KiB on Linux.
        if python3 -c 'import resource, subprocess, sys, json
rc = subprocess.call(sys.argv[2:], stdout=open(sys.argv[1] + "/generate.txt", "w"), stderr=open(sys.argv[1] + "/generate.log", "w"))
kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
open(sys.argv[1] + "/rss.json", "w").write(json.dumps({"peak_rss_bytes": kib * 1024, "method": "getrusage"}))
sys.exit(rc)' "$RAW" "${generate[@]}"; then :; else
            log "tessera generate failed, see $RAW/generate.log"; FAILED=1
        fi
    fi
else
    log "no q4_0 file in --types, skipping the memory check"
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# (8) table and results.json
node "$LLAMA_DIR/report.mjs" --raw "$RAW" --out "$OUT_DIR/results.json" --types "$TYPES" --threads "$THREADS" \
    --prompt-tokens "$PROMPT_TOKENS" --gen-tokens "$GEN_TOKENS" --reps "$REPS" --rounds "$ROUNDS" \
    --load-before "$LOAD_BEFORE" --load-after "$LOAD_AFTER" || FAILED=1
exit "$FAILED"
