#!/usr/bin/env node
// Where a GPT training step's GPU time goes on "webgpu": GPU milliseconds per program
// (upstream programs by class, Tessera's WGSL kernels by shader name), from the backend's
// timestamp queries, for one step after two warm-up steps.
// Usage: node packages/kernels-webgpu/bench/profile.mjs [--large] [--top 15]
import { tf, useBackend, valueAndGrads } from '@tessera/tensor-core';
import { webgpuStatus } from '@tessera/kernels-webgpu';
import { AdamW, GPT, randomBatch } from '../../kernels-native/bench/gpt.mjs';

const argv = process.argv.slice(2);
const top = argv.includes('--top') ? Number(argv[argv.indexOf('--top') + 1]) : 15;
const c = argv.includes('--large')
  ? { L: 6, H: 6, E: 384, T: 256, B: 8, V: 65 }
  : { L: 4, H: 4, E: 128, T: 64, B: 12, V: 65 };

const status = await webgpuStatus();
if (!status.available) {
  console.error(`backend webgpu unavailable: ${status.reason}`);
  process.exit(1);
}
await useBackend('webgpu', { log: () => {} });
const backend = tf.engine().backend;
if (!backend.supportTimestampQuery) console.warn('this adapter has no timestamp queries: GPU times read 0');

// Upstream names a timed program by its class; Tessera's programs are plain objects, so
// give each a class named after its shader (the part before the size suffixes).
const run = backend.runWebGPUProgram.bind(backend);
backend.runWebGPUProgram = (program, ...rest) => {
  if (program.constructor === Object) {
    const name = program.shaderKey.split('_')[0];
    Object.setPrototypeOf(program, { [name]: class {} }[name].prototype);
  }
  return run(program, ...rest);
};

const cfg = { nLayer: c.L, nHead: c.H, nEmbd: c.E, blockSize: c.T, vocabSize: c.V };
const model = new GPT(cfg, 'profile');
const optimizer = new AdamW(model);
const { idx, targets } = randomBatch(cfg, c.B, 'profile-batch');
/**
 * Programs enqueued while `fn` runs, as { name, query }. backend.time() only sees what its
 * callback enqueues synchronously, and the optimizer's update comes after an awaited read
 * (its finite check), so the step is timed through the same timer list by hand.
 */
async function timedPrograms(fn) {
  const timers = [];
  backend.activeTimers = timers;
  backend.programTimersStack = timers;
  try {
    await fn();
  } finally {
    backend.activeTimers = undefined;
    backend.programTimersStack = null;
  }
  return timers;
}

let timers;
let wallMs = 0;
for (let step = 0; step < 3; step++) {
  let loss;
  const t0 = performance.now();
  timers = await timedPrograms(async () => {
    let grads;
    ({ loss, grads } = valueAndGrads(model, () => model.loss(idx, targets)));
    await optimizer.stepAsync(grads);
    tf.dispose([...grads.values()]);
  });
  await loss.data();
  wallMs = performance.now() - t0;
  loss.dispose();
}
const byProgram = new Map();
for (const { name, query } of timers) byProgram.set(name, (byProgram.get(name) ?? 0) + (await query));
const gpuMs = [...byProgram.values()].reduce((a, b) => a + b, 0);
console.log(
  `GPT L${c.L} H${c.H} E${c.E} T${c.T} B${c.B} V${c.V}, one training step: ${wallMs.toFixed(0)} ms wall, ` +
    `${gpuMs.toFixed(0)} ms GPU`,
);
for (const [name, ms] of [...byProgram].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`  ${name.padEnd(32)}${ms.toFixed(1).padStart(9)} ms  ${((100 * ms) / gpuMs).toFixed(1).padStart(5)} %`);
}
tf.dispose([idx, targets]);
optimizer.dispose();
model.dispose();
