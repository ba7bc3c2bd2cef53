import { trainStep, useBackend } from '@tessera/tensor-core';
import '@tessera/kernels-native';
import { AdamW } from './gpt.mjs';
import { build } from './measure.mjs';
await useBackend('native', { log: () => {} });
const { model: m, loss, tokens } = build({ family: 'gpt', dims: [6, 6, 384, 256, 8, 65] });
const optimizer = new AdamW(m);
const step = () => trainStep(m, loss, (grads) => optimizer.step(grads));
for (let i = 0; i < 3; i++) step();
const ts = [];
for (let i = 0; i < 8; i++) { const t0 = performance.now(); step(); ts.push(performance.now() - t0); }
ts.sort((a, b) => a - b);
console.log(`${process.env.TAG} median ${ts[4].toFixed(1)} ms min ${ts[0].toFixed(1)} ms -> ${(tokens / ts[4] * 1000).toFixed(0)} tok/s`);
