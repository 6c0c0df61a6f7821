#!/usr/bin/env bash
# Star vs ring allreduce latency over emulated edge links (TPI-LLM setting): 2, 4 and 8 devices, a 256 KB tensor,
# 1 ms one-way delay and 300 Mbit/s per link direction. Each device is a separate JVM; see `tessera bench-allreduce --help`.
# Usage: scripts/bench-allreduce.sh [extra bench-allreduce flags, e.g. --iterations 50 --delay 5ms]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
header=""
for devices in 2 4 8; do
  rows="$("$here/tessera" bench-allreduce --devices "$devices" --bytes 262144 --algorithm both \
          --delay 1ms --rate 300mbit --iterations 40 --warmup 30 "$@")"
  if [[ -z "$header" ]]; then header=1; echo "$rows"; else echo "$rows" | tail -n +2; fi
done
