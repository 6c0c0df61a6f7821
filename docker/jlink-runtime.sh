#!/usr/bin/env bash
# Links the Java runtime that runs `tessera` in the container images and the GPU bundle: only the platform modules the
# jars in LIB_DIR use, compressed, without debug attributes, man pages, headers or the desktop's native libraries.
# usage: jlink-runtime.sh LIB_DIR OUT_DIR   (JAVA_HOME: a Java 25 JDK; objcopy from binutils on PATH)
set -euo pipefail
lib="${1:?usage: jlink-runtime.sh LIB_DIR OUT_DIR}"
out="${2:?usage: jlink-runtime.sh LIB_DIR OUT_DIR}"
jdk="${JAVA_HOME:?set JAVA_HOME to a Java 25 JDK}"
command -v objcopy >/dev/null || { echo "jlink-runtime: objcopy not found (Debian/Ubuntu package binutils); jlink --strip-debug needs it" >&2; exit 1; }
ls "$lib"/*.jar >/dev/null 2>&1 || { echo "jlink-runtime: no jars in $lib" >&2; exit 1; }

# jdeps names every module any class of the jars could touch; its last line is the list (warnings come first).
modules="$("$jdk/bin/jdeps" --print-module-deps --ignore-missing-deps --multi-release 25 "$lib"/*.jar 2>/dev/null | tail -1)"
[[ "$modules" == java.base* ]] || { echo "jlink-runtime: jdeps gave no module list for $lib" >&2; exit 1; }
# Dropped: javassist's HotSwapper (jdk.attach, jdk.jdi, java.instrument) and error-prone's annotations
# (java.compiler) are never loaded by tessera. Added: the Vector API (an incubator module jdeps does not report for
# --add-modules users), sun.misc.Unsafe for LWJGL, and java.management for Micrometer's JVM metrics.
modules="$(echo "$modules,jdk.incubator.vector,jdk.unsupported,java.management,jdk.management" | tr , '\n' \
  | grep -v -x -e jdk.attach -e jdk.jdi -e java.instrument -e java.compiler | sort -u | paste -sd,)"
echo "jlink-runtime: --add-modules $modules" >&2
rm -rf "$out"
"$jdk/bin/jlink" --add-modules "$modules" --strip-debug --compress zip-9 --no-man-pages --no-header-files \
  --output "$out" 2> >(grep -v '^WARNING: Using incubator modules' >&2)

# java.beans (Jinjava's property access) is what needs java.desktop; AWT, fonts, images and sound never load in a
# headless server, so their native libraries (about 6 MiB) go.
for so in libawt libawt_headless libawt_xawt libfontmanager libfreetype libjavajpeg libjawt libjsound liblcms \
          libmlib_image libsplashscreen; do
  rm -f "$out/lib/$so.so"
done
# The JVM's own symbol table only names frames in crash logs; the dynamic symbols the launcher needs stay.
objcopy --strip-unneeded "$out/lib/server/libjvm.so"
echo "jlink-runtime: $out is $(du -sh "$out" | cut -f1)" >&2
