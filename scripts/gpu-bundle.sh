#!/usr/bin/env bash
# Builds gpu-bundle/: a stripped Java 25 runtime (jlink), Tessera's jars, the small test models and the GPU check
# scripts; everything the GPU host needs, since it has no JDK, Maven or network. Copy the folder over and run
# ./gpu-check.sh inside it, or ./tessera serve. Also writes gpu-bundle.tar.gz, the form to copy; fails if that
# archive exceeds 60 MiB.
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
# Every runtime jar, the HTTP stack (Helidon, Jackson, Micrometer, Jinjava) included, so the GPU host can run
# `tessera serve` and `tessera bench serve` against it, as the containers do. The jar is tools/ (the GPU check),
# whose lib/ holds serving and everything below it.
cp "$jar" "$target"/lib/*.jar "$out/lib/"
# Not OR-Tools (27 MiB of native solver, only for 'tessera place', which runs on any CPU host), nor what only it uses.
rm -f "$out"/lib/ortools-*.jar "$out"/lib/jna-*.jar
# The containers' runtime: only the modules the jars use, compressed, without debug attributes or desktop natives.
bash "$root/docker/jlink-runtime.sh" "$out/lib" "$out/runtime"
cp "$root/docker/tessera" "$out/tessera"

cp "$models/stories260K.gguf" "$models/stories260K.reference.json" "$out/models/"
cp "$models/llama.cpp-vocab/ggml-vocab-llama-spm.gguf" "$out/models/llama.cpp-vocab/"
cp "$root/scripts/gpu-check.sh" "$out/gpu-check.sh"
cp "$root/scripts/gpu-torch-peer.py" "$out/scripts/"
chmod +x "$out/gpu-check.sh" "$out/tessera"

# The folder is about 75 MiB, most of it libjvm, java.base and java.desktop (Jinjava's java.beans, needed to load a
# model's chat template) plus 21 MiB of jars, all already compressed where they can be. The gzipped archive is what
# travels to the GPU host, and it is what must stay under the limit.
tar -C "$(dirname "$out")" -czf "$out.tar.gz" "$(basename "$out")"
bytes="$(du -sb "$out" | cut -f1)"
archive_bytes="$(stat -c %s "$out.tar.gz")"
mib=$(( (archive_bytes + (1 << 20) - 1) >> 20 ))
echo "gpu-bundle: $out.tar.gz is $mib MiB ($archive_bytes bytes); unpacked $(( bytes >> 20 )) MiB: runtime $(du -sh "$out/runtime" | cut -f1), lib $(du -sh "$out/lib" | cut -f1), models $(du -sh "$out/models" | cut -f1)"
if (( mib > max_mib )); then echo "gpu-bundle: $out.tar.gz is $mib MiB, over the $max_mib MiB limit" >&2; exit 1; fi
