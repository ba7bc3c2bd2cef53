// Per-kernel time of one training step (tfjs's profiler), to see where the time goes.
// Usage: node bench/profile.mjs [backend] [L H E T B V]      (GPT, default the bench's small one)
//        node bench/profile.mjs [backend] bert|t5             (the bench's BERT-/T5-shaped models)
import { tf, trainStep, useBackend } from '@tessera/tensor-core';
import '@tessera/kernels-native';
import { AdamW } from './gpt.mjs';
import { build } from './measure.mjs';

const backend = process.argv[2] ?? 'native';
const rest = process.argv.slice(3);
const model =
  rest[0] === 'bert'
    ? { family: 'bert', dims: [4, 4, 256, 128, 8, 2048] }
    : rest[0] === 't5'
      ? { family: 't5', dims: [4, 4, 256, 1024, 128, 32, 8, 2048] }
      : { family: 'gpt', dims: (rest.length ? rest : [4, 4, 128, 64, 12, 65]).map(Number) };
await useBackend(backend, { log: () => {} });
const { model: m, loss, tokens } = build(model);
const optimizer = new AdamW(m);
const step = () => trainStep(m, loss, (grads) => optimizer.step(grads));
for (let i = 0; i < 3; i++) step();
const t0 = performance.now();
const steps = 5;
for (let i = 0; i < steps; i++) step();
const ms = (performance.now() - t0) / steps;
console.log(
  `${backend} ${model.family} [${model.dims}]: ${ms.toFixed(1)} ms/step, ${((tokens / ms) * 1000).toFixed(0)} tokens/s`,
);
const info = await tf.profile(() => step());
const byName = new Map();
for (const k of info.kernels) {
  const e = byName.get(k.name) ?? { ms: 0, n: 0 };
  e.ms += await k.kernelTimeMs;
  e.n++;
  byName.set(k.name, e);
}
const rows = [...byName].sort((a, b) => b[1].ms - a[1].ms);
// "forward" is the custom-gradient wrapper of a fused op: its time is the fused kernel's again.
const total = rows.filter(([name]) => name !== 'forward' && name !== 'unnamed scope').reduce((s, [, e]) => s + e.ms, 0);
console.log(`kernel time ${total.toFixed(1)} ms in ${info.kernels.length} kernels (without the "forward" wrappers)`);
for (const [name, e] of rows.slice(0, 25))
  console.log(`  ${name.padEnd(34)} ${e.ms.toFixed(2).padStart(8)} ms  x${e.n}`);
