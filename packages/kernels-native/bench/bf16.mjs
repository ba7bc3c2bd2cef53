#!/usr/bin/env node
// bf16 vs fp32 matmuls on backend native, side by side in one run: GEMM GFLOP/s (1024² and
// the products of a GPT L6 E384 T256 B8 training step, forward and both gradients) and that
// GPT's training-step tokens/s. On a CPU without AVX-512 BF16 it says so and exits 0.
//
// Usage: flock /tmp/tessera-bench.lock node bench/bf16.mjs [--threads 2] [--steps 10] [--reps 9] [--json]
import { loadavg } from 'node:os';
import '@tessera/kernels-native';
import { setNumThreads } from '@tessera/kernels-native';
import { matmulPrecisionSupport, setMatmulPrecision, tf, useBackend } from '@tessera/tensor-core';
import { median, parseArgs } from './common.mjs';
import { tokensPerSecond } from './measure.mjs';

const { flag, option } = parseArgs();
const threads = option('threads', undefined);
const steps = option('steps', 10);
const reps = option('reps', 9);
const say = flag('json') ? () => {} : (line) => console.log(line);

await useBackend('native', { log: () => {} });
if (threads) setNumThreads(threads);
const support = matmulPrecisionSupport('native', 'bf16');
if (!support.supported) {
  console.log(`bf16 matmul not supported here: ${support.reason}`);
  process.exit(0);
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const loadBefore = load();
say(`native bf16 vs fp32 (${support.reason}), load ${loadBefore}`);

// [name, M, N, K, transposeA, transposeB]: B·T = 2048 rows, E = 384.
const SHAPES = [
  ['1024² square', 1024, 1024, 1024, false, false],
  ['qkv x·W [2048,384]·[384,1152]', 2048, 1152, 384, false, false],
  ['mlp fc x·W [2048,384]·[384,1536]', 2048, 1536, 384, false, false],
  ['mlp proj x·W [2048,1536]·[1536,384]', 2048, 384, 1536, false, false],
  ['dx = dy·Wᵀ [2048,1536]·[384,1536]ᵀ', 2048, 384, 1536, false, true],
  ['dW = xᵀ·dy [2048,384]ᵀ·[2048,1536]', 384, 1536, 2048, true, false],
];

/** Median ms of tf.matMul over `reps` products with native's matmuls in `precision`. */
function timeMatmul(a, b, tA, tB, precision) {
  setMatmulPrecision(precision, 'native');
  const once = () => tf.matMul(a, b, tA, tB).dispose();
  for (let i = 0; i < 2; i++) once();
  const times = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    once();
    times.push(performance.now() - t0);
  }
  setMatmulPrecision('fp32', 'native');
  return median(times);
}

const gemm = [];
for (const [name, M, N, K, tA, tB] of SHAPES) {
  const a = tf.randomNormal(tA ? [K, M] : [M, K]);
  const b = tf.randomNormal(tB ? [N, K] : [K, N]);
  // Paired: fp32, bf16, fp32, bf16; each figure the better of its two medians.
  const ms = { fp32: [], bf16: [] };
  for (let round = 0; round < 2; round++) for (const p of ['fp32', 'bf16']) ms[p].push(timeMatmul(a, b, tA, tB, p));
  tf.dispose([a, b]);
  const g = (p) => (2 * M * N * K) / (Math.min(...ms[p]) / 1000) / 1e9;
  const row = { name, M, N, K, fp32: g('fp32'), bf16: g('bf16') };
  gemm.push(row);
  say(
    `  ${name.padEnd(40)} fp32 ${row.fp32.toFixed(1).padStart(6)}  bf16 ${row.bf16.toFixed(1).padStart(6)} GFLOP/s  ×${(row.bf16 / row.fp32).toFixed(2)}`,
  );
}

const model = { family: 'gpt', name: 'GPT L6 H6 E384 T256 B8 V65', dims: [6, 6, 384, 256, 8, 65] };
const tps = { fp32: [], bf16: [] };
for (let round = 0; round < 2; round++) {
  for (const p of ['fp32', 'bf16']) {
    setMatmulPrecision(p, 'native');
    tps[p].push((await tokensPerSecond('native', model, steps, 2)).tokensPerSecond);
    setMatmulPrecision('fp32', 'native');
  }
}
const best = (p) => Math.max(...tps[p]);
say(
  `  ${model.name} training step: fp32 ${best('fp32').toFixed(0)} tok/s, bf16 ${best('bf16').toFixed(0)} tok/s, ×${(best('bf16') / best('fp32')).toFixed(2)} (rounds: fp32 ${tps.fp32.map((t) => t.toFixed(0)).join(', ')}; bf16 ${tps.bf16.map((t) => t.toFixed(0)).join(', ')})`,
);
const loadAfter = load();
say(`  load ${loadBefore} -> ${loadAfter}`);
if (flag('json')) {
  console.log(
    JSON.stringify({
      support: support.reason,
      loadBefore,
      loadAfter,
      gemm,
      training: { model: model.name, tokensPerSecond: tps },
    }),
  );
}
