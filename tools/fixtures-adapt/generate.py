#!/usr/bin/python3
"""PyTorch fixtures for @tessera/adapt's LoRA: a small base model + a LoRA adapter in peft's
file layout + the logits of base + adapter.

LoRA is written here in plain PyTorch from the paper and peft's LoraLayer (no peft: it is
not installable here): for a targeted Linear y = x W^T + b (or GPT-2's Conv1D y = x W + b),

    y' = y + scale * (dropout(x) A^T) B^T,   A [r, in], B [out, r],
    scale = lora_alpha / r   (lora_alpha / sqrt(r) with use_rslora)

and merging adds scale * B A to W ([out, in]; its transpose for Conv1D, peft's
fan_in_fan_out). The base models are the verified plain-PyTorch GPT-2 / BERT / T5 of
tools/fixtures-transformer/generate.py; the LoRA term is added by wrapping their Linear
calls here, so no Tessera code is involved.

    /usr/bin/python3 tools/fixtures-adapt/generate.py

writes, for each fixture in packages/adapt/test/fixtures/<name>/:
    base/config.json, base/model.safetensors         the base model (HF names, layouts)
    adapter/adapter_config.json                      peft's LoraConfig fields
    adapter/adapter_model.safetensors                base_model.model.<path>.lora_A.weight [r, in],
                                                     ...lora_B.weight [out, r] (+ modules_to_save tensors)
    inputs.json                                      integer inputs (HF names)
    expected.safetensors                             logits (base + adapter, eval mode), base_logits,
                                                     merged.<weight> for every merged base weight
Every fixture is checked before writing: the float64 forward through the low-rank path
equals the float64 forward of the merged weights (to 1e-10), and differs from the base.
Running it again reproduces byte-identical files (fixed seeds, one thread).
"""
import importlib.util
import json
import math
import os
import sys

import torch
import torch.nn.functional as torch_F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, '..', '..', 'packages', 'adapt', 'test', 'fixtures'))

_spec = importlib.util.spec_from_file_location(
    'transformer_fixtures', os.path.join(HERE, '..', 'fixtures-transformer', 'generate.py'))
models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(models)


class LoraFunctional:
    """torch.nn.functional with `linear` adding the LoRA term for targeted weights (found by identity)."""

    def __init__(self):
        self.adapters = {}  # id(weight) -> (A, B, scale)

    def __getattr__(self, name):
        return getattr(torch_F, name)

    def linear(self, x, weight, bias=None):
        y = torch_F.linear(x, weight, bias)
        lora = self.adapters.get(id(weight))
        if lora is not None:
            A, B, scale = lora
            y = y + scale * torch_F.linear(torch_F.linear(x, A), B)
        return y


LORA_F = LoraFunctional()
models.F = LORA_F  # every Linear call of the model code now goes through LORA_F.linear
_plain_conv1d = models.conv1d


def lora_conv1d(x, P, prefix):
    """GPT-2's Conv1D (weight [in, out]) plus LoRA: A and B keep nn.Linear's [r, in] / [out, r]."""
    y = _plain_conv1d(x, P, prefix)
    lora = LORA_F.adapters.get(id(P[prefix + '.weight']))
    if lora is not None:
        A, B, scale = lora
        y = y + scale * torch_F.linear(torch_F.linear(x, A), B)
    return y


models.conv1d = lora_conv1d


def targets_of(P, target_modules):
    """Base weight names of the Linear layers peft's list form selects: name == t or name ends with '.t'."""
    out = []
    for name in sorted(P):
        if not name.endswith('.weight'):
            continue
        module = name[:-len('.weight')]
        if any(module == t or module.endswith('.' + t) for t in target_modules):
            out.append(name)
    return out


