#!/usr/bin/env node
// Training throughput of backend "cuda" on GPT-2 124M (the bench GPT of kernels-native:
// @tessera/transformer's GPT2LMHeadModel, tanh GELU, tied embeddings, no dropout, AdamW),
// and where its time goes (the kernels that fell back to the host, the allocator). The
// PyTorch eager side is bench/torch_gpt.py; scripts/device-check.sh runs both in one call.
//
// Usage: node bench/bench.mjs [--batch 8] [--seq 1024] [--layers 12 --heads 12 --embd 768 --vocab 50304]
//          [--steps 5] [--warmup 2] [--peak-tflops 67] [--json]
// TESSERA_CUDA_TF32=1 turns TF32 GEMMs on (off by default, as conformance runs).
import { parseArgs } from 'node:util';
import { tf, useBackend } from '@tessera/tensor-core';
import { cudaFallbackCounts, cudaMemoryStats } from '@tessera/kernels-cuda-napi';
import { AdamW, GPT, gptTrainStep, randomBatch } from '../../kernels-native/bench/gpt.mjs';

const { values: o } = parseArgs({
  options: {
    batch: { type: 'string', default: '8' },
    seq: { type: 'string', default: '1024' },
    layers: { type: 'string', default: '12' },
    heads: { type: 'string', default: '12' },
    embd: { type: 'string', default: '768' },
    vocab: { type: 'string', default: '50304' },
    steps: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    'peak-tflops': { type: 'string', default: '67' },
    threads: { type: 'string' }, // accepted for `tessera bench`; unused on cuda
    backend: { type: 'string', default: 'cuda' }, // another backend: a smoke test of this script off a GPU
    large: { type: 'boolean' },
    json: { type: 'boolean' },
  },
});
const n = (k) => Number(o[k]);
const cfg = { nLayer: n('layers'), nHead: n('heads'), nEmbd: n('embd'), blockSize: n('seq'), vocabSize: n('vocab') };
const B = n('batch');

const onCuda = o.backend === 'cuda';
const choice = await useBackend(o.backend, { log: (l) => console.error(l) });
const model = new GPT(cfg, 'bench');
const optimizer = new AdamW(model);
const { idx, targets } = randomBatch(cfg, B, 'bench-batch');
const params = model.parameters().reduce((acc, p) => acc + p.variable.size, 0);

const log = (line) => console.error(`bench ${o.backend}: ${line}`);
let loss = Number.NaN;
const t0 = performance.now();
for (let i = 0; i < n('warmup'); i++) loss = gptTrainStep(model, optimizer, idx, targets);
log(`warmup ${n('warmup')} steps in ${((performance.now() - t0) / 1000).toFixed(1)} s, loss ${loss.toFixed(4)}`);
const times = [];
for (let i = 0; i < n('steps'); i++) {
  const s = performance.now();
  loss = gptTrainStep(model, optimizer, idx, targets); // reads the loss: the step has finished on the GPU
  times.push(performance.now() - s);
  log(`step ${i + 1}: ${times[i].toFixed(0)} ms, loss ${loss.toFixed(4)}`);
}
times.sort((a, b) => a - b);
const ms = times[Math.floor(times.length / 2)];
const tokens = B * cfg.blockSize;
const tps = tokens / (ms / 1000);
const flopsPerToken = 6 * params + 12 * cfg.nLayer * cfg.blockSize * cfg.nEmbd;
const result = {
  side: `tessera-${o.backend}`,
  backend: choice.notice,
  tf32: process.env.TESSERA_CUDA_TF32 === '1',
  params,
  batch: B,
  seq: cfg.blockSize,
  msPerStep: Math.round(ms * 100) / 100,
  tokensPerSec: Math.round(tps * 10) / 10,
  mfu: Math.round(((tps * flopsPerToken) / (n('peak-tflops') * 1e12)) * 1e4) / 1e4,
  peakTflops: n('peak-tflops'),
  loss: Math.round(loss * 1e4) / 1e4,
  tensors: tf.memory().numTensors,
  allocator: onCuda ? cudaMemoryStats() : null,
  hostFallbacks: onCuda ? cudaFallbackCounts() : null,
};
if (o.json) console.log(JSON.stringify(result));
else {
  console.log(
    `GPT-2 ${(params / 1e6).toFixed(0)}M, B ${B}, T ${cfg.blockSize}: ${result.tokensPerSec} tokens/s, ${result.msPerStep} ms/step, MFU ${(result.mfu * 100).toFixed(1)}% of ${result.peakTflops} TFLOPS`,
  );
  console.log(`host fallbacks: ${JSON.stringify(result.hostFallbacks)}`);
  console.log(`allocator: ${JSON.stringify(result.allocator)}`);
}
