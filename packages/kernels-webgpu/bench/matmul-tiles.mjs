#!/usr/bin/env node
// Tiling sweep for Tessera's WGSL BatchMatMul on "webgpu": each tiling in ./src/matmul.ts's
// family against upstream's kernel, on GPT training products (forward x·W, and the two
// gradient products dY·Wᵀ and Xᵀ·dY), interleaved round by round so load hits all alike.
// Checks each result against upstream's (max |diff|) before timing it.
// Usage: node packages/kernels-webgpu/bench/matmul-tiles.mjs [--steps 5] [--rounds 3] [--min] [--large]
//   [--tilings auto,subgroup:32x2,rows:8x2w16] [--only 'qkv L nn,qkv L tn'] [--gpt]
// --gpt: the GPT step's 15 products (bench/bench.mjs's) instead of the square-ish set.
import { loadavg } from 'node:os';
import { Rng, tf, useBackend } from '@tessera/tensor-core';
import { describeWebGpu, setWebGpuMatMulTiling, useWebGpuMatMul, webgpuStatus } from '@tessera/kernels-webgpu';
import { median, parseArgs } from '../../kernels-native/bench/common.mjs';

const { flag, option } = parseArgs();
const argv = process.argv.slice(2);
const steps = Math.max(1, option('steps', 5));
const rounds = Math.max(1, option('rounds', 3));
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1].split(',') : undefined;
const tilingArg = argv.includes('--tilings') ? argv[argv.indexOf('--tilings') + 1] : undefined;
// 'auto': the kernel's own choice per product; 'subgroup:32x2': the subgroup kernel with 32
// rows × 2 column groups (its workgroup is the device's subgroup size).
const parseTiling = (s) => {
  if (s === 'auto') return { name: s };
  const sg = /^subgroup:(\d+)x(\d+)$/.exec(s);
  if (sg) return { lanes: 'subgroup', rows: +sg[1], colGroups: +sg[2], workgroup: 0, name: s };
  const m = /^(rows|cols):(\d+)x(\d+)w(\d+)$/.exec(s);
  if (!m) throw new Error(`bad tiling "${s}": expected e.g. cols:4x1w16, subgroup:32x2 or auto`);
  return { lanes: m[1], rows: +m[2], colGroups: +m[3], workgroup: +m[4], name: s };
};
const tilings = (tilingArg ?? 'auto,rows:8x2w16,subgroup:16x2,subgroup:32x2,subgroup:32x1').split(',').map(parseTiling);

const status = await webgpuStatus();
if (!status.available) {
  console.error(`backend webgpu unavailable: ${status.reason}`);
  process.exit(1);
}
await useBackend('webgpu', { log: () => {} });

// [label, M, K, N] of C = A·B; each runs as nn (forward), nt (dX = dY·Wᵀ shape) and tn (dW = Xᵀ·dY).
const products = flag('large')
  ? [
      ['qkv L', 2048, 384, 1152],
      ['mlp-out L', 2048, 1536, 384],
      ['lm-head L', 2048, 384, 65],
    ]
  : [
      ['qkv S', 768, 128, 384],
      ['mlp-out S', 768, 512, 128],
      ['lm-head S', 768, 128, 65],
    ];

// --gpt: the 15 products of a GPT training step exactly as bench/bench.mjs times them
// (each linear layer's x·W, dY·Wᵀ, Xᵀ·dY and the tied lm-head's), as [label, M, K, N, tA, tB].
const gptProducts = (E, T, V) => {
  const out = [];
  for (const [name, i, o] of [
    ['qkv', E, 3 * E],
    ['attn-proj', E, E],
    ['mlp-fc', E, 4 * E],
    ['mlp-proj', 4 * E, E],
  ]) {
    out.push([`${name} x·W`, T, i, o, false, false]);
    out.push([`${name} dY·Wᵀ`, T, o, i, false, true]);
    out.push([`${name} Xᵀ·dY`, i, T, o, true, false]);
  }
  out.push(['lm-head x·Eᵀ', T, E, V, false, true]);
  out.push(['lm-head dL·E', T, V, E, false, false]);
  out.push(['lm-head dLᵀ·x', V, T, E, true, false]);
  return out;
};
const jobs = flag('gpt')
  ? flag('large')
    ? gptProducts(384, 2048, 65)
    : gptProducts(128, 768, 65)
  : products.flatMap(([label, M, K, N]) =>
      [
        [false, false],
        [false, true],
        [true, false],
        [true, true],
      ].map(([tA, tB]) => [`${label} ${tA ? 't' : 'n'}${tB ? 't' : 'n'}`, M, K, N, tA, tB]),
    );

const rng = new Rng('matmul-tiles');
/**
 * GPU milliseconds of one call (the backend's timestamp queries: kernel time only, without
 * the submit/read latency that dominates wall time for small products on lavapipe), median
 * of `steps` calls.
 */
async function timeIt(fn) {
  const ms = [];
  for (let i = 0; i < steps; i++) {
    const info = await tf.time(() => {
      fn().dispose();
    });
    ms.push(info.kernelMs);
  }
  return median(ms);
}

const rows = [];
for (const [label, M, K, N, tA, tB] of jobs) {
  {
    if (only && !only.includes(label)) continue;
    const a = rng.normalTensor(tA ? [K, M] : [M, K]);
    const b = rng.normalTensor(tB ? [N, K] : [K, N]);
    const fn = () => tf.matMul(a, b, tA, tB);
    useWebGpuMatMul('upstream');
    const ref = fn();
    const refV = await ref.data();
    ref.dispose();
    const sides = [{ name: 'upstream', set: () => useWebGpuMatMul('upstream') }];
    for (const t of tilings)
      sides.push({
        name: t.name,
        set: () => {
          useWebGpuMatMul('tessera');
          setWebGpuMatMulTiling(t.lanes ? t : undefined);
        },
      });
    const times = sides.map(() => []);
    for (const s of sides) {
      s.set();
      const y = fn();
      const v = await y.data();
      y.dispose();
      let diff = 0;
      for (let j = 0; j < v.length; j++) diff = Math.max(diff, Math.abs(v[j] - refV[j]));
      s.diff = diff;
      await timeIt(fn); // compile + warm
    }
    for (let r = 0; r < rounds; r++)
      for (const [i, s] of sides.entries()) {
        s.set();
        times[i].push(await timeIt(fn));
      }
    // Under other processes' load the least disturbed round is the steadiest estimate for
    // comparing tilings; the reported ratio (bench.mjs) uses medians.
    const pick = flag('min') ? (xs) => Math.min(...xs) : median;
    const up = pick(times[0]);
    const row = { product: label, M, K, N, upstreamMs: up, variants: {} };
    for (const [i, s] of sides.entries()) if (i > 0) row.variants[s.name] = { ms: pick(times[i]), diff: s.diff };
    rows.push(row);
    console.log(
      `${row.product.padEnd(16)} [${M},${K},${N}]${tA ? 'ᵀ' : ''}${tB ? '·ᵀ' : ''} upstream ${up.toFixed(2)} ms; ` +
        Object.entries(row.variants)
          .map(
            ([n, v]) => `${n} ${(up / v.ms).toFixed(2)}×${v.diff > 1e-3 ? ` (diff ${v.diff.toExponential(1)}!)` : ''}`,
          )
          .join(', '),
    );
    tf.dispose([a, b]);
  }
}
setWebGpuMatMulTiling(undefined);
console.log(`device ${await describeWebGpu()}; load ${loadavg()[0].toFixed(2)} after`);
