#!/usr/bin/python3
"""PyTorch reference trajectories for @tessera/optim.

Runs 30 updates of a tiny two-layer tanh MLP regression for each optimizer x a
representative schedule, with gradient clipping off and on, and records the
parameters along the way. torch 1.13 (Debian python3-torch) has SGD, Adam and AdamW;
Adafactor (HF transformers semantics) and Lion (Chen et al. 2023) are written here
from their papers because it lacks them.

    /usr/bin/python3 tools/fixtures-optim/generate.py

writes packages/optim/test/fixtures/trajectories.json and schedules.json.
"""
import json
import math
import os

import torch

STEPS = 30
# Snapshots kept in the fixture: every early step (where bugs in bias correction and
# first-step special cases show), then every fifth.
RECORD = [1, 2, 3, 4, 5, 10, 15, 20, 25, 30]
OUT = os.path.join(os.path.dirname(__file__), '..', '..', 'packages', 'optim', 'test', 'fixtures')


def r9(x):
    return float('%.9g' % x)


def flat(t):
    return [r9(v) for v in t.detach().reshape(-1).tolist()]


# ------------------------------------------------------------------ optimizers torch lacks

class Adafactor(torch.optim.Optimizer):
    """Adafactor as in HF transformers (Shazeer & Stern 2018)."""

    def __init__(self, params, lr=None, eps=(1e-30, 1e-3), clip_threshold=1.0, decay_rate=-0.8, beta1=None,
                 weight_decay=0.0, scale_parameter=True, relative_step=True, warmup_init=False):
        if lr is not None and relative_step:
            raise ValueError('manual lr and relative_step=True cannot be combined')
        defaults = dict(lr=lr, eps=eps, clip_threshold=clip_threshold, decay_rate=decay_rate, beta1=beta1,
                        weight_decay=weight_decay, scale_parameter=scale_parameter, relative_step=relative_step,
                        warmup_init=warmup_init)
        super().__init__(params, defaults)

    @staticmethod
    def _rms(t):
        return t.norm(2) / (t.numel() ** 0.5)

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group['params']:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                factored = g.dim() >= 2
                if len(state) == 0:
                    state['step'] = 0
                    if group['beta1'] is not None:
                        state['exp_avg'] = torch.zeros_like(g)
                    if factored:
                        state['row'] = torch.zeros(g.shape[:-1])
                        state['col'] = torch.zeros(g.shape[:-2] + g.shape[-1:])
                    else:
                        state['sq'] = torch.zeros_like(g)
                state['step'] += 1
                t = state['step']
                step_size = group['lr']
                if group['relative_step']:
                    step_size = min(1e-6 * t if group['warmup_init'] else 1e-2, 1.0 / math.sqrt(t))
                lr = step_size
                if group['scale_parameter']:
                    lr = max(group['eps'][1], self._rms(p)) * step_size
                beta2t = 1.0 - math.pow(t, group['decay_rate'])
                sq = g * g + group['eps'][0]
                if factored:
                    state['row'].mul_(beta2t).add_(sq.mean(dim=-1), alpha=1.0 - beta2t)
                    state['col'].mul_(beta2t).add_(sq.mean(dim=-2), alpha=1.0 - beta2t)
                    row, col = state['row'], state['col']
                    r = (row / row.mean(dim=-1, keepdim=True)).rsqrt().unsqueeze(-1)
                    c = col.unsqueeze(-2).rsqrt()
                    u = r * c * g
                else:
                    state['sq'].mul_(beta2t).add_(sq, alpha=1.0 - beta2t)
                    u = state['sq'].rsqrt() * g
                u = u / (self._rms(u) / group['clip_threshold']).clamp(min=1.0)
                u = u * lr
                if group['beta1'] is not None:
                    state['exp_avg'].mul_(group['beta1']).add_(u, alpha=1 - group['beta1'])
                    u = state['exp_avg']
                if group['weight_decay'] != 0:
                    p.add_(p * (-group['weight_decay'] * lr))
                p.sub_(u)


