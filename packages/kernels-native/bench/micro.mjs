#!/usr/bin/env node
// Single-kernel figures behind the large GPT step (BENCHMARKS.md, issue 17), one run:
//   - each GEMM shape of an L6 E384 T256 B8 step alone, GFLOP/s (tf.matMul, median of 15);
//   - TesseraLinear (bias in the GEMM's output) against matMul + add, and matMul alone;
//   - packed causal attention (forward, backward) of that step, GFLOP/s of the work it does;
//   - per-call AdamW, SumSquares, Add and GELU at parameter/activation sizes.
// Usage: node bench/micro.mjs        (backend native, its default threads)
import {
  adamwOp,
  gelu,
  linearOp,
  packedAttentionGradOp,
  packedAttentionOp,
  sumSquaresOp,
  tf,
  useBackend,
} from '@tessera/tensor-core';
import '@tessera/kernels-native';
import { median } from './common.mjs';

await useBackend('native', { log: () => {} });
/** Median ms of `reps` calls after 3 warm-up ones; outputs disposed, as inside a step. */
const time = (f, reps = 15) => {
  for (let i = 0; i < 3; i++) tf.dispose(f());
  const ts = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    tf.dispose(f());
    ts.push(performance.now() - t0);
  }
  return median(ts);
};

const N = 2048;
const E = 384;
console.log(`GEMMs of the GPT L6 E${E} T256 B8 step (rows ${N}), each alone:`);
const gemms = [];
for (const [i, o] of [
  [E, 3 * E],
  [E, E],
  [E, 4 * E],
  [4 * E, E],
]) {
  gemms.push([`x·W     [${N},${i}]·[${i},${o}]`, [N, i], [i, o], false, false]);
  gemms.push([`dY·Wᵀ   [${N},${o}]·[${i},${o}]ᵀ`, [N, o], [i, o], false, true]);
  gemms.push([`Xᵀ·dY   [${N},${i}]ᵀ·[${N},${o}]`, [N, i], [N, o], true, false]);
}
gemms.push(['square  [1024,1024]·[1024,1024]', [1024, 1024], [1024, 1024], false, false]);
for (const [name, sa, sb, ta, tb] of gemms) {
  const a = tf.randomNormal(sa);
  const b = tf.randomNormal(sb);
  const ms = time(() => tf.matMul(a, b, ta, tb));
  const [M, K] = ta ? [sa[1], sa[0]] : sa;
  const cols = tb ? sb[0] : sb[1];
  console.log(
    `  ${name.padEnd(34)} ${((2 * M * K * cols) / ms / 1e6).toFixed(1).padStart(7)} GFLOP/s  ${ms.toFixed(2)} ms`,
  );
  tf.dispose([a, b]);
}

console.log('x·W + b: TesseraLinear / matMul + add / matMul alone (ms):');
for (const [M, K, O] of [
  [N, E, 3 * E],
  [N, E, 4 * E],
  [N, 4 * E, E],
  [768, 128, 384],
]) {
  const x = tf.randomNormal([M, K]);
  const w = tf.randomNormal([K, O]);
  const b = tf.randomNormal([O]);
  const fused = time(() => linearOp({ x, weight: w, bias: b }, {}), 30);
  const plain = time(() => tf.tidy(() => tf.add(tf.matMul(x, w), b)), 30);
  const alone = time(() => tf.matMul(x, w), 30);
  console.log(
    `  [${M},${K}]·[${K},${O}]`.padEnd(26),
    `${fused.toFixed(2)} / ${plain.toFixed(2)} / ${alone.toFixed(2)}`,
  );
  tf.dispose([x, w, b]);
}

{
  // One layer's attention: B 8, T 256, 6 heads of 64, causal. The kernels skip the hidden
  // triangle in 64-row blocks, so count the key columns each block really multiplies.
  const [B, T, H, D] = [8, 256, 6, 64];
  let pairs = 0;
  for (let i0 = 0; i0 < T; i0 += 64) pairs += Math.min(64, T - i0) * Math.min(T, i0 + 64);
  const flopsPerProduct = 2 * B * H * pairs * D;
  const qkv = tf.randomNormal([B, T, 3 * H * D]);
  const dy = tf.randomNormal([B, T, H * D]);
  const attrs = { nHead: H, causal: true, scale: null };
  const fwd = time(() => packedAttentionOp({ qkv }, attrs), 30);
  const bwd = time(() => packedAttentionGradOp({ dy, qkv }, attrs), 30);
  // forward: Q·Kᵀ, P·V; backward: Q·Kᵀ again, dY·Vᵀ, dS·K, dSᵀ·Q, Pᵀ·dY
  console.log(
    `packed causal attention B${B} T${T} H${H} D${D}: forward ${fwd.toFixed(2)} ms ` +
      `(${((2 * flopsPerProduct) / fwd / 1e6).toFixed(1)} GFLOP/s), backward ${bwd.toFixed(2)} ms ` +
      `(${((5 * flopsPerProduct) / bwd / 1e6).toFixed(1)} GFLOP/s)`,
  );
  tf.dispose([qkv, dy]);
}

console.log('per call (µs): AdamW / SumSquares / Add / GELU tanh');
const attrs = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 3 };
for (const n of [384, 147456, 589824, 3145728]) {
  const [p, g] = [tf.randomNormal([n]), tf.randomNormal([n])];
  const [m, v] = [tf.zeros([n]), tf.zeros([n])];
  const us = (f) => (time(f, 60) * 1000).toFixed(1);
  console.log(
    `  n ${String(n).padStart(7)}: ${us(() => adamwOp({ param: p, grad: g, m, v }, attrs))} / ` +
      `${us(() => sumSquaresOp({ x: g }))} / ${us(() => tf.add(p, g))} / ${us(() => gelu(p, 'tanh'))}`,
  );
  tf.dispose([p, g, m, v]);
}
