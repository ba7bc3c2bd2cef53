#!/usr/bin/env node
// Benchmark of backend "native" against "cpu" and PyTorch CPU, in one run on one machine:
//   - MatMul 1024² (GFLOP/s) through tf.matMul, and PyTorch's a @ b;
//   - GPT training step (forward + backward + AdamW), tokens/s, against the equivalent
//     PyTorch model in tools/bench-native/torch_bench.py (same config, same threads).
// Usage: node packages/kernels-native/bench/bench.mjs [--threads 2] [--steps 10] [--large] [--no-cpu] [--no-torch] [--json]
// (later wired to `tessera bench --backend native`).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tf, useBackend } from '@tessera/tensor-core';
import { getNumThreads, nativeStatus, setNumThreads } from '@tessera/kernels-native';
import { AdamW, GPT, gptTrainStep, randomBatch } from './gpt.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const option = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const threads = option('threads', Number(process.env.TESSERA_NATIVE_THREADS) || 2);
const steps = option('steps', 10);
const configs = [{ name: 'L4 H4 E128 T64 B12 V65', L: 4, H: 4, E: 128, T: 64, B: 12, V: 65 }];
if (flag('large')) configs.push({ name: 'L6 H6 E384 T256 B8 V65', L: 6, H: 6, E: 384, T: 256, B: 8, V: 65 });

if (!nativeStatus().available) {
  console.error(`backend native unavailable: ${nativeStatus().reason}`);
  process.exit(1);
}
setNumThreads(threads);

function matmulGflops(backend, n, reps) {
  return useBackend(backend, { log: () => {} }).then(() => {
    const a = tf.randomNormal([n, n]);
    const b = tf.randomNormal([n, n]);
    // (Returning the values from tidy would make tidy walk a million-element array.)
    const once = () =>
      tf.tidy(() => {
        tf.matMul(a, b).dataSync();
      });
    once();
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) once();
    const s = (performance.now() - t0) / 1000 / reps;
    a.dispose();
    b.dispose();
    return (2 * n ** 3) / s / 1e9;
  });
}

async function gptTokensPerSecond(backend, c, nSteps, warmup) {
  await useBackend(backend, { log: () => {} });
  const cfg = { nLayer: c.L, nHead: c.H, nEmbd: c.E, blockSize: c.T, vocabSize: c.V };
  const model = new GPT(cfg, 'bench');
  const optimizer = new AdamW(model);
  const { idx, targets } = randomBatch(cfg, c.B, 'bench-batch');
  for (let i = 0; i < warmup; i++) gptTrainStep(model, optimizer, idx, targets);
  const t0 = performance.now();
  for (let i = 0; i < nSteps; i++) gptTrainStep(model, optimizer, idx, targets);
  const ms = (performance.now() - t0) / nSteps;
  idx.dispose();
  targets.dispose();
  optimizer.dispose();
  model.dispose();
  return { msPerStep: ms, tokensPerSecond: (c.B * c.T * 1000) / ms };
}

function torchBench() {
  const python = '/usr/bin/python3';
  const script = join(root, 'tools', 'bench-native', 'torch_bench.py');
  if (flag('no-torch') || !existsSync(python) || !existsSync(script)) return null;
  const probe = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return { error: 'PyTorch not importable (Debian: apt-get install python3-torch)' };
  const args = [script, '--threads', String(threads), '--steps', String(steps), '--configs'];
  for (const c of configs) args.push([c.L, c.H, c.E, c.T, c.B, c.V].join(','));
  const r = spawnSync(python, args, { encoding: 'utf8' });
  if (r.status !== 0) return { error: r.stderr.split('\n').slice(-3).join(' ') };
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const fmt = (x, d = 1) => (x === undefined || x === null ? '—' : x.toFixed(d));
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}×` : '—');

const load = loadavg()[0];
const result = { threads: getNumThreads(), blas: nativeStatus().reason, loadAverage: load, matmul: {}, gpt: [] };
result.matmul.native = await matmulGflops('native', 1024, 20);
if (!flag('no-cpu')) result.matmul.cpu = await matmulGflops('cpu', 1024, 1);
for (const c of configs) {
  const row = { config: c.name, native: await gptTokensPerSecond('native', c, steps, 3) };
  if (!flag('no-cpu') && c.E <= 128) row.cpu = await gptTokensPerSecond('cpu', c, 2, 1);
  result.gpt.push(row);
}
const torch = torchBench();
if (torch && !torch.error) {
  result.torch = { version: torch.torch, threads: torch.threads };
  result.matmul.torch = torch.matmul_gflops;
  torch.gpt.forEach((g, i) => {
    result.gpt[i].torch = { msPerStep: g.ms_per_step, tokensPerSecond: g.tokens_per_s };
  });
} else if (torch?.error) {
  result.torch = { error: torch.error };
}

if (flag('json')) {
  console.log(JSON.stringify(result, null, 2));
} else {
  console.log(`tessera bench: native (${result.blas}), ${result.threads} threads, load average ${fmt(load, 2)}`);
  if (result.torch?.error) console.log(`  PyTorch: ${result.torch.error}`);
  const m = result.matmul;
  console.log(
    `MatMul 1024²  GFLOP/s: native ${fmt(m.native)}  cpu ${fmt(m.cpu, 2)}  torch ${fmt(m.torch)}   ` +
      `native/torch ${ratio(m.native, m.torch)}  native/cpu ${ratio(m.native, m.cpu)}`,
  );
  for (const g of result.gpt) {
    console.log(
      `GPT ${g.config} step tokens/s: native ${fmt(g.native.tokensPerSecond, 0)}  cpu ${fmt(g.cpu?.tokensPerSecond, 0)}  ` +
        `torch ${fmt(g.torch?.tokensPerSecond, 0)}   native/torch ${ratio(g.native.tokensPerSecond, g.torch?.tokensPerSecond)}  ` +
        `native/cpu ${ratio(g.native.tokensPerSecond, g.cpu?.tokensPerSecond)}`,
    );
  }
}
