#!/usr/bin/env node
// Benchmark of backend "webgpu", in one run on one machine:
//   - each Tessera fused op (forward + backward where it has one) with its WGSL kernels,
//     against the same computation composed from upstream tfjs-backend-webgpu kernels (the
//     op's reference composition, differentiated by tfjs): the ratio is composed / fused;
//   - a GPT training step (forward + backward + AdamW), tokens/s, on webgpu with the WGSL
//     kernels, on webgpu with them unregistered (upstream compositions), and on cpu; the GPT
//     and AdamW are the native bench's (@tessera/transformer's GPT, @tessera/optim's AdamW).
// Every read is asynchronous (`await t.data()`): synchronous reads fail in Node on webgpu.
// Usage: node packages/kernels-webgpu/bench/bench.mjs [--steps 10] [--large] [--json] [--no-cpu]
// (`tessera bench --backend webgpu` runs it; --threads is accepted and ignored).
import { loadavg } from 'node:os';
import {
  adamwOp,
  attentionOp,
  geluOp,
  layerNormOp,
  Rng,
  rmsNormOp,
  softmaxCrossEntropyOp,
  tf,
  useBackend,
  valueAndGrads,
} from '@tessera/tensor-core';
import * as tfc from '@tessera/tensor-core/tfjs';
import '@tessera/kernels-cpu';
import { describeWebGpu, fusedKernelNames, webgpuStatus } from '@tessera/kernels-webgpu';
import { median, parseArgs } from '../../kernels-native/bench/common.mjs';
import { AdamW, GPT, randomBatch } from '../../kernels-native/bench/gpt.mjs';

const { flag, option } = parseArgs();
const steps = Math.max(1, option('steps', 10));

// The native bench's GPT configurations (nanoGPT character-level shapes). The large one
// takes tens of seconds per training step on a software adapter: fewer GPT steps, no cpu.
const configs = [
  { name: 'L4 H4 E128 T64 B12 V65', L: 4, H: 4, E: 128, T: 64, B: 12, V: 65, gptSteps: steps, cpuSteps: steps },
];
if (flag('large')) {
  configs.push({
    name: 'L6 H6 E384 T256 B8 V65',
    ...{ L: 6, H: 6, E: 384, T: 256, B: 8, V: 65 },
    gptSteps: Math.min(steps, 3),
    cpuSteps: 0,
  });
}

const status = await webgpuStatus();
if (!status.available) {
  console.error(`backend webgpu unavailable: ${status.reason}`);
  process.exit(1);
}
await useBackend('webgpu', { log: () => {} });

/**
 * Milliseconds per call of `run` (which returns tensors): batches of `steps` calls, each
 * batch ended by awaiting the last call's first output, so queued GPU work is counted.
 */
async function msPerCall(run, batches) {
  const times = [];
  for (let b = 0; b < batches; b++) {
    const t0 = performance.now();
    let last = [];
    for (let i = 0; i < steps; i++) {
      tf.dispose(last);
      last = run();
    }
    await last[0].data();
    tf.dispose(last);
    times.push((performance.now() - t0) / steps);
  }
  return times;
}

/** Fused op vs composition, interleaved batch by batch so machine load hits both alike. */
async function compareOp(name, shape, fused, composed) {
  const rounds = 5;
  const a = [];
  const b = [];
  await msPerCall(fused, 1); // compiles the pipelines
  await msPerCall(composed, 1);
  for (let r = 0; r < rounds; r++) {
    a.push(...(await msPerCall(fused, 1)));
    b.push(...(await msPerCall(composed, 1)));
  }
  const fusedMs = median(a);
  const composedMs = median(b);
  return { op: name, shape, fusedMs, composedMs, ratio: composedMs / fusedMs };
}

/** Forward and gradients of sum(f(...xs) · w) with respect to xs. */
const withGrads = (f, xs, w) => () => tf.tidy(() => tf.grads((...ys) => tf.sum(tf.mul(f(...ys), w)))(xs));

