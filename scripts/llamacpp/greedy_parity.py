#!/usr/bin/env python3
"""Greedy output of Tessera against native llama.cpp on one GGUF file, token by token.

Both engines serve the file (`tessera serve` and `llama-server`, each started here on a free port), get the same prompt,
and generate N tokens greedily with the top-5 log-probabilities of every step. The report says where the first token
differs, and whether that step was a near-tie: the two candidates' log-probabilities are closer, in llama.cpp's own
distribution, than the engines' measured disagreement. That disagreement is the largest |logprob difference| the two
engines gave the same token, over every token both list in their top 5, at the steps before the divergence (both round
activations to 8 bits, but llama.cpp's K-quant dots scale each 256 values where Tessera scales each 32), so a gap
under twice it cannot rank the two tokens reliably. The chosen tokens alone are one sample per step and understate it:
on a 1B Q4_K_M file they differed by up to 0.021 nats while the runners-up at the same steps differed by 0.088.

usage: greedy_parity.py --tessera ./tessera --llama-server BIN --model FILE [--prompt TEXT] [--tokens 32]
                        [--threads 2] [--json OUT]
Prints one line per file; exit status 0 when the outputs match or the divergence is a near-tie, 1 otherwise.
"""
import argparse
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url, body, timeout=600):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


def wait_ready(proc, url, log):
    deadline = time.time() + 600
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit("greedy_parity: server exited:\n" + open(log).read()[-3000:])
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    sys.exit("greedy_parity: server not ready after 600 s: " + url)


class Server:
    def __init__(self, argv, ready_path, log):
        self.log = log
        self.port = free_port()
        argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.proc = subprocess.Popen(argv, stdout=open(log, "w"), stderr=subprocess.STDOUT)
        self.url = "http://127.0.0.1:%d" % self.port
        wait_ready(self.proc, self.url + ready_path, log)

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def tessera_steps(url, prompt, n):
    """[(token text, logprob, {alt text: logprob})] of Tessera's greedy completion (OpenAI legacy logprobs)."""
    with urllib.request.urlopen(url + "/v1/models", timeout=30) as m:
        model = json.load(m)["data"][0]["id"]
    r = post(url + "/v1/completions", {"model": model, "prompt": prompt, "max_tokens": n, "temperature": 0, "logprobs": 5})
    lp = r["choices"][0]["logprobs"]
    return [(t, l, dict(top or {})) for t, l, top in zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"])]


def llama_steps(url, prompt, n):
    """The same from llama-server's native /completion with n_probs, streamed: on a random model's text llama-server
    may end the request with a parse error ("does not match the expected Content-only format") after the tokens, so
    each token is taken from its own event. Both response shapes across llama.cpp versions are read."""
    body = {"prompt": prompt, "n_predict": n, "temperature": 0, "n_probs": 5, "cache_prompt": False, "stream": True}
    req = urllib.request.Request(url + "/completion", json.dumps(body).encode(), {"Content-Type": "application/json"})
    steps = []
    with urllib.request.urlopen(req, timeout=600) as r:
        for raw in r:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            for p in event.get("completion_probabilities", []):
                if "top_logprobs" in p:  # newer: token/logprob and top_logprobs [{token, logprob}]
                    steps.append((p["token"], p["logprob"], {a["token"]: a["logprob"] for a in p["top_logprobs"]}))
                else:  # older: content and probs [{tok_str, prob}]
                    alts = {a["tok_str"]: math.log(max(a["prob"], 1e-30)) for a in p["probs"]}
                    steps.append((p["content"], alts.get(p["content"], float("nan")), alts))
    return steps[:n]


def compare(t, l):
    n = min(len(t), len(l))
    first = next((i for i in range(n) if t[i][0] != l[i][0]), None)
    # Disagreement: how far apart the engines put the same token's logprob, over every token both list at a step.
    upto = first if first is not None else n
    chosen = max([abs(t[i][1] - l[i][1]) for i in range(upto)] or [0.0])
    noise = max([abs(t[i][2][tok] - l[i][2][tok]) for i in range(upto) for tok in t[i][2] if tok in l[i][2]] + [chosen])
    out = {"steps": n, "first_divergence": first, "max_logprob_disagreement_before": round(noise, 4),
           "max_chosen_token_disagreement_before": round(chosen, 4)}
    if first is None:
        out["verdict"] = "identical"
        return out
    tt, lt = t[first][0], l[first][0]
    out.update({"tessera_token": tt, "llama_token": lt,
                "tessera_top": sorted(t[first][2].items(), key=lambda kv: -kv[1])[:3],
                "llama_top": sorted(l[first][2].items(), key=lambda kv: -kv[1])[:3]})
    gap_llama = l[first][2].get(lt, l[first][1]) - l[first][2].get(tt, float("-inf"))
    gap_tessera = t[first][2].get(tt, t[first][1]) - t[first][2].get(lt, float("-inf"))
    out["gap_in_llama"] = round(gap_llama, 4)
    out["gap_in_tessera"] = round(gap_tessera, 4)
    near = gap_llama <= max(noise, 1e-6) * 2 and gap_tessera <= max(noise, 1e-6) * 2
    out["verdict"] = "near-tie" if near else "DIFFERENT"
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--llama-server", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt", default="Once upon a time")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    ap.add_argument("--log-dir", default=".")
    a = ap.parse_args()
    name = os.path.basename(a.model)
    logs = os.path.join(a.log_dir, name)
    s = Server([a.tessera, "serve", "--model", a.model, "--threads", str(a.threads), "--host", "127.0.0.1", "--port", "{port}"],
               "/ready", logs + ".tessera.log")
    try:
        t = tessera_steps(s.url, a.prompt, a.tokens)
    finally:
        s.close()
    s = Server([a.llama_server, "-m", a.model, "-t", str(a.threads), "-c", "1024", "--host", "127.0.0.1", "--port", "{port}"],
               "/health", logs + ".llama.log")
    try:
        l = llama_steps(s.url, a.prompt, a.tokens)
    finally:
        s.close()
    r = compare(t, l)
    r["model"] = name
    r["prompt"] = a.prompt
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"result": r, "tessera": t, "llama": l}, f, indent=1)
    if r["first_divergence"] is None:
        line = "%s: first %d greedy tokens identical" % (name, r["steps"])
    else:
        line = ("%s: first %d greedy tokens identical, then Tessera %r, llama.cpp %r; gap between the two: %.4f nats in "
                "llama.cpp, %.4f in Tessera; largest disagreement on tokens both listed before it %.4f nats -> %s"
                % (name, r["first_divergence"], r["tessera_token"], r["llama_token"], r["gap_in_llama"], r["gap_in_tessera"],
                   r["max_logprob_disagreement_before"], r["verdict"]))
    print(line)
    return 0 if r["verdict"] in ("identical", "near-tie") else 1


if __name__ == "__main__":
    sys.exit(main())