def trained_biases(P, lora, bias):
    """The bias tensors peft's `bias` trains: "all" every *.bias, "lora_only" those of the targeted layers."""
    if bias == 'all':
        return [n for n in sorted(P) if n.endswith('.bias')]
    if bias == 'lora_only':
        return [w[:-len('.weight')] + '.bias' for w in targets_of(P, lora['target_modules'])
                if w[:-len('.weight')] + '.bias' in P]
    return []


def make_fixture(name, cfg, init, forward, inputs, seed, lora, modules_to_save=None, task_type=None, bias='none'):
    P = init(cfg, seed)
    g = torch.Generator().manual_seed(1000 + seed)
    r, alpha = lora['r'], lora['lora_alpha']
    scale = alpha / math.sqrt(r) if lora.get('use_rslora') else alpha / r
    conv1d = cfg['model_type'] == 'gpt2'
    adapter = {}
    for wname in targets_of(P, lora['target_modules']):
        module = wname[:-len('.weight')]
        W = P[wname]
        fan_in, fan_out = (W.shape[0], W.shape[1]) if conv1d else (W.shape[1], W.shape[0])
        # A as peft initialises it (kaiming_uniform_, a=sqrt(5): U(-1/sqrt(in), 1/sqrt(in))); B random,
        # not zero, so the adapter changes the output.
        bound = 1 / math.sqrt(fan_in)
        adapter[module + '.lora_A.weight'] = (torch.rand(r, fan_in, generator=g) * 2 - 1) * bound
        adapter[module + '.lora_B.weight'] = torch.randn(fan_out, r, generator=g) * 0.3
    saved = {}
    for m in modules_to_save or []:
        for pname in sorted(P):
            if pname.startswith(m + '.'):
                saved[pname] = P[pname] + torch.randn(P[pname].shape, generator=g) * 0.5
    # Trained biases (peft's bias "all" / "lora_only") are saved under their own path, like modules_to_save.
    for bname in trained_biases(P, lora, bias):
        if bname not in saved:
            saved[bname] = P[bname] + torch.randn(P[bname].shape, generator=g) * 0.5
    inp = models.to_tensors(inputs)

    def run(dtype, use_adapter, merged=False):
        Pd = {k: v.to(dtype) for k, v in P.items()}
        LORA_F.adapters = {}
        if use_adapter:
            Pd.update({k: v.to(dtype) for k, v in saved.items()})
            for wname in targets_of(P, lora['target_modules']):
                module = wname[:-len('.weight')]
                A = adapter[module + '.lora_A.weight'].to(dtype)
                B = adapter[module + '.lora_B.weight'].to(dtype)
                if merged:
                    delta = scale * (B @ A)  # [out, in]
                    Pd[wname] = Pd[wname] + (delta.T if conv1d else delta)
                else:
                    LORA_F.adapters[id(Pd[wname])] = (A, B, scale)
        with torch.no_grad():
            out = forward(Pd, cfg, inp)
        LORA_F.adapters = {}
        return out, Pd

    out32, _ = run(torch.float32, True)
    base32, _ = run(torch.float32, False)
    out64, _ = run(torch.float64, True)
    merged64, Pm = run(torch.float64, True, merged=True)
    base64, _ = run(torch.float64, False)
    gap = (out64['logits'] - merged64['logits']).abs().max().item()
    assert gap < 1e-10, (name, 'low-rank path vs merged weights', gap)
    assert (out64['logits'] - base64['logits']).abs().max().item() > 1e-2, (name, 'adapter has no effect')
    assert (out32['logits'].double() - out64['logits']).abs().max().item() < 1e-4, name

    d = os.path.join(OUT, name)
    os.makedirs(os.path.join(d, 'base'), exist_ok=True)
    os.makedirs(os.path.join(d, 'adapter'), exist_ok=True)
    models.write_json(os.path.join(d, 'base', 'config.json'), dict({'architectures': cfg['architectures']}, **cfg))
    models.write_safetensors(os.path.join(d, 'base', 'model.safetensors'), P)
    peft_config = {
        'peft_type': 'LORA',
        'task_type': task_type,
        'base_model_name_or_path': '../base',
        'r': r,
        'lora_alpha': alpha,
        'lora_dropout': lora.get('lora_dropout', 0.0),
        'target_modules': sorted(lora['target_modules']),
        'bias': bias,
        'fan_in_fan_out': conv1d,
        'use_rslora': bool(lora.get('use_rslora', False)),
        'modules_to_save': modules_to_save,
        'inference_mode': True,
        'init_lora_weights': True,
        'revision': None,
    }
    with open(os.path.join(d, 'adapter', 'adapter_config.json'), 'w') as f:
        f.write(json.dumps(peft_config, indent=2) + '\n')
    # peft's save_pretrained: every name under base_model.model.; modules_to_save tensors by their own path.
    tensors = {'base_model.model.' + k: v for k, v in adapter.items()}
    tensors.update({'base_model.model.' + k: v for k, v in saved.items()})
    models.write_safetensors(os.path.join(d, 'adapter', 'adapter_model.safetensors'), tensors)
    models.write_json(os.path.join(d, 'inputs.json'), inputs)
    expected = {'logits': out32['logits'], 'base_logits': base32['logits']}
    for wname in targets_of(P, lora['target_modules']):
        expected['merged.' + wname] = Pm[wname].float()
    models.write_safetensors(os.path.join(d, 'expected.safetensors'), expected)
    print('wrote', d, '(%d adapter tensors, scale %.4f)' % (len(tensors), scale))


