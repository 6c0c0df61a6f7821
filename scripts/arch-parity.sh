#!/usr/bin/env bash
# Greedy output of Tessera against native llama.cpp on every architecture of the table (llama, qwen2, qwen3, qwen2moe,
# qwen3moe, olmoe, deepseek): `tessera synth --arch` writes each as F32 and Q8_0, llama-quantize makes Q4_K_M of the
# q/k-normed ones and of deepseek, and scripts/greedy-parity.sh compares the first N tokens of each file (identical, or a measured near-tie).
#
#   scripts/arch-parity.sh [--tokens 32] [--out DIR]     (files and logs in DIR, default bench-out/arch-parity)
#
# Qwen3 files have heads wider than dim / heads (--head-dim 64 on dim 256, 8 heads), as Qwen3-0.6B does.
# Exits 1 when a file parts from llama.cpp other than at a near-tie.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tokens=32; out="$here/bench-out/arch-parity"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --tokens) tokens="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "arch-parity: unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
"$here/tessera" --help > /dev/null 2>&1 || { echo "arch-parity: ./tessera --help failed (does the build pass?)" >&2; exit 1; }
bin="$("$here/scripts/llamacpp/build-native.sh" --targets "llama-server llama-quantize")" || { echo "arch-parity: building llama.cpp failed" >&2; exit 1; }
vocab="$here/../shared/models/llama.cpp-vocab/ggml-vocab-llama-spm.gguf"
synth() { TESSERA_NO_BUILD=1 "$here/tessera" synth --seed 5 "$@" > /dev/null; }
files=()
for type in f32 q8_0; do
  synth --preset tiny --type "$type" --arch llama --out "$out/llama-$type.gguf"
  synth --preset tiny --type "$type" --arch qwen2 --out "$out/qwen2-$type.gguf"
  synth --preset tiny --type "$type" --arch qwen3 --head-dim 64 --out "$out/qwen3-$type.gguf"
  synth --preset moe-tiny --type "$type" --arch qwen2moe --out "$out/qwen2moe-$type.gguf"
  synth --preset moe-tiny --type "$type" --arch qwen3moe --head-dim 64 --out "$out/qwen3moe-$type.gguf"
  # OLMoE's q and k norms span the whole projection, so its kv heads are all its heads.
  synth --dim 256 --layers 4 --heads 8 --kv-heads 8 --ffn 256 --experts 8 --experts-used 2 --vocab-from "$vocab" \
    --arch olmoe --type "$type" --out "$out/olmoe-$type.gguf"
  # DeepSeek-MoE: a dense first layer, two ungated shared experts, expert_weights_scale 1.5.
  synth --preset moe-tiny --type "$type" --arch deepseek --out "$out/deepseek-$type.gguf"
  for a in llama qwen2 qwen3 qwen2moe qwen3moe olmoe deepseek; do files+=("$out/$a-$type.gguf"); done
done
for a in qwen3 qwen3moe olmoe deepseek; do
  "$bin/llama-quantize" "$out/$a-f32.gguf" "$out/$a-q4_k_m.gguf" Q4_K_M > "$out/quantize-$a.log" 2>&1 \
    || { echo "arch-parity: llama-quantize failed on $a, see $out/quantize-$a.log" >&2; exit 1; }
  files+=("$out/$a-q4_k_m.gguf")
done
TESSERA_NO_BUILD=1 bash "$here/scripts/greedy-parity.sh" --tokens "$tokens" --out "$out/logs" "${files[@]}"
