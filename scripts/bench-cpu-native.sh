#!/usr/bin/env bash
# Tessera vs llama.cpp built for this CPU (GGML_NATIVE, from node-llama-cpp's source bundle; see
# scripts/llamacpp/build-native.sh) on the files users download: llama-quantize presets made from one F16
# synthetic llama-1b model. Same thread count, engines alternating per file, one run. See docs/BENCHMARKS-NATIVE.md.
#
#   scripts/bench-cpu-native.sh [--threads 2] [--prompt-tokens 128] [--gen-tokens 64] [--reps 3] [--rounds 1]
#                               [--files "q4_k_m q4_0 q4_0-pure q8_0"] (also q4_k_s q5_k_m q6_k q3_k_m q2_k q5_0 q4_1 q5_1 iq4_nl iq4_xs) [--out-dir bench-native] [--no-rss]
#                               [--preset llama-1b|moe-8x1b|...]   (any 'tessera synth' preset; moe-* are MoE models)
#                               [--arch ARCH]   (the preset's shape as another architecture: 'tessera synth --arch';
#                                                files are then named PRESET-ARCH-TYPE.gguf, e.g. moe-8x1b-deepseek)
#
# Results: a markdown table on stdout (prefill and decode tok/s and ratios, peak RSS of `tessera generate`
# against the file size); raw outputs under OUT_DIR/raw/. `tessera bench` decodes after its prompt, so the decode
# ratio is against llama-bench's tg at the same depth (-d PROMPT_TOKENS); its tg from an empty cache is shown too.
# With --rounds N, each round runs both engines back to back on every file, and a ratio is the median of the N
# per-round ratios, with their range.
# Exits 1 when a step fails, 2 on bad usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
usage() { sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
log() { printf '[bench-cpu-native] %s\n' "$*" >&2; }
fail() { printf 'bench-cpu-native: %s\n' "$*" >&2; exit 1; }

THREADS=2
PROMPT_TOKENS=128
GEN_TOKENS=64
REPS=3
ROUNDS=1
FILES="q4_k_m q4_0 q4_0-pure q8_0"
OUT_DIR=bench-native
RSS=1
PRESET=llama-1b
ARCH=
while [[ $# -gt 0 ]]; do
    case "$1" in
        --threads) THREADS=${2:?}; shift 2 ;;
        --prompt-tokens) PROMPT_TOKENS=${2:?}; shift 2 ;;
        --gen-tokens) GEN_TOKENS=${2:?}; shift 2 ;;
        --reps) REPS=${2:?}; shift 2 ;;
        --rounds) ROUNDS=${2:?}; shift 2 ;;
        --files) FILES=${2:?}; shift 2 ;;
        --out-dir) OUT_DIR=${2:?}; shift 2 ;;
        --no-rss) RSS=0; shift ;;
        --preset) PRESET=${2:?}; shift 2 ;;
        --arch) ARCH=${2:?}; shift 2 ;;
        -h|--help) usage ;;
        *) echo "bench-cpu-native: unknown flag $1" >&2; usage ;;
    esac
done
for value in "$THREADS" "$PROMPT_TOKENS" "$GEN_TOKENS" "$REPS" "$ROUNDS"; do
    [[ "$value" =~ ^[1-9][0-9]*$ ]] || { echo "bench-cpu-native: expected a positive integer, found '$value'" >&2; exit 2; }
done
# llama-quantize preset per file name; "-pure" adds --pure (every matrix in the preset's type, Q6_K output included).
preset() {
    case "$1" in
        q4_k_m) echo Q4_K_M ;; q4_k_s) echo Q4_K_S ;; q5_k_m) echo Q5_K_M ;; q6_k) echo Q6_K ;; q3_k_m) echo Q3_K_M ;; q2_k) echo Q2_K ;;
        q4_0|q4_0-pure) echo Q4_0 ;; q8_0) echo Q8_0 ;; q5_0) echo Q5_0 ;; q4_1) echo Q4_1 ;; q5_1) echo Q5_1 ;;
        iq4_nl) echo IQ4_NL ;; iq4_xs) echo IQ4_XS ;;
        *) return 1 ;;
    esac
}
for f in $FILES; do preset "$f" >/dev/null || { echo "bench-cpu-native: --files: unknown '$f'" >&2; exit 2; }; done

export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
export PATH="$JAVA_HOME/bin:$PATH"
TESSERA=${TESSERA:-$ROOT/tessera}
[[ -x "$TESSERA" ]] || fail "tessera launcher: expected an executable at $TESSERA, found none"
"$TESSERA" --help >/dev/null 2>&1 || fail "$TESSERA --help failed (does the build pass?)"

