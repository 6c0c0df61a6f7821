#!/usr/bin/env bash
# Runs every test of the reactor. Needs ../shared/models beside the repository (real test data, not committed).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${JAVA_HOME:-}" || ! -x "${JAVA_HOME}/bin/java" ]] || ! "${JAVA_HOME}/bin/java" -version 2>&1 | grep -q 'version "2[5-9]'; then
  export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
fi
if [[ ! -d "$here/../shared/models" ]]; then
  echo "test data missing: expected $here/../shared/models" >&2
  exit 1
fi
cd "$here"
# Test tools the suites drive for real: promtool lints /metrics, the official openai npm client calls the server.
if ! command -v promtool >/dev/null; then
  echo "test.sh: installing promtool (Debian package prometheus)" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null) || { echo "test.sh: could not install promtool" >&2; exit 1; }
fi
(cd serving/src/test/node && npm ci --no-audit --no-fund --loglevel=error)
mvn -B -ntp verify "$@"
# Containers, compose, Helm, Prometheus and Grafana (docker/), checked without a Docker engine; needs the jars above.
bash scripts/check-deploy.sh
