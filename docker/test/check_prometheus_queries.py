#!/usr/bin/env python3
"""Asks a running Prometheus, over its HTTP API, what the end-to-end check needs: the tessera target is up, a
tessera_time_to_first_token_seconds series holds the completions made, the recording rules produce series, and every
dashboard query runs and returns data. Retries until TIMEOUT seconds pass (scrapes and rule evaluations take time).
usage: check_prometheus_queries.py PROMETHEUS_URL DOCKER_DIR MIN_REQUESTS [TIMEOUT]"""
import json
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_dashboard import expressions, promql  # noqa: E402


def query(url, expr):
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}", timeout=10) as r:
        body = json.load(r)
    if body["status"] != "success":
        raise RuntimeError(f"{expr}: {body.get('error')}")
    return body["data"]["result"]


def checks(docker, min_requests):
    """(description, PromQL, predicate over the result) for everything that must hold."""
    yield ("the tessera target is up", 'up{job="tessera"} == 1', lambda r: len(r) == 1)
    yield (f"tessera_time_to_first_token_seconds_count counts at least {min_requests} requests",
           'tessera_time_to_first_token_seconds_count{job="tessera"}',
           lambda r: len(r) == 1 and float(r[0]["value"][1]) >= min_requests)
    rules = yaml.safe_load((docker / "prometheus/rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                yield (f"recording rule {rule['record']} has a series", rule["record"], lambda r: len(r) > 0)
    dashboard = json.loads((docker / "grafana/dashboards/tessera.json").read_text())
    for title, expr in expressions(dashboard):
        yield (f"dashboard panel '{title}' query returns data", promql(expr), lambda r: len(r) > 0)


def main():
    url, docker, min_requests = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 60
    deadline = time.monotonic() + timeout
    pending = list(checks(docker, min_requests))
    passed = 0
    while pending:
        still = []
        for description, expr, ok in pending:
            try:
                result = query(url, expr)
            except (OSError, RuntimeError) as e:
                result, error = None, str(e)
            if result is not None and ok(result):
                passed += 1
            else:
                still.append((description, expr, ok))
                last = error if result is None else json.dumps(result)[:200]
        pending = still
        if pending and time.monotonic() > deadline:
            for description, expr, _ in pending:
                print(f"check_prometheus_queries: FAILED {description}: {expr}")
            print(f"check_prometheus_queries: last answer: {last}")
            break
        if pending:
            time.sleep(1)
    print(f"check_prometheus_queries: {passed} passed, {len(pending)} failed")
    sys.exit(1 if pending else 0)


if __name__ == "__main__":
    main()
