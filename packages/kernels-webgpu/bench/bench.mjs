#!/usr/bin/env node
// Benchmark of backend "webgpu", in one run on one machine:
//   - each Tessera fused op (forward + backward where it has one) with its WGSL kernels,
//     against the same computation composed from upstream tfjs-backend-webgpu kernels (the
//     op's reference composition, differentiated by tfjs): the ratio is composed / fused;
//   - Tessera's WGSL BatchMatMul against upstream's on the GPT's training products (the
//     qkv, attention-projection, MLP and lm-head matmuls, forward x·W and both gradient
//     products dY·Wᵀ and Xᵀ·dY);
//   - a GPT training step (forward + backward + AdamW), tokens/s, on webgpu with all of
//     Tessera's kernels, with upstream's matmul instead of Tessera's, with upstream only (no
//     WGSL fused kernels either), and on cpu; the GPT and AdamW are the native bench's
//     (@tessera/transformer's GPT, @tessera/optim's AdamW).
// "upstream composition" always runs on upstream's matmul (the baseline the fused kernels were
// measured against before Tessera had its own); attention is also compared with the
// composition on Tessera's matmul.
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
import { describeWebGpu, fusedKernelNames, useWebGpuMatMul, webgpuStatus } from '@tessera/kernels-webgpu';
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
async function msPerCall(run, batches, calls = steps) {
  const times = [];
  for (let b = 0; b < batches; b++) {
    const t0 = performance.now();
    let last = [];
    for (let i = 0; i < calls; i++) {
      tf.dispose(last);
      last = run();
    }
    await last[0].data();
    tf.dispose(last);
    times.push((performance.now() - t0) / calls);
  }
  return times;
}

/** Fused op vs composition, interleaved batch by batch so machine load hits both alike. */
async function compareOp(name, shape, fused, composed, calls = steps) {
  const rounds = 5;
  const a = [];
  const b = [];
  await msPerCall(fused, 1, calls); // compiles the pipelines
  await msPerCall(composed, 1, calls);
  for (let r = 0; r < rounds; r++) {
    a.push(...(await msPerCall(fused, 1, calls)));
    b.push(...(await msPerCall(composed, 1, calls)));
  }
  const fusedMs = median(a);
  const composedMs = median(b);
  return { op: name, shape, fusedMs, composedMs, ratio: composedMs / fusedMs };
}

/** `run` with upstream's BatchMatMul registered for "webgpu" instead of Tessera's. */
const onUpstreamMatMul = (run) => () => {
  useWebGpuMatMul('upstream');
  try {
    return run();
  } finally {
    useWebGpuMatMul('tessera');
  }
};

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
      onUpstreamMatMul(withGrads((q, k, v) => attentionOp.reference({ q, k, v }, causal)[0], qkv, attnW)),
    ),
  );
  rows.push(
    await compareOp(
      'attention vs composition on Tessera matmul',
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

/**
 * Tessera's BatchMatMul vs upstream's on the GPT's linear layers: each product as the forward
 * (x·W, W [in, out]; the lm-head x·Eᵀ on the tied embedding E [V, E]) and both gradient
 * products (dX = dY·Wᵀ, dW = Xᵀ·dY), on the shapes a training step runs. Large products take
 * seconds per batch on a software adapter: 3 calls per batch there.
 */
async function matMulBenchmarks(c) {
  const rng = new Rng(`bench-matmul-${c.name}`);
  const N = c.B * c.T;
  const calls = c.E >= 256 ? Math.min(steps, 3) : steps;
  const rows = [];
  const layers = [
    ['qkv', c.E, 3 * c.E],
    ['attn proj', c.E, c.E],
    ['mlp fc', c.E, 4 * c.E],
    ['mlp proj', 4 * c.E, c.E],
  ];
  const product = async (name, a, b, tA, tB) => {
    const run = () => [tf.matMul(a, b, tA, tB)];
    const row = await compareOp(name, [...a.shape, 'x', ...b.shape], run, onUpstreamMatMul(run), calls);
    rows.push(row);
  };
  for (const [name, inF, outF] of layers) {
    const x = rng.normalTensor([N, inF]);
    const w = rng.normalTensor([inF, outF]);
    const dy = rng.normalTensor([N, outF]);
    await product(`${name} x·W`, x, w, false, false);
    await product(`${name} dY·Wᵀ`, dy, w, false, true);
    await product(`${name} Xᵀ·dY`, x, dy, true, false);
    tf.dispose([x, w, dy]);
  }
  const h = rng.normalTensor([N, c.E]);
  const wte = rng.normalTensor([c.V, c.E]);
  const dl = rng.normalTensor([N, c.V]);
  await product('lm-head x·Eᵀ', h, wte, false, true);
  await product('lm-head dL·E', dl, wte, false, false);
  await product('lm-head dLᵀ·x', dl, h, true, false);
  tf.dispose([h, wte, dl]);
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
  const entry = { config: c.name, ops: await opBenchmarks(c), matmul: await matMulBenchmarks(c), gpt: {} };
  entry.gpt.webgpu = await gptTokensPerSecond('webgpu', c, c.gptSteps, 1);
  useWebGpuMatMul('upstream');
  try {
    entry.gpt.webgpuUpstreamMatMul = await gptTokensPerSecond('webgpu', c, c.gptSteps, 1);
    entry.gpt.webgpuUpstream = await withoutFusedKernels(() => gptTokensPerSecond('webgpu', c, c.gptSteps, 1));
  } finally {
    useWebGpuMatMul('tessera');
  }
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
    console.log(`  BatchMatMul, Tessera WGSL vs upstream (median ms per call)`);
    for (const r of entry.matmul) {
      console.log(
        `  ${r.op.padEnd(32)}${`[${r.shape.join(',').replace(',x,', ']x[')}]`.padEnd(22)}${fmt(r.fusedMs, 2).padStart(10)}` +
          `${fmt(r.composedMs, 2).padStart(10)}  ${fmt(r.ratio, 2)}×`,
      );
    }
    const g = entry.gpt;
    const tps = (x) => fmt(x?.tokensPerSecond, 0);
    const gain = (x, y) => fmt(x.tokensPerSecond / y.tokensPerSecond, 2);
    console.log(
      `  training step tokens/s: webgpu ${tps(g.webgpu)}, with upstream matmul ${tps(g.webgpuUpstreamMatMul)}, ` +
        `upstream only ${tps(g.webgpuUpstream)}, cpu ${tps(g.cpu)}   ` +
        `Tessera matmul ${gain(g.webgpu, g.webgpuUpstreamMatMul)}×, all Tessera kernels ${gain(g.webgpu, g.webgpuUpstream)}×, ` +
        `webgpu/cpu ${g.cpu ? gain(g.webgpu, g.cpu) : '—'}×`,
    );
  }
}
