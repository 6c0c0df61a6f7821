#!/usr/bin/env bash
# Greedy output of Tessera against native llama.cpp (llama-server built for this CPU), file by file: the first N tokens
# must be identical, or the first divergence must be a measured near-tie (see scripts/llamacpp/greedy_parity.py).
#
#   scripts/greedy-parity.sh [--tokens 32] [--prompt TEXT] [--threads 2] [--out DIR] [FILE.gguf ...]
#
# Without files: stories260K (F32, and its Q8_0 and Q4_0 in ../shared/models/derived), then the llama-quantize files
# scripts/bench-cpu-native.sh made (Q4_K_M, Q4_0 with its Q6_K output, Q8_0, Q5_K_M) where they exist in --native-dir.
# A divergence that is not a near-tie by the engines' disagreement is measured again against the same weights
# dequantized to F32 (llama-quantize; the F32 copy, 4 bytes a weight, is written in --out and removed after).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
tokens=32; prompt="Once upon a time"; threads=2; out="$here/bench-out/parity"; native_dir="$here/bench-native"
files=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --tokens) tokens="$2"; shift 2 ;;
    --prompt) prompt="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --native-dir) native_dir="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "greedy-parity: unknown option $1" >&2; exit 2 ;;
    *) files+=("$1"); shift ;;
  esac
done
if (( ${#files[@]} == 0 )); then
  shared="$here/../shared/models"
  files=("$shared/stories260K.gguf" "$shared/derived/stories260K-Q8_0.gguf" "$shared/derived/stories260K-Q4_0.gguf")
  for f in q4_k_m q4_0 q8_0 q5_k_m; do [[ -f "$native_dir/llama-1b-$f.gguf" ]] && files+=("$native_dir/llama-1b-$f.gguf"); done
fi
bin="$("$here/scripts/llamacpp/build-native.sh" --targets "llama-server llama-quantize")" || { echo "greedy-parity: building llama-server failed" >&2; exit 1; }
"$here/tessera" --help > /dev/null 2>&1 || { echo "greedy-parity: ./tessera --help failed (does the build pass?)" >&2; exit 1; }
mkdir -p "$out"
status=0
for f in "${files[@]}"; do
  [[ -f "$f" ]] || { echo "greedy-parity: $f not found" >&2; status=1; continue; }
  TESSERA_NO_BUILD=1 python3 "$here/scripts/llamacpp/greedy_parity.py" --tessera "$here/tessera" --llama-server "$bin/llama-server" \
    --model "$f" --prompt "$prompt" --tokens "$tokens" --threads "$threads" --log-dir "$out" --llama-quantize "$bin/llama-quantize" --json "$out/$(basename "$f" .gguf).json" || status=1
done
exit $status
