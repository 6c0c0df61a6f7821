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

A divergence at the first step has no earlier step to measure the disagreement on. With --llama-quantize, a divergence
that is not a near-tie by that rule is measured once more against the exact computation: the same weights dequantized
to F32 (`llama-quantize --allow-requantize FILE OUT F32`), where nothing rounds x, run by llama-server with the top 40
log-probabilities. It is a near-tie there when both tokens are in the exact top 40 and their exact log-probabilities are
closer than twice the engines' largest distance from the exact ones on the other tokens they list, at that step and
before (the rounding of x each engine does).

usage: greedy_parity.py --tessera ./tessera --llama-server BIN --model FILE [--prompt TEXT] [--tokens 32]
                        [--threads 2] [--json OUT] [--llama-quantize BIN]
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


def llama_steps(url, prompt, n, n_probs=5):
    """The same from llama-server's native /completion with n_probs, streamed: on a random model's text llama-server
    may end the request with a parse error ("does not match the expected Content-only format") after the tokens, so
    each token is taken from its own event. Both response shapes across llama.cpp versions are read."""
    body = {"prompt": prompt, "n_predict": n, "temperature": 0, "n_probs": n_probs, "cache_prompt": False, "stream": True}
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


def exact_steps(a, logs, n):
    """llama-server's greedy steps, top 40, on the model's weights dequantized to F32 (the file is removed after)."""
    f32 = logs + ".dequantized-f32.gguf"
    with open(logs + ".dequantize.log", "w") as log:
        subprocess.run([a.llama_quantize, "--allow-requantize", a.model, f32, "F32", str(a.threads)], stdout=log,
                       stderr=subprocess.STDOUT, check=True)
    try:
        s = Server([a.llama_server, "-m", f32, "-t", str(a.threads), "-c", "1024", "--host", "127.0.0.1", "--port", "{port}"],
                   "/health", logs + ".exact.log")
        try:
            return llama_steps(s.url, a.prompt, n, n_probs=40)
        finally:
            s.close()
    finally:
        os.remove(f32)


def judge_exact(t, l, e, r):
    """Adds the exact reference's view of the divergence to r (see the module doc)."""
    first, tt, lt = r["first_divergence"], r["tessera_token"], r["llama_token"]
    if len(e) <= first or [x[0] for x in e[:first]] != [x[0] for x in t[:first]]:
        r["exact"] = "the exact run took other tokens before the divergence"
        return
    alts = e[first][2]
    noise = 0.0
    for engine in (t, l):
        for i in range(first + 1):
            for tok, v in engine[i][2].items():
                if not (i == first and tok in (tt, lt)) and tok in e[i][2]:
                    noise = max(noise, abs(v - e[i][2][tok]))
    r["exact_top"] = sorted(alts.items(), key=lambda kv: -kv[1])[:5]
    r["exact_rounding_noise"] = round(noise, 4)
    if tt not in alts or lt not in alts:
        r["exact"] = "%r is not in the exact top 40" % (tt if tt not in alts else lt)
        return
    gap = abs(alts[tt] - alts[lt])
    r["exact_gap"] = round(gap, 4)
    r["exact"] = "%.4f nats apart; the engines' rounding moves the other tokens by up to %.4f" % (gap, noise)
    if gap <= 2 * max(noise, 1e-6):
        r["verdict"] = "near-tie (exact reference)"


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
    ap.add_argument("--llama-quantize")
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
    by_disagreement = r["verdict"]
    if r["verdict"] == "DIFFERENT" and a.llama_quantize:
        judge_exact(t, l, exact_steps(a, logs, r["first_divergence"] + 1), r)
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
                   r["max_logprob_disagreement_before"], by_disagreement))
        if "exact" in r:
            line += "; on the same weights in F32 (nothing rounds x): " + r["exact"] + " -> " + r["verdict"]
    print(line)
    return 0 if r["verdict"] in ("identical", "near-tie") else 1


if __name__ == "__main__":
    sys.exit(main())
