#!/usr/bin/python3
"""Independent cross-check of generate.py's functional models against torch.nn's own
attention / transformer layers, loading the parameters by their HF names.

    /usr/bin/python3 tools/fixtures-transformer/crosscheck.py

GPT-2 blocks -> nn.TransformerEncoderLayer(norm_first=True) with c_attn.weight transposed into
in_proj_weight (checks the Conv1D layout); BERT layers -> nn.TransformerEncoderLayer(norm_first=
False) with q/k/v concatenated; T5 attention -> nn.MultiheadAttention with the 1/sqrt(d) scaling
undone on q and the relative position bias + mask passed as a per-head float attn_mask. Writes
nothing.
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate as G  # noqa: E402

torch.set_num_threads(1)
torch.set_grad_enabled(False)


def load(name):
    P = G.read_safetensors(os.path.join(G.OUT, name, 'model.safetensors'))
    E = G.read_safetensors(os.path.join(G.OUT, name, 'expected.safetensors'))
    import json
    with open(os.path.join(G.OUT, name, 'inputs.json')) as f:
        inp = {k: torch.tensor(v) for k, v in json.load(f).items()}
    with open(os.path.join(G.OUT, name, 'config.json')) as f:
        cfg = json.load(f)
    return cfg, P, inp, E


def report(name, got, want):
    err = (got - want).abs().max().item()
    print('  %-20s max |torch.nn - fixture| logits %.2e' % (name, err))
    assert err < 1e-4, name


def gpt2():
    cfg, P, inp, E = load('gpt2')
    C, H = cfg['n_embd'], cfg['n_head']
    ids = inp['input_ids']
    T = ids.shape[1]
    h = P['transformer.wte.weight'][ids] + P['transformer.wpe.weight'][:T][None]
    mask = torch.triu(torch.full((T, T), float('-inf')), 1)
    for i in range(cfg['n_layer']):
        p = 'transformer.h.%d.' % i
        layer = nn.TransformerEncoderLayer(C, H, dim_feedforward=4 * C, dropout=0.0, activation=G.gelu_new,
                                           layer_norm_eps=cfg['layer_norm_epsilon'], batch_first=True,
                                           norm_first=True)
        layer.self_attn.in_proj_weight.copy_(P[p + 'attn.c_attn.weight'].t())
        layer.self_attn.in_proj_bias.copy_(P[p + 'attn.c_attn.bias'])
        layer.self_attn.out_proj.weight.copy_(P[p + 'attn.c_proj.weight'].t())
        layer.self_attn.out_proj.bias.copy_(P[p + 'attn.c_proj.bias'])
        layer.linear1.weight.copy_(P[p + 'mlp.c_fc.weight'].t())
        layer.linear1.bias.copy_(P[p + 'mlp.c_fc.bias'])
        layer.linear2.weight.copy_(P[p + 'mlp.c_proj.weight'].t())
        layer.linear2.bias.copy_(P[p + 'mlp.c_proj.bias'])
        for a, b in (('norm1', 'ln_1'), ('norm2', 'ln_2')):
            getattr(layer, a).weight.copy_(P[p + b + '.weight'])
            getattr(layer, a).bias.copy_(P[p + b + '.bias'])
        layer.eval()
        h = layer(h, src_mask=mask)
    h = F.layer_norm(h, (C,), P['transformer.ln_f.weight'], P['transformer.ln_f.bias'], cfg['layer_norm_epsilon'])
    report('gpt2', h @ P['transformer.wte.weight'].t(), E['logits'])


def bert(name):
    cfg, P, inp, E = load(name)
    C, H, eps = cfg['hidden_size'], cfg['num_attention_heads'], cfg['layer_norm_eps']
    ids = inp['input_ids']
    T = ids.shape[1]
    h = (P['bert.embeddings.word_embeddings.weight'][ids]
         + P['bert.embeddings.token_type_embeddings.weight'][inp['token_type_ids']]
         + P['bert.embeddings.position_embeddings.weight'][:T][None])
    h = F.layer_norm(h, (C,), P['bert.embeddings.LayerNorm.weight'], P['bert.embeddings.LayerNorm.bias'], eps)
    pad = inp['attention_mask'] == 0
    for i in range(cfg['num_hidden_layers']):
        p = 'bert.encoder.layer.%d.' % i
        layer = nn.TransformerEncoderLayer(C, H, dim_feedforward=cfg['intermediate_size'], dropout=0.0,
                                           activation='gelu', layer_norm_eps=eps, batch_first=True)
        a = p + 'attention.self.'
        layer.self_attn.in_proj_weight.copy_(torch.cat([P[a + n + '.weight'] for n in ('query', 'key', 'value')]))
        layer.self_attn.in_proj_bias.copy_(torch.cat([P[a + n + '.bias'] for n in ('query', 'key', 'value')]))
        layer.self_attn.out_proj.weight.copy_(P[p + 'attention.output.dense.weight'])
        layer.self_attn.out_proj.bias.copy_(P[p + 'attention.output.dense.bias'])
        layer.linear1.weight.copy_(P[p + 'intermediate.dense.weight'])
        layer.linear1.bias.copy_(P[p + 'intermediate.dense.bias'])
        layer.linear2.weight.copy_(P[p + 'output.dense.weight'])
        layer.linear2.bias.copy_(P[p + 'output.dense.bias'])
        for m, b in (('norm1', 'attention.output.LayerNorm'), ('norm2', 'output.LayerNorm')):
            getattr(layer, m).weight.copy_(P[p + b + '.weight'])
            getattr(layer, m).bias.copy_(P[p + b + '.bias'])
        layer.eval()
        h = layer(h, src_key_padding_mask=pad)
    pooled = torch.tanh(F.linear(h[:, 0], P['bert.pooler.dense.weight'], P['bert.pooler.dense.bias']))
    if name == 'bert-pretraining':
        t = F.gelu(F.linear(h, P['cls.predictions.transform.dense.weight'], P['cls.predictions.transform.dense.bias']))
        t = F.layer_norm(t, (C,), P['cls.predictions.transform.LayerNorm.weight'],
                         P['cls.predictions.transform.LayerNorm.bias'], eps)
        report(name, t @ P['bert.embeddings.word_embeddings.weight'].t() + P['cls.predictions.bias'], E['logits'])
        report(name + ' nsp', F.linear(pooled, P['cls.seq_relationship.weight'], P['cls.seq_relationship.bias']),
               E['seq_relationship_logits'])
    else:
        report(name, F.linear(pooled, P['classifier.weight'], P['classifier.bias']), E['logits'])


def bucket(r, bidir, nb, md):
    """Mesh TF relative position bucket, written again in plain python."""
    n = nb
    ret = 0
    if bidir:
        n //= 2
        ret += n if r > 0 else 0
        r = abs(r)
    else:
        r = max(-r, 0)
    exact = n // 2
    if r < exact:
        return ret + r
    big = exact + int(math.log(r / exact) / math.log(md / exact) * (n - exact))
    return ret + min(big, n - 1)


def rms(x, w, eps):
    return w * (x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def t5(name):
    cfg, P, inp, E = load(name)
    D, H, Dk, eps = cfg['d_model'], cfg['num_heads'], cfg['d_kv'], cfg['layer_norm_epsilon']
    nb, md = cfg['relative_attention_num_buckets'], cfg['relative_attention_max_distance']

    def mha(prefix, x, kv, bias):
        m = nn.MultiheadAttention(D, H, bias=False, batch_first=True, kdim=D, vdim=D)
        # MHA scales q.k by 1/sqrt(Dk); T5 does not: pre-multiply q by sqrt(Dk).
        m.in_proj_weight.copy_(torch.cat([P[prefix + '.q.weight'] * math.sqrt(Dk), P[prefix + '.k.weight'],
                                          P[prefix + '.v.weight']]))
        m.out_proj.weight.copy_(P[prefix + '.o.weight'])
        m.eval()
        B = x.shape[0]
        mask = bias.expand(B, H, x.shape[1], kv.shape[1]).reshape(B * H, x.shape[1], kv.shape[1])
        return m(x, kv, kv, attn_mask=mask, need_weights=False)[0]

    def bias_table(table, q, k, bidir):
        rel = torch.arange(k)[None, :] - torch.arange(q)[:, None]
        b = torch.tensor([[bucket(int(r), bidir, nb, md) for r in row] for row in rel])
        return table[b].permute(2, 0, 1)[None]

    ids, am = inp['input_ids'], inp['attention_mask']
    fmin = torch.finfo(torch.float32).min
    enc_mask = ((1 - am[:, None, None, :].float()) * fmin)
    S = ids.shape[1]
    h = P['shared.weight'][ids]
    eb = bias_table(P['encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight'], S, S, True) + enc_mask
    gated = cfg['feed_forward_proj'] == 'gated-gelu'

    def ff(p, h):
        x = rms(h, P[p + '.layer_norm.weight'], eps)
        if gated:
            y = G.gelu_new(x @ P[p + '.DenseReluDense.wi_0.weight'].t()) * (x @ P[p + '.DenseReluDense.wi_1.weight'].t())
        else:
            y = torch.relu(x @ P[p + '.DenseReluDense.wi.weight'].t())
        return h + y @ P[p + '.DenseReluDense.wo.weight'].t()

    for i in range(cfg['num_layers']):
        p = 'encoder.block.%d.layer.' % i
        x = rms(h, P[p + '0.layer_norm.weight'], eps)
        h = h + mha(p + '0.SelfAttention', x, x, eb)
        h = ff(p + '1', h)
    enc = rms(h, P['encoder.final_layer_norm.weight'], eps)
    labels = inp['labels']
    dec_ids = torch.cat([torch.zeros_like(labels[:, :1]), labels[:, :-1]], 1).clamp(min=0)
    assert torch.equal(dec_ids, inp['decoder_input_ids'])
    T = dec_ids.shape[1]
    db = bias_table(P['decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight'], T, T, False)
    db = db + torch.triu(torch.full((T, T), fmin), 1)
    h = P['shared.weight'][dec_ids]
    for i in range(cfg['num_decoder_layers']):
        p = 'decoder.block.%d.layer.' % i
        x = rms(h, P[p + '0.layer_norm.weight'], eps)
        h = h + mha(p + '0.SelfAttention', x, x, db)
        x = rms(h, P[p + '1.layer_norm.weight'], eps)
        h = h + mha(p + '1.EncDecAttention', x, enc, enc_mask.expand(-1, H, T, -1))
        h = ff(p + '2', h)
    dec = rms(h, P['decoder.final_layer_norm.weight'], eps)
    if cfg['tie_word_embeddings']:
        logits = (dec / math.sqrt(D)) @ P['shared.weight'].t()
    else:
        logits = dec @ P['lm_head.weight'].t()
    report(name, logits, E['logits'])
    import json
    with open(os.path.join(G.OUT, name, 'relative_position_buckets.json')) as f:
        tab = json.load(f)
    for kind, bidir in (('bidirectional', True), ('unidirectional', False)):
        assert tab[kind] == [bucket(r, bidir, nb, md) for r in tab['relative_position']], kind
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
    print('  %-20s |loss - fixture| %.2e' % (name, abs(loss - E['loss']).item()))


if __name__ == '__main__':
    gpt2()
    bert('bert-pretraining')
    bert('bert-classification')
    t5('t5-v1_0')
    t5('t5-v1_1')
    print('ok')
