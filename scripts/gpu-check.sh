#!/usr/bin/env bash
# Tessera GPU check: device facts, CUDA-vs-CPU parity per op, stories260K greedy ids, llama-1b throughput at batch 1
# and 16, the copy-bandwidth roofline and a PyTorch peer, ending in one summary table on stdout.
# Runs inside the bundle made by scripts/gpu-bundle.sh (its own Java runtime, no JDK, Maven or network needed), or
# from a repository checkout after a build. Options go to GpuCheck: --quick, --sections LIST, --cpu-only, --help.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -x "$here/runtime/bin/java" ]]; then
  home="$here"
  java="$here/runtime/bin/java"
  cp="$here/lib/*"
else
  home="$(cd "$here/.." && pwd)"
  java=""
  for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/temurin-25* /usr/lib/jvm/java-25*; do
    if [[ -n "$candidate" && -x "$candidate/bin/java" ]]; then java="$candidate/bin/java"; break; fi
  done
  if [[ -z "$java" ]]; then echo "gpu-check: no bundled runtime and no Java 25 found; set JAVA_HOME" >&2; exit 1; fi
  target="$home/tools/${TESSERA_BUILD_DIR_NAME:-target}"
  if [[ ! -d "$target/lib" ]]; then echo "gpu-check: $target/lib missing; build first (mvn -DskipTests package)" >&2; exit 1; fi
  cp="$(ls "$target"/tools-*.jar | head -1):$target/lib/*"
fi
models="${TESSERA_MODELS:-}"
if [[ -z "$models" ]]; then
  if [[ -f "$home/models/stories260K.gguf" ]]; then models="$home/models"; else models="$home/../shared/models"; fi
fi
echo "gpu-check: $(date -u +%FT%TZ) on $(hostname), $(nproc) cores; nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1 || echo none)" >&2
exec "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -XX:+UseParallelGC -Xss8m -Xmx16g \
  -Dtessera.home="$home" -Dtessera.models="$models" ${TESSERA_JAVA_OPTS:-} \
  -cp "$cp" dev.tessera.tools.gpucheck.GpuCheck "$@" 2> >(grep --line-buffered -v -e '^WARNING: Using incubator modules' >&2)
