#!/usr/bin/env bash
# Builds gpu-bundle/: a stripped Java 25 runtime (jlink), Tessera's jars, the small test models and the GPU check
# scripts; everything the GPU host needs, since it has no JDK, Maven or network. Copy the folder over and run
# ./gpu-check.sh inside it. Fails if the bundle exceeds 60 MiB.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/gpu-bundle"
models="${TESSERA_MODELS:-$root/../shared/models}"
build_dir="${TESSERA_BUILD_DIR_NAME:-target}"
max_mib=60
if [[ -z "${JAVA_HOME:-}" || ! -x "${JAVA_HOME}/bin/jlink" ]]; then
  for candidate in /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/temurin-25* /usr/lib/jvm/java-25*; do
    if [[ -x "$candidate/bin/jlink" ]]; then export JAVA_HOME="$candidate"; break; fi
  done
fi
[[ -x "${JAVA_HOME:-}/bin/jlink" ]] || { echo "gpu-bundle: no Java 25 JDK with jlink; set JAVA_HOME" >&2; exit 1; }
for f in stories260K.gguf stories260K.reference.json llama.cpp-vocab/ggml-vocab-llama-spm.gguf; do
  [[ -f "$models/$f" ]] || { echo "gpu-bundle: $models/$f missing" >&2; exit 1; }
done

echo "gpu-bundle: building jars (mvn package, -Dbuild.dir.name=$build_dir)" >&2
(cd "$root" && mvn -q -B -Dstyle.color=never -Dmaven.test.skip=true -Dbuild.dir.name="$build_dir" package >&2)
target="$root/tools/$build_dir"
jar="$(ls "$target"/tools-*.jar | head -1)"

rm -rf "$out"
mkdir -p "$out/lib" "$out/models/llama.cpp-vocab" "$out/scripts"
cp "$jar" "$out/lib/"
# Only what GpuCheck loads: Tessera's own modules and LWJGL (hwloc for the physical core count). The HTTP stack
# (Helidon, Jinjava, Micrometer, Jackson) is left out: it is not used here and would pull desktop modules into jlink.
# GpuCheck is tools/ (its jar is $jar); serving comes along for CliArgs.
for j in "$target"/lib/*.jar; do
  case "$(basename "$j")" in
    kernels-*|models-*|scheduler-*|serving-*|native-bindings-*|offload-*|lwjgl*) cp "$j" "$out/lib/" ;;
  esac
done

# jdeps names the platform modules the jars use (its last line; split-package warnings come first). The Vector API
# and jdk.unsupported (LWJGL's sun.misc.Unsafe) are added in case it misses them; java.management backs JMX-free
# diagnostics such as thread dumps.
# The serving jar is left out of jdeps: its HTTP classes (never loaded by GpuCheck) would pull in java.desktop.
modules="$("$JAVA_HOME/bin/jdeps" --print-module-deps --ignore-missing-deps --multi-release 25 \
  $(ls "$out"/lib/*.jar | grep -v '/serving-') 2>/dev/null | grep -v '^Warning' | tail -1 || true)"
modules="${modules:-java.base}"
modules="$(echo "$modules,jdk.incubator.vector,jdk.unsupported,java.management" | tr , "\n" | sort -u | paste -sd,)"
echo "gpu-bundle: jlink --add-modules $modules" >&2
"$JAVA_HOME/bin/jlink" --add-modules "$modules" --strip-debug --no-man-pages --no-header-files --compress zip-9 \
  --output "$out/runtime"

cp "$models/stories260K.gguf" "$models/stories260K.reference.json" "$out/models/"
cp "$models/llama.cpp-vocab/ggml-vocab-llama-spm.gguf" "$out/models/llama.cpp-vocab/"
cp "$root/scripts/gpu-check.sh" "$out/gpu-check.sh"
cp "$root/scripts/gpu-torch-peer.py" "$out/scripts/"
chmod +x "$out/gpu-check.sh"

bytes="$(du -sb "$out" | cut -f1)"
mib=$(( (bytes + (1 << 20) - 1) >> 20 ))
echo "gpu-bundle: $out is $mib MiB ($bytes bytes): runtime $(du -sh "$out/runtime" | cut -f1), lib $(du -sh "$out/lib" | cut -f1), models $(du -sh "$out/models" | cut -f1)"
if (( mib > max_mib )); then echo "gpu-bundle: $mib MiB exceeds the $max_mib MiB limit" >&2; exit 1; fi
