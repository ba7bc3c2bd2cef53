#!/usr/bin/env python3
"""PyTorch CPU side of packages/kernels-native/bench/bench.mjs.

The models are those the bench builds from @tessera/transformer (bench/gpt.mjs,
bench/encoders.mjs), op for op, with dropout off:
  - GPT: GPT2LMHeadModel's layout: pre-LN, fused c_attn, tied embeddings, tanh GELU,
    causal attention, positions looked up by index; mean cross-entropy over all T positions;
  - BERT: BertForMaskedLM's: word + position + token-type embeddings, separate query / key /
    value projections, post-LN, erf GELU, MLM head tied to the word embedding;
  - T5: T5ForConditionalGeneration's (v1.0, untied head): separate q / k / v (k / v over the
    encoder output in cross-attention), RMS norm, ReLU, relative position bias per stack.
AdamW: lr 3e-4, betas 0.9/0.95, weight decay 0.1 on every parameter, after the finite check
@tessera/optim makes before every update (isfinite().all() per gradient, one read for all).
Prints one JSON line.

Usage: /usr/bin/python3 tools/bench-native/torch_bench.py --threads 2 --configs 4,4,128,64,12,65
         [--bert L,H,E,T,B,V] [--t5 L,H,E,F,Tenc,Tdec,B,V]
"""
import argparse
import json
import math
import statistics
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
        self.wpe = nn.Parameter(torch.randn(block_size, n_embd) * 0.01)
        self.h = nn.ModuleList([Block(n_embd, n_head, n_layer) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = (self.wte[idx] + self.wpe[torch.arange(T)]).view(B * T, -1)
        for block in self.h:
            x = block(x, B, T)
        logits = self.ln_f(x) @ self.wte.t()
        return F.cross_entropy(logits, targets.view(B * T))


def attend(q, k, v, scale, mask=None, bias=None, causal=False):
    """softmax(q·kᵀ·scale + bias, masked)·v over [B, H, T, D]; mask [B, Tk] 1 = attend."""
    att = (q @ k.transpose(-2, -1)) * scale
    if bias is not None:
        att = att + bias
    if mask is not None:
        att = att.masked_fill(mask[:, None, None, :] == 0, float("-inf"))
    if causal:
        Tq, Tk = att.shape[-2:]
        att = att.masked_fill(~torch.ones(Tq, Tk, dtype=torch.bool).tril(), float("-inf"))
    return F.softmax(att, dim=-1) @ v


def split_heads(t, B, T, H):
    return t.view(B, T, H, t.shape[-1] // H).transpose(1, 2)  # [B, H, T, D]


def merge_heads(t):
    B, H, T, D = t.shape
    return t.transpose(1, 2).reshape(B * T, H * D)


class BertLayer(nn.Module):
    def __init__(self, E):
        super().__init__()
        self.query = nn.Linear(E, E)
        self.key = nn.Linear(E, E)
        self.value = nn.Linear(E, E)
        self.attn_out = nn.Linear(E, E)
        self.ln_1 = nn.LayerNorm(E, eps=1e-12)
        self.ff_in = nn.Linear(E, 4 * E)
        self.ff_out = nn.Linear(4 * E, E)
        self.ln_2 = nn.LayerNorm(E, eps=1e-12)

    def forward(self, x, mask, B, T, H):
        q, k, v = (split_heads(proj(x), B, T, H) for proj in (self.query, self.key, self.value))
        a = merge_heads(attend(q, k, v, 1.0 / math.sqrt(q.shape[-1]), mask=mask))
        x = self.ln_1(x + self.attn_out(a))
        return self.ln_2(x + self.ff_out(F.gelu(self.ff_in(x))))


class BertLike(nn.Module):
    def __init__(self, L, H, E, T, V):
        super().__init__()
        self.H = H
        self.word = nn.Parameter(torch.randn(V, E) * 0.02)
        self.pos = nn.Parameter(torch.randn(T, E) * 0.02)
        self.token_type = nn.Parameter(torch.randn(2, E) * 0.02)
        self.ln_emb = nn.LayerNorm(E, eps=1e-12)
        self.layers = nn.ModuleList([BertLayer(E) for _ in range(L)])
        self.head_dense = nn.Linear(E, E)
        self.head_ln = nn.LayerNorm(E, eps=1e-12)
        self.head_bias = nn.Parameter(torch.zeros(V))

    def forward(self, idx, mask, labels):
        B, T = idx.shape
        types = torch.zeros_like(idx)
        x = self.ln_emb((self.word[idx] + self.token_type[types] + self.pos[torch.arange(T)]).view(B * T, -1))
        for layer in self.layers:
            x = layer(x, mask, B, T, self.H)
        logits = self.head_ln(F.gelu(self.head_dense(x))) @ self.word.t() + self.head_bias
        return F.cross_entropy(logits, labels.view(B * T), ignore_index=-100)


def relative_bucket(rel, bidirectional, num_buckets=32, max_distance=128):
    """T5's bucket of relative positions rel = k - q (@tessera/transformer's relativePositionBucket)."""
    offset = torch.zeros_like(rel)
    if bidirectional:
        num_buckets //= 2
        offset = (rel > 0).long() * num_buckets
        n = rel.abs()
    else:
        n = (-rel).clamp(min=0)
    max_exact = num_buckets // 2
    large = max_exact + (
        torch.log(n.float().clamp(min=1) / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
    ).long()
    large = large.clamp(max=num_buckets - 1)
    return offset + torch.where(n < max_exact, n, large)


class T5Attention(nn.Module):
    def __init__(self, E):
        super().__init__()
        self.q = nn.Linear(E, E, bias=False)
        self.k = nn.Linear(E, E, bias=False)
        self.v = nn.Linear(E, E, bias=False)
        self.o = nn.Linear(E, E, bias=False)

    def forward(self, x, context, B, Tq, Tk, H, mask=None, bias=None, causal=False):
        source = x if context is None else context
        q = split_heads(self.q(x), B, Tq, H)
        k = split_heads(self.k(source), B, Tk, H)
        v = split_heads(self.v(source), B, Tk, H)
        return self.o(merge_heads(attend(q, k, v, 1.0, mask=mask, bias=bias, causal=causal)))


class RMSNorm(nn.Module):
    def __init__(self, E):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(E))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class T5Layer(nn.Module):
    def __init__(self, E, F_, decoder):
        super().__init__()
        self.ln_self = RMSNorm(E)
        self.self_attn = T5Attention(E)
        self.decoder = decoder
        if decoder:
            self.ln_cross = RMSNorm(E)
            self.cross_attn = T5Attention(E)
        self.ln_ff = RMSNorm(E)
        self.wi = nn.Linear(E, F_, bias=False)
        self.wo = nn.Linear(F_, E, bias=False)

    def forward(self, x, self_args, cross_args=None, encoded=None):
        x = x + self.self_attn(self.ln_self(x), None, **self_args)
        if self.decoder:
            x = x + self.cross_attn(self.ln_cross(x), encoded, **cross_args)
        return x + self.wo(F.relu(self.wi(self.ln_ff(x))))


class T5Like(nn.Module):
    def __init__(self, L, H, E, F_, Te, Td, V):
        super().__init__()
        self.H = H
        self.shared = nn.Parameter(torch.randn(V, E) * 0.02)
        self.enc_rel = nn.Parameter(torch.randn(32, H) * 0.02)
        self.dec_rel = nn.Parameter(torch.randn(32, H) * 0.02)
        self.encoder = nn.ModuleList([T5Layer(E, F_, False) for _ in range(L)])
        self.decoder = nn.ModuleList([T5Layer(E, F_, True) for _ in range(L)])
        self.enc_ln = RMSNorm(E)
        self.dec_ln = RMSNorm(E)
        self.lm_head = nn.Linear(E, V, bias=False)
        pos = lambda T: torch.arange(T)[None, :] - torch.arange(T)[:, None]  # [Tq, Tk]: k - q
        self.register_buffer("enc_buckets", relative_bucket(pos(Te), True))
        self.register_buffer("dec_buckets", relative_bucket(pos(Td), False))

    def forward(self, inputs, mask, decoder_inputs, labels):
        B, Te = inputs.shape
        Td = decoder_inputs.shape[1]
        H = self.H
        enc_bias = self.enc_rel[self.enc_buckets].permute(2, 0, 1)[None]  # [1, H, Te, Te]
        dec_bias = self.dec_rel[self.dec_buckets].permute(2, 0, 1)[None]  # [1, H, Td, Td]
        x = self.shared[inputs].view(B * Te, -1)
        for layer in self.encoder:
            x = layer(x, dict(B=B, Tq=Te, Tk=Te, H=H, mask=mask, bias=enc_bias))
        encoded = self.enc_ln(x)
        y = self.shared[decoder_inputs].view(B * Td, -1)
        for layer in self.decoder:
            y = layer(y, dict(B=B, Tq=Td, Tk=Td, H=H, bias=dec_bias, causal=True), dict(B=B, Tq=Td, Tk=Te, H=H, mask=mask), encoded)
        logits = self.lm_head(self.dec_ln(y))
        return F.cross_entropy(logits, labels.view(B * Td), ignore_index=-100)


def padding_mask(B, T, pad_fraction=0.125):
    mask = torch.ones(B, T)
    pad = int(T * pad_fraction)
    if pad:
        mask[1::2, T - pad:] = 0
    return mask


def time_steps(model, batch, steps, warmup):
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1, eps=1e-8)

    params = [p for p in model.parameters() if p.requires_grad]

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(*batch)
        loss.backward()
        if not torch.stack([torch.isfinite(p.grad).all() for p in params]).all().item():
            raise FloatingPointError("non-finite gradient")
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    # The median step: other jobs on a shared machine show up as outliers (as in bench.mjs).
    return statistics.median(times)


def bench_bert(cfg, steps, warmup):
    L, H, E, T, B, V = cfg
    torch.manual_seed(0)
    idx = torch.randint(0, V, (B, T))
    mask = padding_mask(B, T)
    labels = torch.where((torch.rand(B, T) < 0.15) & (mask > 0), idx, torch.full_like(idx, -100))
    dt = time_steps(BertLike(L, H, E, T, V), (idx, mask, labels), steps, warmup)
    return {"config": cfg, "ms_per_step": dt * 1000, "tokens_per_s": B * T / dt}


def bench_t5(cfg, steps, warmup):
    L, H, E, F_, Te, Td, B, V = cfg
    torch.manual_seed(0)
    inputs = torch.randint(0, V, (B, Te))
    labels = torch.randint(0, V, (B, Td))
    decoder_inputs = torch.cat([torch.zeros(B, 1, dtype=torch.long), labels[:, :-1]], dim=1)
    batch = (inputs, padding_mask(B, Te), decoder_inputs, labels)
    dt = time_steps(T5Like(L, H, E, F_, Te, Td, V), batch, steps, warmup)
    return {"config": cfg, "ms_per_step": dt * 1000, "tokens_per_s": B * (Te + Td) / dt}


def bench_matmul(n, reps):
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def bench_gpt(cfg, steps, warmup):
    L, H, E, T, B, V = cfg
    torch.manual_seed(0)
    idx = torch.randint(0, V, (B, T))
    targets = torch.randint(0, V, (B, T))
    dt = time_steps(GPT(L, H, E, T, V), (idx, targets), steps, warmup)
    return {"config": cfg, "ms_per_step": dt * 1000, "tokens_per_s": B * T / dt}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--matmul", type=int, default=1024)
    p.add_argument("--configs", nargs="*", default=["4,4,128,64,12,65"])
    p.add_argument("--bert", nargs="*", default=[])
    p.add_argument("--t5", nargs="*", default=[])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "matmul_gflops": bench_matmul(args.matmul, 30),
        "gpt": [bench_gpt([int(v) for v in c.split(",")], args.steps, args.warmup) for c in args.configs],
        "bert": [bench_bert([int(v) for v in c.split(",")], args.steps, args.warmup) for c in args.bert],
        "t5": [bench_t5([int(v) for v in c.split(",")], args.steps, args.warmup) for c in args.t5],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
