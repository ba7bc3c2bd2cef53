#!/usr/bin/python3
"""PyTorch golden fixtures for @tessera/transformer (GPT-2, BERT, T5).

GPT-2 (GPT2LMHeadModel), BERT (BertForPreTraining, BertForSequenceClassification) and T5
(T5ForConditionalGeneration, v1.0 and v1.1) are written here in plain PyTorch from the
published architectures, following HuggingFace transformers' modelling code step by step,
with HF's parameter names and layouts exactly (as `save_pretrained` writes them). No
`transformers` library, no downloads: Debian's python3-torch only.

    /usr/bin/python3 tools/fixtures-transformer/generate.py

writes, for each fixture in packages/conformance/fixtures/<name>/ (published with
@tessera/conformance for its level 3; @tessera/transformer's tests read them there too):
    config.json           HF config (HF field names)
    model.safetensors     the checkpoint, HF names/layouts, tied tensors saved once
    inputs.json           integer inputs (and decoder_input_ids as computed for T5)
    expected.safetensors  logits, loss, grad.<param> for every saved parameter, plus a few
                          hidden states for debugging
Running it again reproduces byte-identical files (fixed seeds, one thread).

The models are written functionally over a dict {HF name: tensor}, so a tied weight is one
dict entry used twice and its gradient is the total gradient. Before writing, every model
is checked: float64 autograd vs central finite differences on a few parameter entries, and
the float32 gradients vs the float64 ones.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, '..', '..', 'packages', 'conformance', 'fixtures'))


# ------------------------------------------------------------------ safetensors writer

_DTYPES = {torch.float32: 'F32', torch.float64: 'F64', torch.int64: 'I64', torch.int32: 'I32'}


def write_safetensors(path, tensors, metadata=None):
    """Write {name: tensor} as safetensors: u64 LE header length, JSON header, raw LE data.

    Tensors are laid out in name order; the header is compact JSON padded with spaces so
    that the data starts at a multiple of 8 bytes."""
    assert sys.byteorder == 'little'
    names = sorted(tensors)
    header = {'__metadata__': metadata or {'format': 'pt'}}
    blobs = []
    offset = 0
    for name in names:
        t = tensors[name].detach().contiguous().cpu()
        data = t.numpy().tobytes()
        assert len(data) == t.numel() * t.element_size()
        header[name] = {'dtype': _DTYPES[t.dtype], 'shape': list(t.shape),
                        'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hbytes = json.dumps(header, separators=(',', ':')).encode('utf-8')
    hbytes += b' ' * ((8 - (8 + len(hbytes)) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(hbytes)))
        f.write(hbytes)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Read back (used to verify the writer round-trips)."""
    with open(path, 'rb') as f:
        raw = f.read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n].decode('utf-8'))
    base = 8 + n
    out = {}
    rev = {v: k for k, v in _DTYPES.items()}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        b, e = info['data_offsets']
        dt = rev[info['dtype']]
        t = torch.frombuffer(bytearray(raw[base + b:base + e]), dtype=dt) if e > b else torch.empty(0, dtype=dt)
        out[name] = t.reshape(info['shape'])
    return out


def write_json(path, obj):
    """Pretty at the top level, each value on one line (keeps integer arrays readable)."""
    lines = ['  %s: %s' % (json.dumps(k), json.dumps(v, separators=(', ', ': '))) for k, v in obj.items()]
    with open(path, 'w') as f:
        f.write('{\n' + ',\n'.join(lines) + '\n}\n')


# ------------------------------------------------------------------ shared pieces

