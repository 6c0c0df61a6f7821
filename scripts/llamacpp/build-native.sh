#!/usr/bin/env bash
# Builds the native llama.cpp peer (llama-bench, llama-quantize, llama-simple, llama-server, llama-cli)
# for this CPU from the source bundle inside the node-llama-cpp npm package, outside the repository.
#
#   scripts/llamacpp/build-native.sh [--cache-dir ~/.cache/tessera-llamacpp] [--jobs 2] [--targets "llama-bench ..."]
#
# Prints the directory holding the binaries on stdout; progress on stderr. Cached: a second call
# with the same package version only checks that the binaries are there. --targets builds only those
# (the CPU table needs llama-bench, llama-quantize and llama-simple; llama-server takes the longest to
# compile). Exits 1 when a step fails.
set -euo pipefail

VERSION=3.21.1   # the node-llama-cpp version scripts/llamacpp/package.json pins
CACHE_DIR=${TESSERA_LLAMACPP_CACHE:-$HOME/.cache/tessera-llamacpp}
JOBS=2
TARGETS=(llama-bench llama-quantize llama-simple llama-server llama-cli)
while [[ $# -gt 0 ]]; do
    case "$1" in
        --cache-dir) CACHE_DIR=${2:?}; shift 2 ;;
        --jobs) JOBS=${2:?}; shift 2 ;;
        --targets) read -r -a TARGETS <<< "${2:?}"; shift 2 ;;
        -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
        *) echo "build-native: unknown flag $1" >&2; exit 2 ;;
    esac
done
log() { printf '[build-native] %s\n' "$*" >&2; }
fail() { printf 'build-native: %s\n' "$*" >&2; exit 1; }

SRC="$CACHE_DIR/llama.cpp-$VERSION"
BUILD="$SRC/build-native"
BIN="$BUILD/bin"

# A CPU may list AMX while the VM it runs in does not enable the tile registers: -march=native then compiles
# ggml's AMX kernels and every tool dies at its first tile instruction (seen on a 2-core Sapphire Rapids VM:
# ldtilecfg raised a general protection fault in llama-bench and llama-simple). A tiny program that configures and
# zeroes one tile tells; where it fails, AMX is left out of the build.
amx_flags() {
    grep -qw amx_tile /proc/cpuinfo 2>/dev/null || return 0
    local dir
    dir=$(mktemp -d)
    cat > "$dir/amx.c" <<'C'
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <immintrin.h>
struct cfg { uint8_t palette, start_row, reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; } __attribute__((aligned(64)));
int main(void) {
    if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) != 0) return 2;
    struct cfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1; c.colsb[0] = 64; c.rows[0] = 16;
    _tile_loadconfig(&c);
    _tile_zero(0);
    _tile_release();
    return 0;
}
C
    if ! { gcc -O1 -mamx-tile -o "$dir/amx" "$dir/amx.c" && "$dir/amx"; } >/dev/null 2>&1; then
        echo "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    fi
    rm -rf "$dir"
}
EXTRA_FLAGS=$(amx_flags)
STAMP="$BUILD/tessera-extra-flags"

all_built() {
    local t
    for t in "${TARGETS[@]}"; do [[ -x "$BIN/$t" ]] || return 1; done
    [[ "$(cat "$STAMP" 2>/dev/null)" == "$EXTRA_FLAGS" ]]
}
if all_built; then echo "$BIN"; exit 0; fi

for tool in npm git cmake gcc g++ tar; do
    command -v "$tool" >/dev/null || fail "$tool: expected on PATH, found none"
done
mkdir -p "$CACHE_DIR"

# (1) the package tarball; its llama/gitRelease.bundle is a git bundle of the llama.cpp release
# node-llama-cpp was built against (llama/llama.cpp.info.json names the tag).
TGZ="$CACHE_DIR/node-llama-cpp-$VERSION.tgz"
if [[ ! -s "$TGZ" ]]; then
    log "npm pack node-llama-cpp@$VERSION into $CACHE_DIR"
    (cd "$CACHE_DIR" && npm pack "node-llama-cpp@$VERSION" --loglevel=error >&2) || fail "npm pack node-llama-cpp@$VERSION failed"
fi
PKG="$CACHE_DIR/package-$VERSION"
if [[ ! -s "$PKG/llama/gitRelease.bundle" ]]; then
    mkdir -p "$PKG"
    tar xzf "$TGZ" -C "$PKG" --strip-components=1 package/llama/gitRelease.bundle package/llama/llama.cpp.info.json \
        || fail "$TGZ: expected package/llama/gitRelease.bundle, not found"
fi

# (2) sources
if [[ ! -f "$SRC/CMakeLists.txt" ]]; then
    log "git clone from $PKG/llama/gitRelease.bundle"
    rm -rf "$SRC"
    git clone --quiet "$PKG/llama/gitRelease.bundle" "$SRC" >&2 || fail "git clone of the bundle failed"
fi

# (3) build for this CPU (GGML_NATIVE: -march=native, so AVX-512/VNNI when present), only the tools.
[[ -z "$EXTRA_FLAGS" ]] || log "this CPU lists AMX but a tile instruction fails here: building with $EXTRA_FLAGS"
if [[ -d "$BUILD" && "$(cat "$STAMP" 2>/dev/null)" != "$EXTRA_FLAGS" ]]; then rm -rf "$BUILD"; fi
log "cmake configure in $BUILD (GGML_NATIVE=ON, Release)"
cmake -S "$SRC" -B "$BUILD" -DGGML_NATIVE=ON -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
    -DCMAKE_C_FLAGS="$EXTRA_FLAGS" -DCMAKE_CXX_FLAGS="$EXTRA_FLAGS" \
    -DLLAMA_BUILD_TESTS=OFF -DBUILD_SHARED_LIBS=OFF >"$CACHE_DIR/cmake-configure.log" 2>&1 \
    || fail "cmake configure failed, see $CACHE_DIR/cmake-configure.log"
log "building ${TARGETS[*]} with -j$JOBS (tens of minutes on 2 cores)"
cmake --build "$BUILD" --config Release -j "$JOBS" --target "${TARGETS[@]}" >"$CACHE_DIR/cmake-build.log" 2>&1 \
    || fail "cmake build failed, see $CACHE_DIR/cmake-build.log"
printf '%s' "$EXTRA_FLAGS" > "$STAMP"
all_built || fail "build finished but $BIN lacks one of ${TARGETS[*]}"
echo "$BIN"
