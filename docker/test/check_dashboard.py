#!/usr/bin/env python3
"""Checks the Grafana dashboard: type-checks it with tsc against @grafana/schema (the dashboard, and each panel
against its panel type's options), and checks every PromQL expression with promtool. With --metrics it only prints
the metric names the dashboard and docker/prometheus/rules.yml use, one a line, for the check against a real scrape.
usage: check_dashboard.py DOCKER_DIR [--metrics]"""
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

NODE = Path(__file__).resolve().parent / "node"
# Panel types: the @grafana/schema module that types their options, and the type of their custom field config.
PANEL_TYPES = {
    "timeseries": ("@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen",
                   "FieldConfig"),
    "stat": ("@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen", None),
}
# Grafana's variables, replaced by values Prometheus accepts.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m", "$instance": ".*"}


def expressions(dashboard):
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def promql(expr):
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def metric_names(docker):
    """Metric names (not recording rules, which carry a colon) in the dashboard's and the rules' expressions."""
    dashboard = json.loads((docker / "grafana/dashboards/tessera.json").read_text())
    exprs = [e for _, e in expressions(dashboard)]
    rules = yaml.safe_load((docker / "prometheus/rules.yml").read_text())
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    names = set()
    for expr in exprs:
        names.update(re.findall(r"\b((?:tessera|jvm|process|system)_[a-zA-Z0-9_]+)\b(?!:)", expr))
        if re.search(r"\bup\{", expr):
            names.add("up")
    return sorted(names)


def typescript(dashboard):
    """A TypeScript module that assigns the dashboard and each panel to their @grafana/schema types. Enums become the
    unions of their string values, since JSON carries "desc", not SortOrder.Descending."""
    lines = ["import type { Dashboard, Panel } from '@grafana/schema';"]
    for kind, (module, field_config) in PANEL_TYPES.items():
        if field_config:
            lines.append(f"import type {{ Options as {kind}Options, {field_config} as {kind}FieldConfig }} from '{module}';")
        else:  # no custom field config of its own
            lines.append(f"import type {{ Options as {kind}Options }} from '{module}';")
            lines.append(f"type {kind}FieldConfig = Record<string, unknown>;")
    lines.append("type Json<T> = T extends string ? `${T}` : T extends (infer U)[] ? Json<U>[] :"
                 " T extends object ? { [K in keyof T]: Json<T[K]> } : T;")
    whole = dict(dashboard)
    whole["panels"] = [{"type": p["type"], "id": p["id"]} for p in dashboard["panels"]]
    lines.append(f"export const dashboard: Json<Dashboard> = {json.dumps(whole, indent=1)};")
    for i, panel in enumerate(dashboard["panels"]):
        kind = panel["type"]
        if kind not in PANEL_TYPES:
            raise SystemExit(f"check_dashboard: panel {panel['title']!r} has type {kind}, which this check does not type")
        # Panel<TOptions, ...> leaves options a plain record, so the options are typed on their own.
        lines.append(f"export const panel{i}: Json<Omit<Panel<{kind}Options, {kind}FieldConfig>, 'options'>>"
                     f" & {{ options: Json<{kind}Options> }} = {json.dumps(panel, indent=1)};")
    return "\n".join(lines) + "\n"


def main():
    docker = Path(sys.argv[1])
    if "--metrics" in sys.argv:
        print("\n".join(metric_names(docker)))
        return
    dashboard = json.loads((docker / "grafana/dashboards/tessera.json").read_text())
    problems = []
    # tsc resolves @grafana/schema from the node folder, so the module is written below it.
    work = Path(tempfile.mkdtemp(prefix="dashboard-check-", dir=NODE))
    try:
        (work / "dashboard.ts").write_text(typescript(dashboard))
        (work / "tsconfig.json").write_text(json.dumps({"compilerOptions": {
            "strict": True, "noEmit": True, "module": "esnext", "moduleResolution": "bundler", "target": "es2022",
            "skipLibCheck": True}, "files": ["dashboard.ts"]}))
        tsc = subprocess.run(["node", str(NODE / "node_modules/typescript/bin/tsc"), "-p", str(work)],
                             capture_output=True, text=True)
        if tsc.returncode != 0:
            problems += [f"tessera.json: @grafana/schema: {line}" for line in tsc.stdout.splitlines() if "error" in line]
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:panel{i}", "expr": promql(e)} for i, (_, e) in enumerate(expressions(dashboard))]}]}
        (work / "dashboard-rules.yml").write_text(yaml.safe_dump(rules))
        promtool = subprocess.run(["promtool", "check", "rules", str(work / "dashboard-rules.yml")],
                                  capture_output=True, text=True)
        if promtool.returncode != 0:
            problems += [f"tessera.json: promtool: {line}" for line in (promtool.stdout + promtool.stderr).splitlines()
                         if line.strip() and "Checking" not in line]
    finally:
        shutil.rmtree(work)
    for p in problems:
        print(p)
    print(f"check_dashboard: {len(dashboard['panels'])} panels, {sum(1 for _ in expressions(dashboard))} queries, "
          f"{len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
