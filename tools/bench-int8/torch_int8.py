#!/usr/bin/env python3
"""PyTorch peer of packages/adapt/bench/int8.mjs: the same weights and inputs (the files that
bench writes, and the fp32 GPT checkpoint's model.safetensors), fp32 vs
torch.ao.quantization.quantize_dynamic (fbgemm, qint8 weights, per-tensor as its default).
Prints JSON on stdout: GEMM best times (ms), GPT perplexity and tokens/s, quantized state_dict bytes.

  python3 tools/bench-int8/torch_int8.py --dir /tmp/tessera-int8-bench --gpt CHECKPOINT --threads 2
"""
import argparse
import io
import json
import math
import os
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "I32": np.int32, "I8": np.int8}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        arr = np.frombuffer(raw[8 + n + b : 8 + n + end], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def best(fn, reps):
    for _ in range(2):
        fn()
    t_min = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        t_min = min(t_min, time.perf_counter() - t)
    return t_min * 1000


class Block(nn.Module):
    def __init__(self, c, n_head, eps):
        super().__init__()
        self.ln_1 = nn.LayerNorm(c, eps=eps)
        self.c_attn = nn.Linear(c, 3 * c)
        self.c_proj = nn.Linear(c, c)
        self.ln_2 = nn.LayerNorm(c, eps=eps)
        self.c_fc = nn.Linear(c, 4 * c)
        self.mlp_proj = nn.Linear(4 * c, c)
        self.n_head = n_head

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        heads = lambda t: t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # [B, H, T, D]
        q, k, v = heads(q), heads(k), heads(v)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // self.n_head)
        att = att.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.c_proj(y)
        h = self.c_fc(self.ln_2(x))
        h = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))  # gelu_new
        return x + self.mlp_proj(h)


class GPT2(nn.Module):
    """GPT-2 with nn.Linear layers (Conv1D weights transposed), so quantize_dynamic converts them."""

    def __init__(self, cfg, P):
        super().__init__()
        c, eps = cfg["n_embd"], cfg.get("layer_norm_epsilon", 1e-5)
        self.wte = nn.Parameter(P["transformer.wte.weight"])
        self.wpe = nn.Parameter(P["transformer.wpe.weight"])
        self.h = nn.ModuleList(Block(c, cfg["n_head"], eps) for _ in range(cfg["n_layer"]))
        self.ln_f = nn.LayerNorm(c, eps=eps)
        with torch.no_grad():
            for i, b in enumerate(self.h):
                p = f"transformer.h.{i}."
                for mod, name in [(b.c_attn, "attn.c_attn"), (b.c_proj, "attn.c_proj"), (b.c_fc, "mlp.c_fc"), (b.mlp_proj, "mlp.c_proj")]:
                    mod.weight.copy_(P[p + name + ".weight"].t())
                    mod.bias.copy_(P[p + name + ".bias"])
                for ln, name in [(b.ln_1, "ln_1"), (b.ln_2, "ln_2")]:
                    ln.weight.copy_(P[p + name + ".weight"])
                    ln.bias.copy_(P[p + name + ".bias"])
            self.ln_f.weight.copy_(P["transformer.ln_f.weight"])
            self.ln_f.bias.copy_(P["transformer.ln_f.bias"])

    def forward(self, ids):
        T = ids.shape[1]
        x = self.wte[ids] + self.wpe[:T]
        for b in self.h:
            x = b(x)
        return self.ln_f(x) @ self.wte.t()  # tied output layer, fp32 as in Tessera


