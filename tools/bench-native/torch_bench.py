#!/usr/bin/env python3
"""PyTorch CPU side of packages/kernels-native/bench/bench.mjs.

The GPT is the same model as packages/kernels-native/bench/gpt.mjs, op for op: nanoGPT
layout, pre-LN, tied embeddings, tanh GELU, causal attention, mean cross-entropy, AdamW
(lr 3e-4, betas 0.9/0.95, weight decay 0.1 on every parameter). Prints one JSON line.

Usage: /usr/bin/python3 tools/bench-native/torch_bench.py --threads 2 --configs 4,4,128,64,12,65
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, n_embd, n_head, n_layer):
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(n_embd)
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.mlp_proj = nn.Linear(4 * n_embd, n_embd)
        for lin, std in ((self.c_attn, 0.02), (self.c_fc, 0.02), (self.c_proj, 0.02 / math.sqrt(2 * n_layer)),
                         (self.mlp_proj, 0.02 / math.sqrt(2 * n_layer))):
            nn.init.normal_(lin.weight, std=std)
            nn.init.zeros_(lin.bias)

    def forward(self, x, B, T):
        E = x.shape[-1]
        H = self.n_head
        q, k, v = self.c_attn(self.ln_1(x)).split(E, dim=1)
        heads = lambda t: t.view(B, T, H, E // H).transpose(1, 2)
        q, k, v = heads(q), heads(k), heads(v)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(E // H))
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        att = F.softmax(att.masked_fill(~mask, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B * T, E)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, n_layer, n_head, n_embd, block_size, vocab_size):
        super().__init__()
        self.wte = nn.Parameter(torch.randn(vocab_size, n_embd) * 0.02)
        self.wpe = nn.Parameter(torch.randn(block_size, n_embd) * 0.02)
        self.h = nn.ModuleList([Block(n_embd, n_head, n_layer) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = (self.wte[idx] + self.wpe[:T]).view(B * T, -1)
        for block in self.h:
            x = block(x, B, T)
        logits = self.ln_f(x) @ self.wte.t()
        return F.cross_entropy(logits, targets.view(B * T))


def bench_matmul(n, reps):
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    dt = (time.perf_counter() - t) / reps
    return 2 * n ** 3 / dt / 1e9


def bench_gpt(cfg, steps, warmup):
    L, H, E, T, B, V = cfg
    torch.manual_seed(0)
    model = GPT(L, H, E, T, V)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1, eps=1e-8)
    idx = torch.randint(0, V, (B, T))
    targets = torch.randint(0, V, (B, T))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(idx, targets)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    dt = (time.perf_counter() - t) / steps
    return {"config": cfg, "ms_per_step": dt * 1000, "tokens_per_s": B * T / dt}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--matmul", type=int, default=1024)
    p.add_argument("--configs", nargs="*", default=["4,4,128,64,12,65"])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "matmul_gflops": bench_matmul(args.matmul, 20),
        "gpt": [bench_gpt([int(v) for v in c.split(",")], args.steps, args.warmup) for c in args.configs],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