def main():
    # Names on the command line regenerate only those fixtures (the others stay byte-identical anyway).
    only = set(sys.argv[1:])
    global make_fixture
    make_all = make_fixture
    make_fixture = lambda name, *a, **k: make_all(name, *a, **k) if not only or name in only else None  # noqa: E731
    print('writing fixtures to', OUT)
    gpt_inputs = models.gpt2_inputs()
    gpt_inputs.pop('labels')
    make_fixture('gpt2-lora', models.GPT2_CONFIG, models.gpt2_init, models.gpt2_forward, gpt_inputs, seed=21,
                 lora={'r': 4, 'lora_alpha': 8, 'target_modules': ['c_attn'], 'lora_dropout': 0.1},
                 task_type='CAUSAL_LM')
    bert_inputs = models.bert_classification_inputs()
    bert_inputs.pop('labels')
    make_fixture('bert-classification-lora', models.BERT_CLASSIFICATION_CONFIG, models.bert_classification_init,
                 models.bert_classification_forward, bert_inputs, seed=22,
                 lora={'r': 2, 'lora_alpha': 4, 'target_modules': ['query', 'value'], 'use_rslora': True},
                 modules_to_save=['classifier'], task_type='SEQ_CLS')
    t5_inputs = models.t5_inputs(models.T5_V1_1_CONFIG)
    t5_inputs.pop('labels', None)
    make_fixture('t5-lora', models.T5_V1_1_CONFIG, models.t5_init, models.t5_forward, t5_inputs, seed=23,
                 lora={'r': 4, 'lora_alpha': 16, 'target_modules': ['q', 'v']}, task_type='SEQ_2_SEQ_LM')
    # peft's bias "lora_only" (the adapted layers' biases train) and "all" (every bias trains).
    make_fixture('gpt2-lora-bias', models.GPT2_CONFIG, models.gpt2_init, models.gpt2_forward, gpt_inputs, seed=24,
                 lora={'r': 4, 'lora_alpha': 8, 'target_modules': ['c_attn']}, task_type='CAUSAL_LM',
                 bias='lora_only')
    make_fixture('bert-classification-lora-bias', models.BERT_CLASSIFICATION_CONFIG,
                 models.bert_classification_init, models.bert_classification_forward, bert_inputs, seed=25,
                 lora={'r': 2, 'lora_alpha': 4, 'target_modules': ['query', 'value']},
                 modules_to_save=['classifier'], task_type='SEQ_CLS', bias='all')


if __name__ == '__main__':
    main()
