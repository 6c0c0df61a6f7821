#!/usr/bin/env python3
"""Checks the Helm chart docker/helm/tessera: `helm lint --strict`, then `helm template` with the default values and
with the tensor-parallel group and ServiceMonitor on; the rendered Deployment, StatefulSet and Services type-check
against kubernetes-types with tsc, and the project's rules hold: a GPU limit, readiness on /ready and liveness on
/health, scrape annotations on the served port, a grace period longer than --shutdown-grace, non-root, Services that
select pods, and --tp-workers naming exactly the StatefulSet's pods on their port.
usage: check_helm.py CHART HELM"""
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

NODE = Path(__file__).resolve().parent / "node"
TYPES = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "Service": "core/v1"}
VALUE_SETS = {"default": [], "tensor-parallel": ["--set", "tensorParallel.enabled=true,metrics.serviceMonitor.enabled=true"],
              "offload": ["--set", "attentionOffload.enabled=true"],
              "experts": ["--set", "expertParallel.enabled=true", "--set", "model.file=moe.gguf"]}
# Which serve flag lists the pods of a StatefulSet, by its component label.
PEER_FLAG = {"worker": "--tp-workers", "memory-node": "--attention-workers", "expert-worker": "--expert-workers"}


def arg(args, name):
    return args[args.index(name) + 1] if name in args else None


def rules(objects, label):
    problems = []
    by_kind = {}
    for o in objects:
        by_kind.setdefault(o["kind"], []).append(o)
    server = next(o for o in by_kind["Deployment"] if o["metadata"]["labels"]["app.kubernetes.io/component"] == "server")
    pod = server["spec"]["template"]
    container = pod["spec"]["containers"][0]
    args = container["args"]
    port = container["ports"][0]["containerPort"]
    say = lambda m: problems.append(f"helm ({label}): {m}")
    if "nvidia.com/gpu" not in container["resources"].get("limits", {}):
        say("server container has no nvidia.com/gpu limit")
    if container["readinessProbe"]["httpGet"]["path"] != "/ready":
        say("readiness is not on /ready")
    if container["livenessProbe"]["httpGet"]["path"] != "/health":
        say("liveness is not on /health")
    annotations = pod["metadata"].get("annotations", {})
    if annotations.get("prometheus.io/scrape") != "true" or annotations.get("prometheus.io/port") != str(port) \
            or annotations.get("prometheus.io/path") != "/metrics":
        say(f"pod scrape annotations {annotations} do not point at /metrics on {port}")
    if arg(args, "--port") != str(port) or arg(args, "--host") != "0.0.0.0":
        say(f"serve listens on {arg(args, '--host')}:{arg(args, '--port')}, the container port is {port}")
    grace = arg(args, "--shutdown-grace")
    if grace is None or pod["spec"]["terminationGracePeriodSeconds"] <= int(grace):
        say(f"terminationGracePeriodSeconds {pod['spec']['terminationGracePeriodSeconds']} is not longer than "
            f"--shutdown-grace {grace}")
    for o in by_kind.get("Deployment", []) + by_kind.get("StatefulSet", []):
        spec = o["spec"]["template"]["spec"]
        if not spec.get("securityContext", {}).get("runAsNonRoot"):
            say(f"{o['kind']} {o['metadata']['name']} does not run as non-root")
    pods = by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
    for service in by_kind["Service"]:
        selector = service["spec"]["selector"].items()
        if not any(selector <= p["spec"]["template"]["metadata"]["labels"].items() for p in pods):
            say(f"Service {service['metadata']['name']} selects no pods")
    for sts in by_kind.get("StatefulSet", []):
        headless = next((s for s in by_kind["Service"] if s["metadata"]["name"] == sts["spec"]["serviceName"]), None)
        if headless is None or headless["spec"].get("clusterIP") != "None":
            say(f"StatefulSet {sts['metadata']['name']} has no headless Service {sts['spec']['serviceName']}")
        worker_port = sts["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
        expected = [f"{sts['metadata']['name']}-{i}.{sts['spec']['serviceName']}:{worker_port}"
                    for i in range(sts["spec"]["replicas"])]
        flag = PEER_FLAG.get(sts["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component"))
        if flag is None:
            say(f"StatefulSet {sts['metadata']['name']} has a component no serve flag lists")
        elif (arg(args, flag) or "").split(",") != expected:
            say(f"{flag} {arg(args, flag)} is not the StatefulSet's pods {','.join(expected)}")
    if label in ("tensor-parallel", "offload", "experts") and not by_kind.get("StatefulSet"):
        say(f"{label}: the values render no StatefulSet")
    for sts in by_kind.get("StatefulSet", []):
        container = sts["spec"]["template"]["spec"]["containers"][0]
        if container["args"][0] == "expert-worker" and arg(container["args"], "--model") != arg(args, "--model"):
            say(f"expert workers read {arg(container['args'], '--model')}, the server serves {arg(args, '--model')}")
    if label == "offload" and arg(args, "--device") is None:
        say("offload: the server computes its dense layers without --device")
    for monitor in by_kind.get("ServiceMonitor", []):
        if monitor["spec"]["endpoints"][0]["path"] != "/metrics":
            say("ServiceMonitor does not scrape /metrics")
    return problems


def main():
    chart, helm = sys.argv[1], sys.argv[2]
    problems = []
    typed = []
    for label, values in VALUE_SETS.items():
        lint = subprocess.run([helm, "lint", "--strict", chart, *values], capture_output=True, text=True)
        if lint.returncode != 0:
            problems.append(f"helm lint --strict ({label}): {lint.stdout.strip()} {lint.stderr.strip()}")
            continue
        rendered = subprocess.run([helm, "template", "tessera", chart, *values], capture_output=True, text=True, check=True)
        objects = [o for o in yaml.safe_load_all(rendered.stdout) if o]
        problems += rules(objects, label)
        typed += [(label, o) for o in objects if o["kind"] in TYPES]
        print(f"check_helm: {label}: {len(objects)} objects: {', '.join(sorted(o['kind'] for o in objects))}")
    lines = [f"import type {{ {kind} }} from 'kubernetes-types/{group}';" for kind, group in TYPES.items()]
    for i, (label, o) in enumerate(typed):
        lines.append(f"// {label}: {o['kind']} {o['metadata']['name']}")
        lines.append(f"export const object{i}: {o['kind']} = {json.dumps(o, indent=1)};")
    work = Path(tempfile.mkdtemp(prefix="helm-check-", dir=NODE))
    try:
        (work / "manifests.ts").write_text("\n".join(lines) + "\n")
        (work / "tsconfig.json").write_text(json.dumps({"compilerOptions": {
            "strict": True, "noEmit": True, "module": "esnext", "moduleResolution": "bundler", "target": "es2022",
            "skipLibCheck": True}, "files": ["manifests.ts"]}))
        tsc = subprocess.run(["node", str(NODE / "node_modules/typescript/bin/tsc"), "-p", str(work)],
                             capture_output=True, text=True)
        problems += [f"helm: kubernetes-types: {line}" for line in tsc.stdout.splitlines() if "error" in line]
    finally:
        shutil.rmtree(work)
    for p in problems:
        print(p)
    print(f"check_helm: {len(typed)} objects type-checked, {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
