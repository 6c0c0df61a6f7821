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
exec mvn -B -ntp verify "$@"
