#!/usr/bin/env node
// Benchmark of backend "native" against "cpu" and PyTorch CPU, in one run on one machine:
//   - MatMul 1024² (GFLOP/s) through tf.matMul, and PyTorch's a @ b;
//   - training steps (forward + backward + AdamW), tokens/s from the median step time, of
//     @tessera/transformer's GPT (two configs), BERT (masked LM) and T5, with
//     @tessera/optim's AdamW, against the same models in tools/bench-native/torch_bench.py
//     (same configs, same threads; each PyTorch figure right after its native one); for GPT, model FLOP/s by formula as a share of the sgemm rate.
// Usage: tessera bench --backend native [--threads 2] [--steps 10] [--large] [--json]
//        (= node packages/kernels-native/bench/bench.mjs ...; also --no-cpu, --no-torch)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getNumThreads, nativePool, nativeStatus, setNumThreads } from '@tessera/kernels-native';
import { parseArgs } from './common.mjs';
import { gptTrainFlopsPerToken, matmulGflops, tokensPerSecond } from './measure.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const { flag, option } = parseArgs();
const threads = option('threads', Number(process.env.TESSERA_NATIVE_THREADS) || 2);
const steps = option('steps', 10);

/** Every model config: `dims` is what torch_bench.py takes; `cpu` says whether the slow cpu backend runs it too. */
const models = [
  { family: 'gpt', name: 'GPT L4 H4 E128 T64 B12 V65', dims: [4, 4, 128, 64, 12, 65], cpu: true },
  ...(flag('large') ? [{ family: 'gpt', name: 'GPT L6 H6 E384 T256 B8 V65', dims: [6, 6, 384, 256, 8, 65] }] : []),
  { family: 'bert', name: 'BERT-shaped L4 H4 E256 T128 B8 V2048', dims: [4, 4, 256, 128, 8, 2048] },
  { family: 't5', name: 'T5-shaped L4+4 H4 E256 F1024 T128/32 B8 V2048', dims: [4, 4, 256, 1024, 128, 32, 8, 2048] },
];

/**
 * PyTorch's figures for `only` (one model; none: MatMul alone), in its own process right after
 * native measured the same thing, so load drift on a shared machine hits both sides alike.
 */
function torchBench(only) {
  const python = '/usr/bin/python3';
  const script = join(root, 'tools', 'bench-native', 'torch_bench.py');
  if (flag('no-torch') || !existsSync(python) || !existsSync(script)) return null;
  const probe = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return { error: 'PyTorch not importable (Debian: apt-get install python3-torch)' };
  const args = [script, '--threads', String(threads), '--steps', String(steps), '--configs'];
  if (only) args.push(...(only.family === 'gpt' ? [] : [`--${only.family}`]), only.dims.join(','));
  const r = spawnSync(python, args, { encoding: 'utf8' });
  if (r.status !== 0) return { error: r.stderr.split('\n').slice(-3).join(' ') };
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

if (!nativeStatus().available) {
  console.error(`backend native unavailable: ${nativeStatus().reason}`);
  process.exit(1);
}
setNumThreads(threads);

const result = {
  threads: getNumThreads(),
  blas: nativeStatus().reason,
  loadAverageBefore: loadavg()[0],
  matmul: {},
  models: [],
};
result.matmul.native = await matmulGflops('native', 1024, 30);
if (!flag('no-cpu')) result.matmul.cpu = await matmulGflops('cpu', 1024, 1);
const torchMatmul = torchBench(null);
if (torchMatmul?.error) result.torch = { error: torchMatmul.error };
else if (torchMatmul) {
  result.torch = { version: torchMatmul.torch, threads: torchMatmul.threads };
  result.matmul.torch = torchMatmul.matmul_gflops;
}
for (const m of models) {
  const row = { config: m.name, family: m.family, native: await tokensPerSecond('native', m, steps, 3) };
  if (m.family === 'gpt') {
    // Model FLOP/s by formula against the sgemm rate: how close the whole step comes to the
    // machine's own matmul speed. Native's MatMul is timed again right after the step, and
    // the highest of those two and PyTorch's (OpenBLAS's sgemm) is the reference: neither a
    // disturbed timing (a neighbour's burst) nor our own GEMM being the slower of the two may
    // make the step look closer to the peak than it is.
    row.flopsPerToken = gptTrainFlopsPerToken(m.dims);
    row.native.gflops = (row.native.tokensPerSecond * row.flopsPerToken) / 1e9;
    row.native.sgemmAfter = await matmulGflops('native', 1024, 30);
    row.native.sgemmReference = Math.max(result.matmul.native, row.native.sgemmAfter, result.matmul.torch ?? 0);
    row.native.shareOfSgemm = row.native.gflops / row.native.sgemmReference;
  }
  if (!flag('no-cpu') && m.cpu) row.cpu = await tokensPerSecond('cpu', m, 2, 1);
  if (result.torch && !result.torch.error) {
    const t = torchBench(m);
    const g = t?.[m.family]?.[0];
    if (g) row.torch = { msPerStep: g.ms_per_step, tokensPerSecond: g.tokens_per_s };
  }
  result.models.push(row);
}
result.pool = nativePool().stats();
result.loadAverageAfter = loadavg()[0];

const fmt = (x, d = 1) => (x === undefined || x === null ? '—' : x.toFixed(d));
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}×` : '—');
if (flag('json')) {
  console.log(JSON.stringify(result, null, 2));
} else {
  console.log(
    `tessera bench: native (${result.blas}), ${result.threads} threads, ` +
      `load average ${fmt(result.loadAverageBefore, 2)} before, ${fmt(result.loadAverageAfter, 2)} after` +
      (result.torch?.version ? `, PyTorch ${result.torch.version}` : ''),
  );
  if (result.torch?.error) console.log(`  PyTorch: ${result.torch.error}`);
  const m = result.matmul;
  console.log(
    `MatMul 1024²  GFLOP/s: native ${fmt(m.native)}  cpu ${fmt(m.cpu, 2)}  torch ${fmt(m.torch)}   ` +
      `native/torch ${ratio(m.native, m.torch)}  native/cpu ${ratio(m.native, m.cpu)}`,
  );
  for (const g of result.models) {
    console.log(
      `${g.config} step tokens/s: native ${fmt(g.native.tokensPerSecond, 0)}  cpu ${fmt(g.cpu?.tokensPerSecond, 0)}  ` +
        `torch ${fmt(g.torch?.tokensPerSecond, 0)}   native/torch ${ratio(g.native.tokensPerSecond, g.torch?.tokensPerSecond)}  ` +
        `native/cpu ${ratio(g.native.tokensPerSecond, g.cpu?.tokensPerSecond)}`,
    );
    if (g.flopsPerToken) {
      console.log(
        `  ${(g.flopsPerToken / 1e6).toFixed(1)} MFLOP/token by formula: native ${fmt(g.native.gflops)} GFLOP/s = ` +
          `${(100 * g.native.shareOfSgemm).toFixed(0)}% of the MatMul 1024² rate in this run ` +
          `(${fmt(g.native.sgemmReference)}: the highest of native's ${fmt(result.matmul.native)} before and ` +
          `${fmt(g.native.sgemmAfter)} right after, and torch's ${fmt(result.matmul.torch)})`,
      );
    }
  }
}