class Lion(torch.optim.Optimizer):
    """Lion (Chen et al. 2023): sign of interpolated momentum, decoupled weight decay."""

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group['betas']
            for p in group['params']:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if len(state) == 0:
                    state['m'] = torch.zeros_like(p)
                m = state['m']
                c = m * b1 + g * (1 - b1)
                if group['weight_decay'] != 0:
                    p.mul_(1 - group['lr'] * group['weight_decay'])
                p.sub_(torch.sign(c) * group['lr'])
                m.mul_(b2).add_(g, alpha=1 - b2)


# ------------------------------------------------------------------ schedules (HF's formulas)

def warm(s, w):
    return s / max(1, w)


def linear(warmup, total, min_ratio=0.0):
    def f(s):
        if s < warmup:
            return warm(s, warmup)
        return min_ratio + (1 - min_ratio) * max(0.0, (total - s) / max(1, total - warmup))
    return f


def cosine(warmup, total, min_ratio=0.0, cycles=0.5):
    def f(s):
        if s < warmup:
            return warm(s, warmup)
        progress = min(1.0, (s - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * max(0.0, 0.5 * (1 + math.cos(math.pi * cycles * 2 * progress)))
    return f


def inverse_sqrt(warmup, timescale=None, flat=False):
    ts = timescale or warmup
    shift = ts - warmup

    def f(s):
        if s < warmup:
            return 1.0 if flat else warm(s, warmup)
        return 1.0 / math.sqrt((s + shift) / ts)
    return f


def constant(warmup=0):
    return lambda s: warm(s, warmup) if s < warmup else 1.0


def step_decay(step_size, gamma=0.1):
    return lambda s: gamma ** (s // step_size)


SCHEDULE_FNS = {
    'linear': lambda o: linear(o.get('warmupSteps', 0), o['totalSteps'], o.get('minRatio', 0.0)),
    'cosine': lambda o: cosine(o.get('warmupSteps', 0), o['totalSteps'], o.get('minRatio', 0.0), o.get('cycles', 0.5)),
    'inverse_sqrt': lambda o: inverse_sqrt(o['warmupSteps'], o.get('timescale'), o.get('warmup') == 'constant'),
    'constant': lambda o: constant(o.get('warmupSteps', 0)),
    'step': lambda o: step_decay(o['stepSize'], o.get('gamma', 0.1)),
}


def schedule_fn(spec):
    o = {k: v for k, v in spec.items() if k != 'name'}
    if spec['name'] == 'sequential':
        parts = [schedule_fn(s) for s in o['schedules']]
        ms = o['milestones']

        def f(s):
            i = 0
            while i < len(ms) and s >= ms[i]:
                i += 1
            return parts[i](s - (ms[i - 1] if i else 0))
        return f
    if spec['name'] == 'product':
        parts = [schedule_fn(s) for s in o['schedules']]
        return lambda s: math.prod(p(s) for p in parts)
    return SCHEDULE_FNS[spec['name']](o)


# ------------------------------------------------------------------ the problem

def problem():
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(8, 4, generator=g)
    y = torch.randn(8, 2, generator=g)
    init = {
        'w1': torch.randn(4, 5, generator=g) * 0.5,
        'b1': torch.randn(5, generator=g) * 0.1,
        'w2': torch.randn(5, 2, generator=g) * 0.5,
        'b2': torch.randn(2, generator=g) * 0.1,
    }
    return x, y, init


def loss_fn(p, x, y):
    h = torch.tanh(x @ p['w1'] + p['b1'])
    return ((h @ p['w2'] + p['b2'] - y) ** 2).mean()


def make_optimizer(name, params, opts, groups):
    """groups: list of (names, overrides) after the default group, as the TS side's `groups`."""
    taken = set(n for names, _ in groups for n in names)
    pg = [{'params': [params[n] for n in params if n not in taken]}]
    for names, over in groups:
        pg.append({'params': [params[n] for n in names], **over})
    if name == 'sgd':
        return torch.optim.SGD(pg, **opts)
    if name == 'adam':
        return torch.optim.Adam(pg, **opts)
    if name == 'adamw':
        return torch.optim.AdamW(pg, **opts)
    if name == 'adafactor':
        return Adafactor(pg, **opts)
    if name == 'lion':
        return Lion(pg, **opts)
    raise ValueError(name)


# Each case: the TS optimizer spec, torch's constructor options, and torch group overrides.
CASES = [
    {
        'id': 'sgd-nesterov-step',
        'ts': {'name': 'sgd', 'lr': 0.1, 'momentum': 0.9, 'nesterov': True, 'weightDecay': 0.01,
               'schedule': {'name': 'step', 'stepSize': 10, 'gamma': 0.5}},
        'torch': ('sgd', {'lr': 0.1, 'momentum': 0.9, 'nesterov': True, 'weight_decay': 0.01}, []),
    },
    {
        'id': 'sgd-dampening-linear',
        'ts': {'name': 'sgd', 'lr': 0.2, 'momentum': 0.8, 'dampening': 0.1,
               'schedule': {'name': 'linear', 'warmupSteps': 3, 'totalSteps': 30}},
        'torch': ('sgd', {'lr': 0.2, 'momentum': 0.8, 'dampening': 0.1}, []),
    },
    {
        'id': 'adam-cosine',
        'ts': {'name': 'adam', 'lr': 0.02, 'weightDecay': 0.01,
               'schedule': {'name': 'cosine', 'warmupSteps': 5, 'totalSteps': 30, 'minRatio': 0.1}},
        'torch': ('adam', {'lr': 0.02, 'weight_decay': 0.01}, []),
    },
    {
        'id': 'adamw-linear-groups',
        'ts': {'name': 'adamw', 'lr': 0.02, 'weightDecay': 0.1, 'beta2': 0.99,
               'groups': [{'params': 'b*', 'weightDecay': 0}],
               'schedule': {'name': 'linear', 'warmupSteps': 5, 'totalSteps': 30}},
        'torch': ('adamw', {'lr': 0.02, 'weight_decay': 0.1, 'betas': (0.9, 0.99)},
                  [(['b1', 'b2'], {'weight_decay': 0.0})]),
    },
    {
        'id': 'adafactor-relative',
        'ts': {'name': 'adafactor'},
        'torch': ('adafactor', {}, []),
    },
    {
        'id': 'adafactor-inverse-sqrt',
        'ts': {'name': 'adafactor', 'lr': 0.05, 'relativeStep': False, 'beta1': 0.9, 'weightDecay': 0.01,
               'schedule': {'name': 'inverse_sqrt', 'warmupSteps': 5}},
        'torch': ('adafactor', {'lr': 0.05, 'relative_step': False, 'beta1': 0.9, 'weight_decay': 0.01}, []),
    },
    {
        'id': 'lion-cosine',
        'ts': {'name': 'lion', 'lr': 0.003, 'weightDecay': 0.1,
               'schedule': {'name': 'sequential', 'milestones': [4],
                            'schedules': [{'name': 'constant', 'warmupSteps': 4},
                                          {'name': 'cosine', 'totalSteps': 26, 'minRatio': 0.05}]}},
        'torch': ('lion', {'lr': 0.003, 'weight_decay': 0.1}, []),
    },
]

CLIPS = [
    ('noclip', {}),
    ('clipnorm', {'clipGradNorm': 0.25}),
]
EXTRA = [('sgd-dampening-linear', 'clipvalue', {'clipGradValue': 0.05})]


def run_case(case, clip_name, clip):
    x, y, init = problem()
    params = {k: v.clone().requires_grad_(True) for k, v in init.items()}
    name, opts, groups = case['torch']
    opt = make_optimizer(name, params, opts, groups)
    spec = case['ts'].get('schedule')
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule_fn(spec)) if spec else None
    if spec and spec['name'] == 'step':
        # The real StepLR, not our formula, for the one torch ships.
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=spec['stepSize'], gamma=spec['gamma'])
    losses, snaps, norms = [], [], []
    for step in range(1, STEPS + 1):
        opt.zero_grad()
        loss = loss_fn(params, x, y)
        loss.backward()
        losses.append(r9(loss.item()))
        plist = list(params.values())
        if 'clipGradValue' in clip:
            torch.nn.utils.clip_grad_value_(plist, clip['clipGradValue'])
        if 'clipGradNorm' in clip:
            norms.append(r9(torch.nn.utils.clip_grad_norm_(plist, clip['clipGradNorm']).item()))
        opt.step()
        if sched:
            sched.step()
        if step in RECORD:
            snaps.append({'step': step, 'params': {k: flat(v) for k, v in params.items()}})
    out = {'id': f"{case['id']}/{clip_name}", 'spec': {**case['ts'], **clip}, 'losses': losses, 'snapshots': snaps}
    if norms:
        out['gradNorms'] = norms
    return out


def main():
    torch.set_num_threads(1)
    x, y, init = problem()
    cases = []
    for case in CASES:
        for clip_name, clip in CLIPS:
            cases.append(run_case(case, clip_name, clip))
    for case_id, clip_name, clip in EXTRA:
        cases.append(run_case(next(c for c in CASES if c['id'] == case_id), clip_name, clip))
    doc = {
        'generator': 'tools/fixtures-optim/generate.py',
        'torch': torch.__version__,
        'steps': STEPS,
        'x': {'shape': list(x.shape), 'data': flat(x)},
        'y': {'shape': list(y.shape), 'data': flat(y)},
        'init': {k: {'shape': list(v.shape), 'data': flat(v)} for k, v in init.items()},
        'cases': cases,
    }
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, 'trajectories.json'), 'w') as f:
        json.dump(doc, f, separators=(',', ':'))
        f.write('\n')

    specs = [
        {'name': 'constant'},
        {'name': 'constant', 'warmupSteps': 7},
        {'name': 'linear', 'warmupSteps': 10, 'totalSteps': 100},
        {'name': 'linear', 'warmupSteps': 0, 'totalSteps': 50, 'minRatio': 0.2},
        {'name': 'cosine', 'warmupSteps': 10, 'totalSteps': 100},
        {'name': 'cosine', 'warmupSteps': 5, 'totalSteps': 80, 'minRatio': 0.1, 'cycles': 1.5},
        {'name': 'inverse_sqrt', 'warmupSteps': 10},
        {'name': 'inverse_sqrt', 'warmupSteps': 10, 'timescale': 20},
        {'name': 'inverse_sqrt', 'warmupSteps': 16, 'warmup': 'constant'},
        {'name': 'step', 'stepSize': 15, 'gamma': 0.5},
        {'name': 'sequential', 'milestones': [10, 60],
         'schedules': [{'name': 'constant', 'warmupSteps': 10}, {'name': 'cosine', 'totalSteps': 50},
                       {'name': 'constant'}]},
        {'name': 'product', 'schedules': [{'name': 'constant', 'warmupSteps': 5}, {'name': 'step', 'stepSize': 20}]},
    ]
    sched_doc = {
        'generator': 'tools/fixtures-optim/generate.py',
        'steps': 120,
        'schedules': [{'spec': s, 'factors': [schedule_fn(s)(i) for i in range(120)]} for s in specs],
    }
    # StepLR itself, to pin our "step" schedule to torch's class rather than to our formula.
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    steplr = torch.optim.lr_scheduler.StepLR(opt, step_size=15, gamma=0.5)
    torch_factors = []
    for _ in range(120):
        torch_factors.append(opt.param_groups[0]['lr'])
        opt.step()
        steplr.step()
    sched_doc['torchStepLR'] = {'spec': {'name': 'step', 'stepSize': 15, 'gamma': 0.5}, 'factors': torch_factors}
    with open(os.path.join(OUT, 'schedules.json'), 'w') as f:
        json.dump(sched_doc, f, separators=(',', ':'))
        f.write('\n')
    print(f'wrote {len(cases)} trajectories and {len(specs)} schedules to {os.path.normpath(OUT)}')


if __name__ == '__main__':
    main()
