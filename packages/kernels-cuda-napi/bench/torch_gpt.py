#!/usr/bin/env python3
"""PyTorch eager side of bench/bench.mjs: the same GPT-2 (pre-LN, fused c_attn, tied
embeddings, tanh GELU, causal attention as batched GEMMs + masked softmax, no dropout), the
same batch, AdamW (lr 3e-4, betas 0.9/0.95, eps 1e-8, weight decay 0.1), on the same GPU.
Eager on purpose: no torch.compile, no fused SDPA, so the two sides do the same work.

Prints one JSON line: tokens/s, ms/step, MFU (6N + 12 L T E flops per token, nanoGPT's
estimate, against --peak-tflops).

Usage: python3 torch_gpt.py --batch 8 --seq 1024 [--layers 12 --heads 12 --embd 768 --vocab 50304]
         [--steps 5 --warmup 2] [--tf32] [--device cuda] [--peak-tflops 67]
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, E, H):
        super().__init__()
        self.H = H
        self.ln_1 = nn.LayerNorm(E)
        self.c_attn = nn.Linear(E, 3 * E)
        self.c_proj = nn.Linear(E, E)
        self.ln_2 = nn.LayerNorm(E)
        self.c_fc = nn.Linear(E, 4 * E)
        self.mlp_proj = nn.Linear(4 * E, E)

    def forward(self, x, mask):
        B, T, E = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(E, dim=2)
        heads = lambda t: t.view(B, T, self.H, E // self.H).transpose(1, 2)
        q, k, v = heads(q), heads(k), heads(v)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(E // self.H))
        att = F.softmax(att.masked_fill(~mask, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, E)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, L, H, E, T, V):
        super().__init__()
        self.wte = nn.Embedding(V, E)
        self.wpe = nn.Embedding(T, E)
        self.blocks = nn.ModuleList([Block(E, H) for _ in range(L)])
        self.ln_f = nn.LayerNorm(E)
        self.register_buffer("mask", torch.ones(T, T, dtype=torch.bool).tril(), persistent=False)
        for m in self.modules():  # GPT-2's init, as @tessera/transformer's GPT uses
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for b in self.blocks:
            x = b(x, self.mask[:T, :T])
        logits = self.ln_f(x) @ self.wte.weight.t()  # tied head
        return F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--embd", type=int, default=768)
    p.add_argument("--vocab", type=int, default=50304)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--tf32", action="store_true", help="TF32 tensor cores for fp32 GEMMs (off: what conformance compares)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--peak-tflops", type=float, default=67.0, help="H100/H200 SXM fp32 (non-tensor); TF32 dense is 495")
    a = p.parse_args()

    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.manual_seed(0)
    dev = torch.device(a.device)
    model = GPT(a.layers, a.heads, a.embd, a.seq, a.vocab).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    n_params = sum(p.numel() for p in model.parameters())
    data = torch.randint(0, a.vocab, (a.batch * a.seq + 1,), device=dev)
    idx = data[:-1].view(a.batch, a.seq)
    targets = data[1:].view(a.batch, a.seq)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(idx, targets)
        loss.backward()
        opt.step()
        return loss

    for _ in range(a.warmup):
        step()
    sync()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss = step()
        loss.item()  # the Tessera side reads its loss every step too
        sync()
        times.append(time.perf_counter() - t0)
    ms = 1000 * sorted(times)[len(times) // 2]
    tokens = a.batch * a.seq
    flops_per_token = 6 * n_params + 12 * a.layers * a.seq * a.embd
    tps = tokens / (ms / 1000)
    out = {
        "side": "pytorch-eager",
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
        "tf32": a.tf32,
        "params": n_params,
        "batch": a.batch,
        "seq": a.seq,
        "msPerStep": round(ms, 2),
        "tokensPerSec": round(tps, 1),
        "mfu": round(tps * flops_per_token / (a.peak_tflops * 1e12), 4),
        "peakTflops": a.peak_tflops,
        "loss": round(loss.item(), 4),
        "maxMemoryGiB": round(torch.cuda.max_memory_allocated() / 2**30, 2) if dev.type == "cuda" else None,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