def gelu_new(x):
    """HF "gelu_new" (GPT-2, T5 v1.1 gated-gelu): the tanh approximation."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gelu_erf(x):
    """HF "gelu" (BERT): the exact erf form."""
    return F.gelu(x)


def ext_mask(mask2d, dtype):
    """HF get_extended_attention_mask / invert_attention_mask: [B, T] of 1/0 ->
    additive [B, 1, 1, T] with 0 where attended and finfo(dtype).min where masked."""
    m = mask2d[:, None, None, :].to(dtype)
    return (1.0 - m) * torch.finfo(dtype).min


def ce(logits, labels):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


def linear(x, P, prefix, bias=True):
    """nn.Linear: weight [out, in]."""
    return F.linear(x, P[prefix + '.weight'], P[prefix + '.bias'] if bias else None)


def conv1d(x, P, prefix):
    """GPT-2 Conv1D: weight [in, out], y = x @ W + b."""
    return torch.addmm(P[prefix + '.bias'], x.reshape(-1, x.shape[-1]), P[prefix + '.weight']).reshape(
        *x.shape[:-1], P[prefix + '.weight'].shape[1])


def split_heads(x, n_head):
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head).permute(0, 2, 1, 3)


def merge_heads(x):
    B, H, T, D = x.shape
    return x.permute(0, 2, 1, 3).contiguous().view(B, T, H * D)


class Init:
    """Deterministic random parameters, generated in declaration order from one seed."""

    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)
        self.P = {}

    def normal(self, name, shape, std, mean=0.0):
        assert name not in self.P, name
        self.P[name] = torch.randn(*shape, generator=self.g) * std + mean

    def weight(self, name, shape, std=0.2):
        self.normal(name, shape, std)

    def bias(self, name, shape, std=0.1):
        self.normal(name, shape, std)

    def norm(self, prefix, n, bias=True):
        self.normal(prefix + '.weight', (n,), 0.2, mean=1.0)
        if bias:
            self.normal(prefix + '.bias', (n,), 0.1)


# ------------------------------------------------------------------ GPT-2

GPT2_CONFIG = {
    'architectures': ['GPT2LMHeadModel'],
    'model_type': 'gpt2',
    'vocab_size': 99,
    'n_positions': 16,
    'n_embd': 32,
    'n_layer': 2,
    'n_head': 4,
    'n_inner': None,
    'activation_function': 'gelu_new',
    'layer_norm_epsilon': 1e-5,
    'resid_pdrop': 0.0,
    'embd_pdrop': 0.0,
    'attn_pdrop': 0.0,
    'initializer_range': 0.02,
    'scale_attn_weights': True,
    'scale_attn_by_inverse_layer_idx': False,
    'reorder_and_upcast_attn': False,
    'tie_word_embeddings': True,
    'bos_token_id': 98,
    'eos_token_id': 98,
    'use_cache': True,
    'torch_dtype': 'float32',
}


def gpt2_init(cfg, seed):
    I = Init(seed)
    C, V = cfg['n_embd'], cfg['vocab_size']
    inner = cfg['n_inner'] or 4 * C
    I.weight('transformer.wte.weight', (V, C))
    I.weight('transformer.wpe.weight', (cfg['n_positions'], C), std=0.1)
    for i in range(cfg['n_layer']):
        p = 'transformer.h.%d.' % i
        I.norm(p + 'ln_1', C)
        I.weight(p + 'attn.c_attn.weight', (C, 3 * C))
        I.bias(p + 'attn.c_attn.bias', (3 * C,))
        I.weight(p + 'attn.c_proj.weight', (C, C))
        I.bias(p + 'attn.c_proj.bias', (C,))
        I.norm(p + 'ln_2', C)
        I.weight(p + 'mlp.c_fc.weight', (C, inner))
        I.bias(p + 'mlp.c_fc.bias', (inner,))
        I.weight(p + 'mlp.c_proj.weight', (inner, C))
        I.bias(p + 'mlp.c_proj.bias', (C,))
    I.norm('transformer.ln_f', C)
    return I.P


def gpt2_forward(P, cfg, inp):
    ids = inp['input_ids']
    B, T = ids.shape
    C, H, eps = cfg['n_embd'], cfg['n_head'], cfg['layer_norm_epsilon']
    dtype = P['transformer.wte.weight'].dtype
    pos = torch.arange(T)
    h = F.embedding(ids, P['transformer.wte.weight']) + F.embedding(pos, P['transformer.wpe.weight'])[None]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))[None, None]
    amask = ext_mask(inp['attention_mask'], dtype) if 'attention_mask' in inp else None
    min_val = torch.finfo(dtype).min
    for i in range(cfg['n_layer']):
        p = 'transformer.h.%d.' % i
        x = F.layer_norm(h, (C,), P[p + 'ln_1.weight'], P[p + 'ln_1.bias'], eps)
        qkv = conv1d(x, P, p + 'attn.c_attn')
        q, k, v = (split_heads(t, H) for t in qkv.split(C, dim=2))
        w = torch.matmul(q, k.transpose(-1, -2)) / (v.shape[-1] ** 0.5)
        w = torch.where(causal, w, torch.tensor(min_val, dtype=dtype))
        if amask is not None:
            w = w + amask
        w = F.softmax(w, dim=-1)
        a = merge_heads(torch.matmul(w, v))
        h = h + conv1d(a, P, p + 'attn.c_proj')
        x = F.layer_norm(h, (C,), P[p + 'ln_2.weight'], P[p + 'ln_2.bias'], eps)
        h = h + conv1d(gelu_new(conv1d(x, P, p + 'mlp.c_fc')), P, p + 'mlp.c_proj')
    h = F.layer_norm(h, (C,), P['transformer.ln_f.weight'], P['transformer.ln_f.bias'], eps)
    logits = F.linear(h, P['transformer.wte.weight'])  # lm_head tied to wte
    out = {'logits': logits, 'last_hidden_state': h}
    if 'labels' in inp:
        out['loss'] = ce(logits[:, :-1, :].contiguous(), inp['labels'][:, 1:].contiguous())
    return out


def gpt2_inputs():
    input_ids = [[98, 12, 45, 7, 33, 81, 5, 60],
                 [98, 3, 71, 71, 20, 9, 52, 14]]
    labels = [[-100, 12, 45, 7, 33, 81, 5, 60],
              [-100, 3, 71, -100, 20, 9, 52, -100]]
    return {'input_ids': input_ids, 'attention_mask': [[1] * 8, [1] * 8], 'labels': labels}


# ------------------------------------------------------------------ BERT

BERT_BASE_CONFIG = {
    'model_type': 'bert',
    'vocab_size': 99,
    'hidden_size': 32,
    'num_hidden_layers': 2,
    'num_attention_heads': 4,
    'intermediate_size': 37,
    'hidden_act': 'gelu',
    'max_position_embeddings': 16,
    'type_vocab_size': 2,
    'layer_norm_eps': 1e-12,
    'hidden_dropout_prob': 0.0,
    'attention_probs_dropout_prob': 0.0,
    'initializer_range': 0.02,
    'position_embedding_type': 'absolute',
    'pad_token_id': 0,
    'tie_word_embeddings': True,
    'use_cache': True,
    'torch_dtype': 'float32',
}

BERT_PRETRAINING_CONFIG = dict(BERT_BASE_CONFIG, architectures=['BertForPreTraining'])
BERT_CLASSIFICATION_CONFIG = dict(
    BERT_BASE_CONFIG, architectures=['BertForSequenceClassification'], num_labels=3,
    id2label={'0': 'LABEL_0', '1': 'LABEL_1', '2': 'LABEL_2'},
    label2id={'LABEL_0': 0, 'LABEL_1': 1, 'LABEL_2': 2},
    problem_type='single_label_classification')


def bert_init_encoder(I, cfg):
    C, V, Fi = cfg['hidden_size'], cfg['vocab_size'], cfg['intermediate_size']
    I.weight('bert.embeddings.word_embeddings.weight', (V, C))
    I.weight('bert.embeddings.position_embeddings.weight', (cfg['max_position_embeddings'], C), std=0.1)
    I.weight('bert.embeddings.token_type_embeddings.weight', (cfg['type_vocab_size'], C), std=0.1)
    I.norm('bert.embeddings.LayerNorm', C)
    for i in range(cfg['num_hidden_layers']):
        p = 'bert.encoder.layer.%d.' % i
        for n in ('query', 'key', 'value'):
            I.weight(p + 'attention.self.%s.weight' % n, (C, C))
            I.bias(p + 'attention.self.%s.bias' % n, (C,))
        I.weight(p + 'attention.output.dense.weight', (C, C))
        I.bias(p + 'attention.output.dense.bias', (C,))
        I.norm(p + 'attention.output.LayerNorm', C)
        I.weight(p + 'intermediate.dense.weight', (Fi, C))
        I.bias(p + 'intermediate.dense.bias', (Fi,))
        I.weight(p + 'output.dense.weight', (C, Fi))
        I.bias(p + 'output.dense.bias', (C,))
        I.norm(p + 'output.LayerNorm', C)
    I.weight('bert.pooler.dense.weight', (C, C))
    I.bias('bert.pooler.dense.bias', (C,))


def bert_pretraining_init(cfg, seed):
    I = Init(seed)
    C, V = cfg['hidden_size'], cfg['vocab_size']
    bert_init_encoder(I, cfg)
    I.weight('cls.predictions.transform.dense.weight', (C, C))
    I.bias('cls.predictions.transform.dense.bias', (C,))
    I.norm('cls.predictions.transform.LayerNorm', C)
    I.bias('cls.predictions.bias', (V,))  # also cls.predictions.decoder.bias (tied, not saved)
    I.weight('cls.seq_relationship.weight', (2, C))
    I.bias('cls.seq_relationship.bias', (2,))
    return I.P


def bert_classification_init(cfg, seed):
    I = Init(seed)
    bert_init_encoder(I, cfg)
    I.weight('classifier.weight', (cfg['num_labels'], cfg['hidden_size']))
    I.bias('classifier.bias', (cfg['num_labels'],))
    return I.P


def bert_encoder(P, cfg, inp):
    ids = inp['input_ids']
    B, T = ids.shape
    C, H, eps = cfg['hidden_size'], cfg['num_attention_heads'], cfg['layer_norm_eps']
    dtype = P['bert.embeddings.word_embeddings.weight'].dtype
    tt = inp.get('token_type_ids', torch.zeros_like(ids))
    pos = torch.arange(T)
    e = (F.embedding(ids, P['bert.embeddings.word_embeddings.weight'])
         + F.embedding(tt, P['bert.embeddings.token_type_embeddings.weight'])
         + F.embedding(pos, P['bert.embeddings.position_embeddings.weight'])[None])
    h = F.layer_norm(e, (C,), P['bert.embeddings.LayerNorm.weight'], P['bert.embeddings.LayerNorm.bias'], eps)
    amask = ext_mask(inp.get('attention_mask', torch.ones_like(ids)), dtype)
    for i in range(cfg['num_hidden_layers']):
        p = 'bert.encoder.layer.%d.' % i
        q = split_heads(linear(h, P, p + 'attention.self.query'), H)
        k = split_heads(linear(h, P, p + 'attention.self.key'), H)
        v = split_heads(linear(h, P, p + 'attention.self.value'), H)
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(C // H) + amask
        a = merge_heads(torch.matmul(F.softmax(s, dim=-1), v))
        a = F.layer_norm(linear(a, P, p + 'attention.output.dense') + h, (C,),
                         P[p + 'attention.output.LayerNorm.weight'], P[p + 'attention.output.LayerNorm.bias'], eps)
        m = gelu_erf(linear(a, P, p + 'intermediate.dense'))
        h = F.layer_norm(linear(m, P, p + 'output.dense') + a, (C,),
                         P[p + 'output.LayerNorm.weight'], P[p + 'output.LayerNorm.bias'], eps)
    pooled = torch.tanh(linear(h[:, 0], P, 'bert.pooler.dense'))
    return h, pooled


def bert_pretraining_forward(P, cfg, inp):
    C, eps = cfg['hidden_size'], cfg['layer_norm_eps']
    h, pooled = bert_encoder(P, cfg, inp)
    t = gelu_erf(linear(h, P, 'cls.predictions.transform.dense'))
    t = F.layer_norm(t, (C,), P['cls.predictions.transform.LayerNorm.weight'],
                     P['cls.predictions.transform.LayerNorm.bias'], eps)
    logits = F.linear(t, P['bert.embeddings.word_embeddings.weight'], P['cls.predictions.bias'])
    nsp = linear(pooled, P, 'cls.seq_relationship')
    out = {'logits': logits, 'seq_relationship_logits': nsp, 'last_hidden_state': h, 'pooler_output': pooled}
    if 'labels' in inp and 'next_sentence_label' in inp:
        out['loss'] = ce(logits, inp['labels']) + ce(nsp, inp['next_sentence_label'])
    return out


def bert_classification_forward(P, cfg, inp):
    h, pooled = bert_encoder(P, cfg, inp)
    logits = linear(pooled, P, 'classifier')
    out = {'logits': logits, 'last_hidden_state': h, 'pooler_output': pooled}
    if 'labels' in inp:
        out['loss'] = ce(logits, inp['labels'])
    return out


def bert_common_inputs():
    # [CLS]=2 a b c [SEP]=3 d e [SEP]=3 | second sequence is shorter and padded with 0.
    input_ids = [[2, 17, 54, 8, 3, 91, 30, 66, 3],
                 [2, 40, 12, 3, 77, 25, 3, 0, 0]]
    attention_mask = [[1, 1, 1, 1, 1, 1, 1, 1, 1],
                      [1, 1, 1, 1, 1, 1, 1, 0, 0]]
    token_type_ids = [[0, 0, 0, 0, 0, 1, 1, 1, 1],
                      [0, 0, 0, 0, 1, 1, 1, 0, 0]]
    return input_ids, attention_mask, token_type_ids


def bert_pretraining_inputs():
    input_ids, attention_mask, token_type_ids = bert_common_inputs()
    # MLM: a few positions carry their original token; the rest are ignored.
    labels = [[-100, 17, -100, 8, -100, -100, 44, -100, -100],
              [-100, -100, 12, -100, 77, 61, -100, -100, -100]]
    input_ids = [list(r) for r in input_ids]
    input_ids[0][1] = 4  # [MASK]=4 at the masked positions
    input_ids[0][6] = 4
    input_ids[1][4] = 4
    return {'input_ids': input_ids, 'attention_mask': attention_mask, 'token_type_ids': token_type_ids,
            'labels': labels, 'next_sentence_label': [0, 1]}


def bert_classification_inputs():
    input_ids, attention_mask, token_type_ids = bert_common_inputs()
    return {'input_ids': input_ids, 'attention_mask': attention_mask, 'token_type_ids': token_type_ids,
            'labels': [2, 0]}


# ------------------------------------------------------------------ T5

T5_BASE_CONFIG = {
    'model_type': 't5',
    'vocab_size': 99,
    'd_model': 32,
    'd_kv': 8,
    'd_ff': 37,
    'num_layers': 2,
    'num_decoder_layers': 2,
    'num_heads': 4,
    'relative_attention_num_buckets': 32,
    'relative_attention_max_distance': 128,
    'layer_norm_epsilon': 1e-6,
    'dropout_rate': 0.0,
    'initializer_factor': 1.0,
    'is_encoder_decoder': True,
    'decoder_start_token_id': 0,
    'pad_token_id': 0,
    'eos_token_id': 1,
    'use_cache': True,
    'torch_dtype': 'float32',
}

T5_V1_0_CONFIG = dict(T5_BASE_CONFIG, architectures=['T5ForConditionalGeneration'],
                      feed_forward_proj='relu', dense_act_fn='relu', is_gated_act=False,
                      tie_word_embeddings=True)
T5_V1_1_CONFIG = dict(T5_BASE_CONFIG, architectures=['T5ForConditionalGeneration'],
                      feed_forward_proj='gated-gelu', dense_act_fn='gelu_new', is_gated_act=True,
                      tie_word_embeddings=False)


def t5_init(cfg, seed):
    I = Init(seed)
    D, V, H, Dk, Ff = cfg['d_model'], cfg['vocab_size'], cfg['num_heads'], cfg['d_kv'], cfg['d_ff']
    inner = H * Dk
    gated = cfg['feed_forward_proj'].startswith('gated-')
    I.weight('shared.weight', (V, D), std=1.0)  # HF T5 initialises shared with std 1.0 too

    def attn(prefix, rel):
        I.weight(prefix + '.q.weight', (inner, D))
        I.weight(prefix + '.k.weight', (inner, D))
        I.weight(prefix + '.v.weight', (inner, D))
        I.weight(prefix + '.o.weight', (D, inner))
        if rel:
            I.weight(prefix + '.relative_attention_bias.weight', (cfg['relative_attention_num_buckets'], H), std=0.5)

    def ff(prefix):
        if gated:
            I.weight(prefix + '.DenseReluDense.wi_0.weight', (Ff, D))
            I.weight(prefix + '.DenseReluDense.wi_1.weight', (Ff, D))
        else:
            I.weight(prefix + '.DenseReluDense.wi.weight', (Ff, D))
        I.weight(prefix + '.DenseReluDense.wo.weight', (D, Ff))
        I.norm(prefix + '.layer_norm', D, bias=False)

    for i in range(cfg['num_layers']):
        p = 'encoder.block.%d.layer.' % i
        attn(p + '0.SelfAttention', i == 0)
        I.norm(p + '0.layer_norm', D, bias=False)
        ff(p + '1')
    I.norm('encoder.final_layer_norm', D, bias=False)
    for i in range(cfg['num_decoder_layers']):
        p = 'decoder.block.%d.layer.' % i
        attn(p + '0.SelfAttention', i == 0)
        I.norm(p + '0.layer_norm', D, bias=False)
        attn(p + '1.EncDecAttention', False)
        I.norm(p + '1.layer_norm', D, bias=False)
        ff(p + '2')
    I.norm('decoder.final_layer_norm', D, bias=False)
    if not cfg['tie_word_embeddings']:
        I.weight('lm_head.weight', (V, D))
    return I.P


def _upcast(x):
    """HF casts to float32 for the RMS variance and the softmax (a no-op for float32 runs);
    never downcast here, so the float64 self-check stays float64."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def t5_layer_norm(x, w, eps):
    """T5LayerNorm (RMSNorm): no mean subtraction, no bias, variance in float32."""
    var = _upcast(x).pow(2).mean(-1, keepdim=True)
    x = x * torch.rsqrt(var + eps)
    return w * x.to(w.dtype)


def relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    """HF T5Attention._relative_position_bucket (Mesh TensorFlow's), verbatim in behaviour."""
    relative_buckets = 0
    if bidirectional:
        num_buckets //= 2
        relative_buckets += (relative_position > 0).to(torch.long) * num_buckets
        relative_position = torch.abs(relative_position)
    else:
        relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    relative_position_if_large = max_exact + (
        torch.log(relative_position.float() / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).to(torch.long)
    relative_position_if_large = torch.min(
        relative_position_if_large, torch.full_like(relative_position_if_large, num_buckets - 1))
    relative_buckets += torch.where(is_small, relative_position, relative_position_if_large)
    return relative_buckets


def t5_compute_bias(table, q_len, k_len, bidirectional, cfg):
    ctx = torch.arange(q_len, dtype=torch.long)[:, None]
    mem = torch.arange(k_len, dtype=torch.long)[None, :]
    buckets = relative_position_bucket(mem - ctx, bidirectional=bidirectional,
                                       num_buckets=cfg['relative_attention_num_buckets'],
                                       max_distance=cfg['relative_attention_max_distance'])
    values = F.embedding(buckets, table)  # [q, k, H]
    return values.permute(2, 0, 1).unsqueeze(0)  # [1, H, q, k]


def t5_attention(P, prefix, x, kv, bias, H):
    """T5Attention: no biases, no 1/sqrt(d) scaling; position bias (+ mask) added to scores."""
    q = split_heads(F.linear(x, P[prefix + '.q.weight']), H)
    k = split_heads(F.linear(kv, P[prefix + '.k.weight']), H)
    v = split_heads(F.linear(kv, P[prefix + '.v.weight']), H)
    s = torch.matmul(q, k.transpose(-1, -2)) + bias
    w = F.softmax(_upcast(s), dim=-1).type_as(s)
    return F.linear(merge_heads(torch.matmul(w, v)), P[prefix + '.o.weight'])


def t5_ff(P, prefix, x, cfg):
    eps = cfg['layer_norm_epsilon']
    y = t5_layer_norm(x, P[prefix + '.layer_norm.weight'], eps)
    d = prefix + '.DenseReluDense.'
    if cfg['feed_forward_proj'] == 'gated-gelu':
        y = gelu_new(F.linear(y, P[d + 'wi_0.weight'])) * F.linear(y, P[d + 'wi_1.weight'])
    elif cfg['feed_forward_proj'] == 'relu':
        y = F.relu(F.linear(y, P[d + 'wi.weight']))
    else:
        raise ValueError(cfg['feed_forward_proj'])
    return x + F.linear(y, P[d + 'wo.weight'])


def t5_shift_right(labels, cfg):
    start, pad = cfg['decoder_start_token_id'], cfg['pad_token_id']
    shifted = labels.new_zeros(labels.shape)
    shifted[..., 1:] = labels[..., :-1].clone()
    shifted[..., 0] = start
    return shifted.masked_fill(shifted == -100, pad)


def t5_forward(P, cfg, inp):
    H, eps, D = cfg['num_heads'], cfg['layer_norm_epsilon'], cfg['d_model']
    dtype = P['shared.weight'].dtype
    ids = inp['input_ids']
    B, S = ids.shape
    enc_mask = ext_mask(inp.get('attention_mask', torch.ones_like(ids)), dtype)  # [B,1,1,S]

    # encoder
    h = F.embedding(ids, P['shared.weight'])
    bias = t5_compute_bias(P['encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight'],
                           S, S, True, cfg) + enc_mask  # shared by every encoder layer
    for i in range(cfg['num_layers']):
        p = 'encoder.block.%d.layer.' % i
        x = t5_layer_norm(h, P[p + '0.layer_norm.weight'], eps)
        h = h + t5_attention(P, p + '0.SelfAttention', x, x, bias, H)
        h = t5_ff(P, p + '1', h, cfg)
    enc = t5_layer_norm(h, P['encoder.final_layer_norm.weight'], eps)

    # decoder
    dec_ids = inp['decoder_input_ids'] if 'decoder_input_ids' in inp else t5_shift_right(inp['labels'], cfg)
    T = dec_ids.shape[1]
    dec_mask2d = inp.get('decoder_attention_mask', torch.ones_like(dec_ids))
    causal = torch.tril(torch.ones(T, T, dtype=dtype))[None, None] * dec_mask2d[:, None, None, :].to(dtype)
    self_mask = (1.0 - causal) * torch.finfo(dtype).min  # [B,1,T,T]
    self_bias = t5_compute_bias(P['decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight'],
                                T, T, False, cfg) + self_mask
    cross_bias = torch.zeros(1, H, T, S, dtype=dtype) + enc_mask  # EncDecAttention has no relative bias
    h = F.embedding(dec_ids, P['shared.weight'])
    for i in range(cfg['num_decoder_layers']):
        p = 'decoder.block.%d.layer.' % i
        x = t5_layer_norm(h, P[p + '0.layer_norm.weight'], eps)
        h = h + t5_attention(P, p + '0.SelfAttention', x, x, self_bias, H)
        x = t5_layer_norm(h, P[p + '1.layer_norm.weight'], eps)
        h = h + t5_attention(P, p + '1.EncDecAttention', x, enc, cross_bias, H)
        h = t5_ff(P, p + '2', h, cfg)
    dec = t5_layer_norm(h, P['decoder.final_layer_norm.weight'], eps)

    if cfg['tie_word_embeddings']:
        logits = F.linear(dec * (D ** -0.5), P['shared.weight'])
    else:
        logits = F.linear(dec, P['lm_head.weight'])
    out = {'logits': logits, 'last_hidden_state': dec, 'encoder_last_hidden_state': enc}
    if 'labels' in inp:
        out['loss'] = ce(logits, inp['labels'])
    return out


def t5_inputs(cfg):
    # eos=1 ends each sequence; the second encoder input is padded with 0.
    input_ids = [[13, 57, 8, 90, 22, 35, 71, 6, 1],
                 [44, 9, 63, 18, 1, 0, 0, 0, 0]]
    attention_mask = [[1, 1, 1, 1, 1, 1, 1, 1, 1],
                      [1, 1, 1, 1, 1, 0, 0, 0, 0]]
    labels = [[27, 5, 82, 40, 11, 96, 1],
              [52, 30, 1, -100, -100, -100, -100]]
    dec = t5_shift_right(torch.tensor(labels), cfg).tolist()
    return {'input_ids': input_ids, 'attention_mask': attention_mask, 'labels': labels,
            'decoder_input_ids': dec}


# ------------------------------------------------------------------ checks and output

def to_tensors(inputs):
    return {k: torch.tensor(v, dtype=torch.long) for k, v in inputs.items()}


def run(forward, P, cfg, inp, dtype):
    Pd = {k: v.detach().to(dtype).requires_grad_(True) for k, v in P.items()}
    out = forward(Pd, cfg, inp)
    grads = torch.autograd.grad(out['loss'], [Pd[k] for k in sorted(Pd)], allow_unused=True)
    g = {}
    for k, gr in zip(sorted(Pd), grads):
        g[k] = torch.zeros_like(Pd[k]) if gr is None else gr
    return out, g


def self_check(name, forward, P, cfg, inp, out32, g32):
    """float64 autograd vs central finite differences on a few entries of a few parameters,
    and float32 gradients (what the fixture stores) vs float64 ones."""
    out64, g64 = run(forward, P, cfg, inp, torch.float64)
    dl = abs(out32['loss'].item() - out64['loss'].item())
    dlog = (out32['logits'].double() - out64['logits']).abs().max().item()
    worst = 0.0
    zero = []
    for k in sorted(P):
        n = g64[k].norm().item()
        if n < 1e-12:
            # Analytically zero: BERT's attention key bias adds the same q.b_k to every score
            # in a row, and softmax is shift invariant. float32 leaves roundoff (~1e-9) there.
            zero.append(k)
            assert g32[k].abs().max().item() < 1e-6, (name, k, g32[k].abs().max().item())
            continue
        worst = max(worst, (g32[k].double() - g64[k]).norm().item() / n)
    assert dl < 1e-5 and dlog < 1e-5 and worst < 1e-4, (name, dl, dlog, worst)

    P64 = {k: v.detach().double() for k, v in P.items()}
    gen = torch.Generator().manual_seed(1234)
    keys = sorted(P)
    picks = [k for k in (keys[0], keys[len(keys) // 2], keys[-1]) if k not in zero]
    picks += [k for k in keys if k.endswith('relative_attention_bias.weight') or k.endswith('wte.weight')
              or k.endswith('word_embeddings.weight') or k.endswith('c_attn.weight')][:3]
    eps = 1e-6
    fd_worst = 0.0
    for k in picks:
        flat_g = g64[k].reshape(-1)
        idxs = [int(flat_g.abs().argmax()), int(torch.randint(flat_g.numel(), (1,), generator=gen))]
        for idx in idxs:
            vals = []
            for sgn in (1.0, -1.0):
                Q = dict(P64)
                t = P64[k].clone()
                t.view(-1)[idx] += sgn * eps
                Q[k] = t
                with torch.no_grad():
                    vals.append(forward(Q, cfg, inp)['loss'].item())
            fd = (vals[0] - vals[1]) / (2 * eps)
            an = flat_g[idx].item()
            err = abs(fd - an) / max(1e-3, abs(an), flat_g.abs().max().item() * 1e-2)
            fd_worst = max(fd_worst, err)
            assert err < 1e-5, '%s: finite difference mismatch on %s[%d]: fd %.9g autograd %.9g' % (
                name, k, idx, fd, an)
    print('  %-20s loss %.6f | fp32 vs fp64: loss %.1e logits %.1e grad(rel) %.1e | fd vs autograd %.1e'
          % (name, out32['loss'].item(), dl, dlog, worst, fd_worst))
    for k in zero:
        print('    analytically zero gradient (fp32 roundoff %.1e): %s' % (g32[k].abs().max().item(), k))


def bucket_table(cfg):
    rel = torch.arange(-200, 201, dtype=torch.long)
    kw = dict(num_buckets=cfg['relative_attention_num_buckets'], max_distance=cfg['relative_attention_max_distance'])
    return {
        'relative_position': rel.tolist(),
        'bidirectional': relative_position_bucket(rel, bidirectional=True, **kw).tolist(),
        'unidirectional': relative_position_bucket(rel, bidirectional=False, **kw).tolist(),
    }


def make_fixture(name, cfg, init, forward, inputs, seed):
    P = init(cfg, seed)
    inp = to_tensors(inputs)
    out, g = run(forward, P, cfg, inp, torch.float32)
    self_check(name, forward, P, cfg, inp, out, g)

    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    write_json(os.path.join(d, 'config.json'), dict({'architectures': cfg['architectures']}, **cfg))
    write_json(os.path.join(d, 'inputs.json'), inputs)
    write_safetensors(os.path.join(d, 'model.safetensors'), P)
    expected = {k: v.detach() for k, v in out.items()}
    for k in P:
        expected['grad.' + k] = g[k]
    write_safetensors(os.path.join(d, 'expected.safetensors'), expected)
    back = read_safetensors(os.path.join(d, 'model.safetensors'))
    assert sorted(back) == sorted(P) and all(torch.equal(back[k], P[k]) for k in P)
    if cfg['model_type'] == 't5':
        write_json(os.path.join(d, 'relative_position_buckets.json'), bucket_table(cfg))


def main():
    print('writing fixtures to', OUT)
    make_fixture('gpt2', GPT2_CONFIG, gpt2_init, gpt2_forward, gpt2_inputs(), seed=1)
    make_fixture('bert-pretraining', BERT_PRETRAINING_CONFIG, bert_pretraining_init, bert_pretraining_forward,
                 bert_pretraining_inputs(), seed=2)
    make_fixture('bert-classification', BERT_CLASSIFICATION_CONFIG, bert_classification_init,
                 bert_classification_forward, bert_classification_inputs(), seed=3)
    make_fixture('t5-v1_0', T5_V1_0_CONFIG, t5_init, t5_forward, t5_inputs(T5_V1_0_CONFIG), seed=4)
    make_fixture('t5-v1_1', T5_V1_1_CONFIG, t5_init, t5_forward, t5_inputs(T5_V1_1_CONFIG), seed=5)


if __name__ == '__main__':
    main()