# (1) the native peer, cached outside the repository
BIN=$("$ROOT/scripts/llamacpp/build-native.sh" --targets "llama-bench llama-quantize llama-simple") || fail "building the native llama.cpp peer failed"
mkdir -p "$OUT_DIR/raw"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
RAW="$OUT_DIR/raw"

# (2) one F16 synthetic model, then each preset made from it by llama-quantize
SYNTH_PRESET=$PRESET
synth_arch=()
if [[ -n "$ARCH" ]]; then PRESET="$PRESET-$ARCH"; synth_arch=(--arch "$ARCH"); fi
F16="$OUT_DIR/$PRESET-f16.gguf"
if [[ ! -s "$F16" ]]; then
    log "synthesizing $F16"
    "$TESSERA" synth --preset "$SYNTH_PRESET" "${synth_arch[@]}" --type f16 --out "$F16.tmp" >&2 || { rm -f "$F16.tmp"; fail "tessera synth --type f16 failed"; }
    mv "$F16.tmp" "$F16"
fi
for f in $FILES; do
    model="$OUT_DIR/$PRESET-$f.gguf"
    [[ -s "$model" ]] && continue
    flags=(); [[ "$f" == *-pure ]] && flags=(--pure)
    log "llama-quantize ${flags[*]} $(preset "$f") -> $model"
    "$BIN/llama-quantize" "${flags[@]}" "$F16" "$model.tmp" "$(preset "$f")" > "$RAW/quantize-$f.log" 2>&1 \
        || { rm -f "$model.tmp"; fail "llama-quantize $(preset "$f") failed, see $RAW/quantize-$f.log"; }
    mv "$model.tmp" "$model"
done

# (3) speed, engines back to back per file and round; which runs first flips from one file to the next and from one
# round to the next. The VM's speed drifts by 10-25% over minutes, so a ratio is only taken between two runs made
# back to back.
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
run_llamacpp() {  # file round
    log "llama.cpp  $1 round $2"
    # -d 0,P: prefill from an empty cache, decode both from an empty cache and after P tokens (where tessera's is).
    "$BIN/llama-bench" -m "$OUT_DIR/$PRESET-$1.gguf" -t "$THREADS" -p "$PROMPT_TOKENS" -n "$GEN_TOKENS" -d "0,$PROMPT_TOKENS" -r "$REPS" -o json \
        > "$RAW/llamacpp-$1-round$2.json" 2> "$RAW/llamacpp-$1-round$2.log" || fail "llama-bench failed on $1, see $RAW/llamacpp-$1-round$2.log"
}
run_tessera() {  # file round
    log "tessera    $1 round $2"
    "$TESSERA" bench --model "$OUT_DIR/$PRESET-$1.gguf" --threads "$THREADS" --prompt-tokens "$PROMPT_TOKENS" \
        --gen-tokens "$GEN_TOKENS" --reps "$REPS" --json > "$RAW/tessera-$1-round$2.json" 2> "$RAW/tessera-$1-round$2.log" \
        || fail "tessera bench failed on $1, see $RAW/tessera-$1-round$2.log"
}
# Outputs of an earlier run must not reach this run's table (an RSS figure under --no-rss, a round past --rounds).
rm -f "$RAW"/llamacpp-*-round*.json "$RAW"/tessera-*-round*.json "$RAW"/rss-*.txt
i=0
for ((round = 1; round <= ROUNDS; round++)); do
    for f in $FILES; do
        if (( i % 2 == 0 )); then run_llamacpp "$f" "$round"; run_tessera "$f" "$round"; else run_tessera "$f" "$round"; run_llamacpp "$f" "$round"; fi
        i=$((i + 1))
    done
    # An even number of files would give every round the same order: shift it by one.
    (( $(wc -w <<< "$FILES") % 2 == 0 )) && i=$((i + 1))
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# (4) peak resident memory of a short generation on each file (getrusage of the child, as /usr/bin/time -v)
if (( RSS )); then
    for f in $FILES; do
        log "peak RSS of tessera generate on $f"
        python3 -c 'import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
sys.exit(rc)' "$RAW/rss-$f" "$TESSERA" generate --model "$OUT_DIR/$PRESET-$f.gguf" --prompt "Once upon a time" \
            --max-tokens 32 --threads "$THREADS" > "$RAW/rss-$f.txt" || fail "tessera generate failed on $f"
    done
fi

# (5) the table
node "$ROOT/scripts/llamacpp/native-report.mjs" --raw "$RAW" --dir "$OUT_DIR" --preset "$PRESET" --files "$FILES" --threads "$THREADS" \
    --prompt-tokens "$PROMPT_TOKENS" --gen-tokens "$GEN_TOKENS" --rounds "$ROUNDS" --load-before "$LOAD_BEFORE" --load-after "$LOAD_AFTER"