class BertLayer(nn.Module):
    def __init__(self, c, inner, n_head, eps):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(c, c), nn.Linear(c, c), nn.Linear(c, c)
        self.attn_out, self.attn_ln = nn.Linear(c, c), nn.LayerNorm(c, eps=eps)
        self.inter, self.out, self.out_ln = nn.Linear(c, inner), nn.Linear(inner, c), nn.LayerNorm(c, eps=eps)
        self.n_head = n_head

    def forward(self, x, bias):
        B, T, C = x.shape
        heads = lambda t: t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # [B, H, T, D]
        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        att = ((q @ k.transpose(-2, -1)) / math.sqrt(C // self.n_head) + bias).softmax(-1)
        x = self.attn_ln(x + self.attn_out((att @ v).transpose(1, 2).reshape(B, T, C)))
        return self.out_ln(x + self.out(F.gelu(self.inter(x))))


class Bert(nn.Module):
    """BertForSequenceClassification with nn.Linear layers, loaded from the Tessera checkpoint."""

    def __init__(self, cfg, P):
        super().__init__()
        c, eps = cfg["hidden_size"], cfg.get("layer_norm_eps", 1e-12)
        # Registered, so the quantized state_dict (the size compared) holds them as Tessera's file does.
        self.emb = nn.ParameterDict(
            {k.split(".")[-2]: nn.Parameter(v) for k, v in P.items() if k.startswith("bert.embeddings.") and "LayerNorm" not in k}
        )
        self.emb_ln = nn.LayerNorm(c, eps=eps)
        self.layers = nn.ModuleList(
            BertLayer(c, cfg["intermediate_size"], cfg["num_attention_heads"], eps) for _ in range(cfg["num_hidden_layers"])
        )
        self.pooler, self.classifier = nn.Linear(c, c), nn.Linear(c, cfg["num_labels"])
        with torch.no_grad():
            def put(mod, name):
                mod.weight.copy_(P[name + ".weight"])
                mod.bias.copy_(P[name + ".bias"])
            put(self.emb_ln, "bert.embeddings.LayerNorm")
            for i, l in enumerate(self.layers):
                p = f"bert.encoder.layer.{i}."
                for mod, name in [(l.query, "attention.self.query"), (l.key, "attention.self.key"),
                                  (l.value, "attention.self.value"), (l.attn_out, "attention.output.dense"),
                                  (l.attn_ln, "attention.output.LayerNorm"), (l.inter, "intermediate.dense"),
                                  (l.out, "output.dense"), (l.out_ln, "output.LayerNorm")]:
                    put(mod, p + name)
            put(self.pooler, "bert.pooler.dense")
            put(self.classifier, "classifier")

    def forward(self, ids, mask):
        T = ids.shape[1]
        e = self.emb
        x = e["word_embeddings"][ids] + e["position_embeddings"][:T]
        x = self.emb_ln(x + e["token_type_embeddings"][0])
        bias = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for l in self.layers:
            x = l(x, bias)
        return self.classifier(torch.tanh(self.pooler(x[:, 0])))


def bert_measure(model, ids, mask, labels):
    with torch.no_grad():
        acc = (model(ids, mask).argmax(-1) == labels).float().mean().item()
        ms = best(lambda: model(ids, mask), 10)
    return {"accuracy": acc, "examplesPerS": ids.shape[0] / (ms / 1000)}


def gpt_measure(model, blocks):
    with torch.no_grad():
        logits = model(blocks)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), blocks[:, 1:].reshape(-1))
        T = blocks.shape[1]
        ms8 = best(lambda: model(blocks[:8]), 20)
        ms1 = best(lambda: model(blocks[:1]), 40)
    return {"ppl": math.exp(loss.item()), "tokPerS8": 8 * T / (ms8 / 1000), "tokPerS1": T / (ms1 / 1000)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--gpt", required=True)
    ap.add_argument("--bert", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    # fbgemm where this build has it (pip wheels); Debian's 1.13 ships onednn (x86, VNNI) and qnnpack.
    engines = torch.backends.quantized.supported_engines
    engine = next(e for e in ("fbgemm", "onednn", "x86", "qnnpack") if e in engines)
    torch.backends.quantized.engine = engine
    qd = torch.ao.quantization.quantize_dynamic

    gemm = {}
    tensors = read_safetensors(os.path.join(a.dir, "gemm.safetensors"))
    for name in sorted({k.rsplit(".", 1)[0] for k in tensors}):
        x, w = tensors[name + ".x"], tensors[name + ".w"]
        M, K = x.shape
        lin = nn.Linear(K, w.shape[0], bias=False)
        with torch.no_grad():
            lin.weight.copy_(w)
        q = qd(nn.Sequential(lin), {nn.Linear}, dtype=torch.qint8)
        reps = 10 if M * K * w.shape[0] > 5e7 else 50
        with torch.no_grad():
            gemm[name] = {"fp32": best(lambda: lin(x), reps), "int8": best(lambda: q(x), reps)}

    cfg = json.load(open(os.path.join(a.gpt, "config.json")))
    P = read_safetensors(os.path.join(a.gpt, "model.safetensors"))
    blocks = read_safetensors(os.path.join(a.dir, "gpt-blocks.safetensors"))["input_ids"].long()
    model = GPT2(cfg, P).eval()
    fp32 = gpt_measure(model, blocks)
    qmodel = qd(model, {nn.Linear}, dtype=torch.qint8)
    int8 = gpt_measure(qmodel, blocks)
    buf = io.BytesIO()
    torch.save(qmodel.state_dict(), buf)
    gpt = {"fp32": fp32, "int8": int8, "int8Bytes": buf.tell()}

    cfg = json.load(open(os.path.join(a.bert, "config.json")))
    P = read_safetensors(os.path.join(a.bert, "model.safetensors"))
    batch = read_safetensors(os.path.join(a.dir, "bert-batch.safetensors"))
    ids, mask, labels = batch["input_ids"].long(), batch["attention_mask"], batch["labels"].long()
    model = Bert(cfg, P).eval()
    bfp32 = bert_measure(model, ids, mask, labels)
    qmodel = qd(model, {nn.Linear}, dtype=torch.qint8)
    bint8 = bert_measure(qmodel, ids, mask, labels)
    buf = io.BytesIO()
    torch.save(qmodel.state_dict(), buf)
    bert = {"fp32": bfp32, "int8": bint8, "int8Bytes": buf.tell()}
    print(json.dumps({"torch": torch.__version__, "engine": engine, "threads": a.threads, "gemm": gemm, "gpt": gpt, "bert": bert}))


if __name__ == "__main__":
    main()