async function opBenchmarks(c) {
  const rng = new Rng(`bench-${c.name}`);
  const D = c.E / c.H;
  const N = c.B * c.T;
  const rows = [];
  const keep = [];
  const t = (shape, std = 1) => {
    const x = rng.normalTensor(shape, std);
    keep.push(x);
    return x;
  };

  const qkv = [t([c.B, c.H, c.T, D]), t([c.B, c.H, c.T, D]), t([c.B, c.H, c.T, D])];
  const attnW = t([c.B, c.H, c.T, D]);
  const causal = { causal: true, scale: null };
  rows.push(
    await compareOp(
      'attention fwd+bwd (causal)',
      [c.B, c.H, c.T, D],
      withGrads((q, k, v) => attentionOp({ q, k, v }, causal)[0], qkv, attnW),
      withGrads((q, k, v) => attentionOp.reference({ q, k, v }, causal)[0], qkv, attnW),
    ),
  );

  const x = t([N, c.E]);
  const gamma = t([c.E]);
  const beta = t([c.E]);
  const normW = t([N, c.E]);
  const eps = { eps: 1e-5 };
  rows.push(
    await compareOp(
      'layer norm fwd+bwd',
      [N, c.E],
      withGrads((xx, g, b) => layerNormOp({ x: xx, gamma: g, beta: b }, eps)[0], [x, gamma, beta], normW),
      withGrads((xx, g, b) => layerNormOp.reference({ x: xx, gamma: g, beta: b }, eps)[0], [x, gamma, beta], normW),
    ),
  );
  rows.push(
    await compareOp(
      'RMS norm fwd+bwd',
      [N, c.E],
      withGrads((xx, g) => rmsNormOp({ x: xx, gamma: g }, eps)[0], [x, gamma], normW),
      withGrads((xx, g) => rmsNormOp.reference({ x: xx, gamma: g }, eps)[0], [x, gamma], normW),
    ),
  );

  const h = t([N, 4 * c.E]);
  const hW = t([N, 4 * c.E]);
  const tanh = { approximate: 'tanh' };
  rows.push(
    await compareOp(
      'GELU (tanh) fwd+bwd',
      [N, 4 * c.E],
      withGrads((xx) => geluOp({ x: xx }, tanh)[0], [h], hW),
      withGrads((xx) => geluOp.reference({ x: xx }, tanh)[0], [h], hW),
    ),
  );

  const logits = t([N, c.V], 2);
  const labels = tf.tensor1d(
    Int32Array.from({ length: N }, (_, i) => (i * 7919) % c.V),
    'int32',
  );
  keep.push(labels);
  const ce = { reduction: 'mean', ignoreIndex: -100 };
  const one = tf.scalar(1);
  keep.push(one);
  rows.push(
    await compareOp(
      'softmax cross-entropy fwd+bwd',
      [N, c.V],
      withGrads((l) => softmaxCrossEntropyOp({ logits: l, labels }, ce)[0], [logits], one),
      withGrads((l) => softmaxCrossEntropyOp.reference({ logits: l, labels }, ce)[0], [logits], one),
    ),
  );

  // One AdamW update of the largest GPT matrix (E × 4E).
  const param = t([c.E, 4 * c.E]);
  const grad = t([c.E, 4 * c.E]);
  const m = t([c.E, 4 * c.E], 0.1);
  const v = tf.square(t([c.E, 4 * c.E], 0.1));
  keep.push(v);
  const adam = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 10 };
  rows.push(
    await compareOp(
      'AdamW update',
      [c.E, 4 * c.E],
      () => adamwOp({ param, grad, m, v }, adam),
      () => tf.tidy(() => adamwOp.reference({ param, grad, m, v }, adam)),
    ),
  );
  tf.dispose(keep);
  return rows;
}

