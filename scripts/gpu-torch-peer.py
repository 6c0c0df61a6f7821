#!/usr/bin/env python3
"""PyTorch peer for Tessera's GPU check: one llama-1b-shaped F16 decode step (batch 1) with random weights.

Same shape as `tessera synth --preset llama-1b` (dim 2048, 16 layers, 32 heads, 8 KV heads, ffn 8192, vocab 32000):
RMSNorm, Q/K/V, RoPE, attention over a KV cache, output projection, SwiGLU MLP, final norm and classifier. Timed with
torch.cuda events over `--steps` steps after a warm-up, eagerly and (when capture works) as one CUDA graph per step.
Prints one JSON line on stdout; on any failure prints {"error": "..."} and exits 3, so the caller can carry on.
"""
import argparse
import json
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tiny", action="store_true", help="tiny shape (dim 256, 4 layers) for dry runs")
    ap.add_argument("--context", type=int, default=256, help="positions already in the KV cache")
    a = ap.parse_args()
    try:
        import torch
    except Exception as e:  # no torch: the caller reports a skip
        print(json.dumps({"engine": "torch", "error": "torch not importable: %s" % e}))
        return 3
    try:
        return run(torch, a)
    except Exception as e:
        print(json.dumps({"engine": "torch", "error": "%s: %s" % (type(e).__name__, str(e).replace("\n", " ")[:300])}))
        return 3


def run(torch, a):
    if a.tiny:
        dim, layers, heads, kv_heads, ffn, vocab = 256, 4, 8, 4, 768, 32000
    else:
        dim, layers, heads, kv_heads, ffn, vocab = 2048, 16, 32, 8, 8192, 32000
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("torch.cuda.is_available() is False")
    dtype = torch.float16 if dev.type == "cuda" else torch.float32
    head_dim = dim // heads
    steps = 16 if a.quick else 64
    cap = a.context + 2 * steps + 16
    g = torch.Generator(device="cpu").manual_seed(0)

    def rnd(*shape):
        return (torch.randn(*shape, generator=g) * 0.02).to(dev, dtype)

    W = []
    for _ in range(layers):
        W.append(dict(wq=rnd(dim, dim), wk=rnd(kv_heads * head_dim, dim), wv=rnd(kv_heads * head_dim, dim),
                      wo=rnd(dim, dim), w1=rnd(ffn, dim), w3=rnd(ffn, dim), w2=rnd(dim, ffn),
                      n1=torch.ones(dim, device=dev, dtype=dtype), n2=torch.ones(dim, device=dev, dtype=dtype)))
    emb, out_w, out_n = rnd(vocab, dim), rnd(vocab, dim), torch.ones(dim, device=dev, dtype=dtype)
    kc = [torch.zeros(1, kv_heads, cap, head_dim, device=dev, dtype=dtype) for _ in range(layers)]
    vc = [torch.zeros(1, kv_heads, cap, head_dim, device=dev, dtype=dtype) for _ in range(layers)]
    inv = 1.0 / (10000 ** (torch.arange(0, head_dim, 2, device=dev, dtype=torch.float32) / head_dim))
    weight_bytes = sum(t.numel() * t.element_size() for l in W for t in l.values()) + out_w.numel() * out_w.element_size()

    def rms(x, w):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5)).to(dtype) * w

    def rope(x, pos):
        # x [1, h, 1, head_dim], adjacent pairs rotated (Llama/GGUF layout).
        ang = pos.float() * inv
        c, s = torch.cos(ang).to(dtype), torch.sin(ang).to(dtype)
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)

    F = torch.nn.functional

    def step(tok, pos):
        # tok [1] int64, pos [1] int64 on device: everything stays on the GPU so a graph can replay it.
        x = emb[tok]
        for i, l in enumerate(W):
            h = rms(x, l["n1"])
            q = (h @ l["wq"].T).view(1, 1, heads, head_dim).transpose(1, 2)
            k = (h @ l["wk"].T).view(1, 1, kv_heads, head_dim).transpose(1, 2)
            v = (h @ l["wv"].T).view(1, 1, kv_heads, head_dim).transpose(1, 2)
            q, k = rope(q, pos), rope(k, pos)
            kc[i].index_copy_(2, pos, k)
            vc[i].index_copy_(2, pos, v)
            mask = (torch.arange(cap, device=dev) <= pos).view(1, 1, 1, cap)
            att = F.scaled_dot_product_attention(q, kc[i], vc[i], attn_mask=mask, enable_gqa=True)
            x = x + att.transpose(1, 2).reshape(1, dim) @ l["wo"].T
            h = rms(x, l["n2"])
            x = x + (F.silu(h @ l["w1"].T) * (h @ l["w3"].T)) @ l["w2"].T
        return rms(x, out_n) @ out_w.T

    tok = torch.tensor([5], device=dev)
    pos = torch.tensor([a.context], device=dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        for _ in range(3):
            step(tok, pos)
        sync()
        result = {"engine": "torch", "torch": torch.__version__, "device": str(dev),
                  "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
                  "dtype": str(dtype).replace("torch.", ""), "shape": "tiny" if a.tiny else "llama-1b",
                  "context": a.context, "steps": steps, "weight_bytes_per_token": weight_bytes}
        if dev.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for s in range(steps):
                pos.fill_(a.context + s)
                step(tok, pos)
            end.record()
            end.synchronize()
            result["decode_tokens_per_s"] = steps / (start.elapsed_time(end) / 1e3)
            try:
                graph = torch.cuda.CUDAGraph()
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    step(tok, pos)
                torch.cuda.current_stream().wait_stream(side)
                with torch.cuda.graph(graph):
                    step(tok, pos)
                graph.replay()
                sync()
                start.record()
                for s in range(steps):
                    pos.fill_(a.context + steps + s)
                    graph.replay()
                end.record()
                end.synchronize()
                result["decode_tokens_per_s_cuda_graph"] = steps / (start.elapsed_time(end) / 1e3)
            except Exception as e:
                result["cuda_graph_error"] = "%s: %s" % (type(e).__name__, str(e)[:200])
        else:
            import time
            t0 = time.perf_counter()
            for s in range(steps):
                pos.fill_(a.context + s)
                step(tok, pos)
            result["decode_tokens_per_s"] = steps / (time.perf_counter() - t0)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
