// Per-kernel time of one GPT training step (tfjs's profiler), to see where the time goes.
// Usage: node bench/profile.mjs [backend] [L H E T B V]
import { tf, useBackend } from '@tessera/tensor-core';
import '@tessera/kernels-native';
import { AdamW, GPT, gptTrainStep, randomBatch } from './gpt.mjs';

const backend = process.argv[2] ?? 'native';
const [L, H, E, T, B, V] = (process.argv.slice(3).length ? process.argv.slice(3) : [4, 4, 128, 64, 12, 65]).map(Number);
await useBackend(backend);
const cfg = { nLayer: L, nHead: H, nEmbd: E, blockSize: T, vocabSize: V };
const model = new GPT(cfg, 'profile');
const opt = new AdamW(model);
const { idx, targets } = randomBatch(cfg, B, 'profile-batch');
for (let i = 0; i < 3; i++) gptTrainStep(model, opt, idx, targets);
const t0 = performance.now();
const steps = 5;
for (let i = 0; i < steps; i++) gptTrainStep(model, opt, idx, targets);
const ms = (performance.now() - t0) / steps;
console.log(`${backend}: ${ms.toFixed(1)} ms/step, ${(((B * T) / ms) * 1000).toFixed(0)} tokens/s`);
const info = await tf.profile(() => gptTrainStep(model, opt, idx, targets));
const byName = new Map();
for (const k of info.kernels) {
  const e = byName.get(k.name) ?? { ms: 0, n: 0 };
  e.ms += await k.kernelTimeMs;
  e.n++;
  byName.set(k.name, e);
}
const rows = [...byName].sort((a, b) => b[1].ms - a[1].ms);
const total = rows.reduce((s, [, e]) => s + e.ms, 0);
console.log(`kernel time ${total.toFixed(1)} ms in ${info.kernels.length} kernels`);
for (const [name, e] of rows.slice(0, 25))
  console.log(`  ${name.padEnd(34)} ${e.ms.toFixed(2).padStart(8)} ms  x${e.n}`);