/** Tokens/s of forward + backward + AdamW on `backend`; each step awaits its loss. */
async function gptTokensPerSecond(backend, c, nSteps, warmup) {
  await useBackend(backend, { log: () => {} });
  const cfg = { nLayer: c.L, nHead: c.H, nEmbd: c.E, blockSize: c.T, vocabSize: c.V };
  const model = new GPT(cfg, 'bench');
  const optimizer = new AdamW(model);
  const { idx, targets } = randomBatch(cfg, c.B, 'bench-batch');
  const step = async () => {
    const { loss, grads } = valueAndGrads(model, () => model.loss(idx, targets));
    // Synchronous reads fail on webgpu in Node: the optimizer reads its finite check asynchronously.
    await optimizer.stepAsync(grads);
    const value = (await loss.data())[0];
    loss.dispose();
    for (const g of grads.values()) g.dispose();
    return value;
  };
  for (let i = 0; i < warmup; i++) await step();
  const times = [];
  let loss = Number.NaN;
  for (let i = 0; i < nSteps; i++) {
    const t0 = performance.now();
    loss = await step();
    times.push(performance.now() - t0);
  }
  tf.dispose([idx, targets]);
  optimizer.dispose();
  model.dispose();
  const ms = median(times);
  return { msPerStep: ms, tokensPerSecond: (c.B * c.T * 1000) / ms, lossAfter: loss };
}

/** Runs `fn` with the WGSL kernels unregistered from "webgpu" (the upstream compositions). */
async function withoutFusedKernels(fn) {
  const saved = fusedKernelNames.map((name) => tfc.getKernel(name, 'webgpu'));
  for (const name of fusedKernelNames) tfc.unregisterKernel(name, 'webgpu');
  try {
    return await fn();
  } finally {
    for (const k of saved) tfc.registerKernel(k);
  }
}

const result = {
  device: await describeWebGpu(),
  steps,
  loadAverageBefore: loadavg()[0],
  configs: [],
};
for (const c of configs) {
  await useBackend('webgpu', { log: () => {} });
  const entry = { config: c.name, ops: await opBenchmarks(c), gpt: {} };
  entry.gpt.webgpu = await gptTokensPerSecond('webgpu', c, c.gptSteps, 1);
  entry.gpt.webgpuUpstream = await withoutFusedKernels(() => gptTokensPerSecond('webgpu', c, c.gptSteps, 1));
  if (!flag('no-cpu') && c.cpuSteps) entry.gpt.cpu = await gptTokensPerSecond('cpu', c, c.cpuSteps, 1);
  result.configs.push(entry);
}
result.loadAverageAfter = loadavg()[0];

const fmt = (x, d = 1) => (x === undefined || x === null ? '—' : x.toFixed(d));
if (flag('json')) {
  console.log(JSON.stringify(result, null, 2));
} else {
  console.log(
    `tessera bench: webgpu on ${result.device}; ${steps} steps per sample; ` +
      `load average ${fmt(result.loadAverageBefore, 2)} before, ${fmt(result.loadAverageAfter, 2)} after`,
  );
  for (const entry of result.configs) {
    console.log(`\nGPT ${entry.config}: fused ops, WGSL kernel vs upstream composition (median ms per call)`);
    console.log(`  ${'op'.padEnd(32)}${'shape'.padEnd(18)}${'WGSL'.padStart(10)}${'upstream'.padStart(10)}  ratio`);
    for (const r of entry.ops) {
      console.log(
        `  ${r.op.padEnd(32)}${`[${r.shape}]`.padEnd(18)}${fmt(r.fusedMs, 2).padStart(10)}${fmt(r.composedMs, 2).padStart(10)}  ${fmt(r.ratio, 2)}×`,
      );
    }
    const g = entry.gpt;
    const tps = (x) => fmt(x?.tokensPerSecond, 0);
    console.log(
      `  training step tokens/s: webgpu ${tps(g.webgpu)}, webgpu without WGSL kernels ${tps(g.webgpuUpstream)}, ` +
        `cpu ${tps(g.cpu)}   webgpu/cpu ${g.cpu ? fmt(g.webgpu.tokensPerSecond / g.cpu.tokensPerSecond, 2) : '—'}×, ` +
        `WGSL kernels ${fmt(g.webgpu.tokensPerSecond / g.webgpuUpstream.tokensPerSecond, 2)}×`,
    );
  }
}
