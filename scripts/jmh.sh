#!/usr/bin/env bash
# JMH kernel benchmarks (kernels/src/test/.../*Benchmark.java). Extra arguments go to JMH, e.g.
#   bash scripts/jmh.sh MatMulBenchmark -p type=Q4_0 -p tokens=1 -p threads=2
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
cd "$here"
mvn -q -B -Dstyle.color=never -pl kernels -am -DskipTests -Dbuild.dir.name=target-jmh test-compile \
  dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile=target-jmh/classpath.txt >&2
cp="$(cat "$here/kernels/target-jmh/classpath.txt")"
cp="$here/kernels/target-jmh/test-classes:$here/kernels/target-jmh/classes:$here/native-bindings/target-jmh/classes:$cp"
exec "$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector -cp "$cp" org.openjdk.jmh.Main "${@:-MatMulBenchmark}"
