// What bench.mjs and scaling.mjs measure: a training step's tokens/s on a backend, sgemm
// GFLOP/s through tf.matMul, and the FLOPs a GPT step does by formula.
import { tf, trainStep, useBackend } from '@tessera/tensor-core';
import { median } from './common.mjs';
import { BertLike, bertBatch, T5Like, t5Batch } from './encoders.mjs';
import { AdamW, GPT, randomBatch } from './gpt.mjs';

/**
 * FLOPs of one GPT training token (forward + backward = 3 × forward), counted by formula
 * from the matmuls: per layer 2·(3E² + E² + 4E² + 4E²) for the projections and 2·2·T·E for
 * q·kᵀ and p·v over all T keys (the usual count; causal kernels may skip the hidden half),
 * plus 2·E·V for the tied LM head. Norms, GELU, softmax and AdamW are not counted.
 */
export function gptTrainFlopsPerToken([L, , E, T, , V]) {
  return 3 * (L * (24 * E * E + 4 * T * E) + 2 * E * V);
}

/** The model, its batch, and the tokens one step consumes. */
export function build(m) {
  if (m.family === 'gpt') {
    const [L, H, E, T, B, V] = m.dims;
    const cfg = { nLayer: L, nHead: H, nEmbd: E, blockSize: T, vocabSize: V };
    const model = new GPT(cfg, 'bench');
    const { idx, targets } = randomBatch(cfg, B, 'bench-batch');
    return { model, loss: () => model.loss(idx, targets), tensors: [idx, targets], tokens: B * T };
  }
  if (m.family === 'bert') {
    const [L, H, E, T, B, V] = m.dims;
    const cfg = { nLayer: L, nHead: H, nEmbd: E, seqLen: T, vocabSize: V };
    const model = new BertLike(cfg, 'bench');
    const batch = bertBatch(cfg, B, 'bench-batch');
    return { model, loss: () => model.loss(batch), tensors: [batch.idx, batch.mask, batch.labels], tokens: B * T };
  }
  const [L, H, E, F, Te, Td, B, V] = m.dims;
  const cfg = { nLayer: L, nHead: H, nEmbd: E, dFf: F, encLen: Te, decLen: Td, vocabSize: V };
  const model = new T5Like(cfg, 'bench');
  const batch = t5Batch(cfg, B, 'bench-batch');
  const tensors = [batch.inputs, batch.mask, batch.decoderInputs, batch.labels];
  return { model, loss: () => model.loss(batch), tensors, tokens: B * (Te + Td) };
}

export async function tokensPerSecond(backend, m, nSteps, warmup) {
  await useBackend(backend, { log: () => {} });
  const { model, loss, tensors, tokens } = build(m);
  const optimizer = new AdamW(model);
  const step = () => trainStep(model, loss, (grads) => optimizer.step(grads));
  for (let i = 0; i < warmup; i++) step();
  const times = [];
  for (let i = 0; i < nSteps; i++) {
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
  }
  const ms = median(times);
  tf.dispose(tensors);
  optimizer.dispose();
  model.dispose();
  return { msPerStep: ms, tokensPerSecond: (tokens * 1000) / ms };
}

/**
 * GFLOP/s of tf.matMul on n×n. The output is disposed, not read back: on these cpu-storage
 * backends the kernel has finished when matMul returns, and (as inside a training step)
 * its buffer goes back to the pool. PyTorch's a @ b is timed the same way.
 */
export async function matmulGflops(backend, n, reps) {
  await useBackend(backend, { log: () => {} });
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  const once = () => tf.matMul(a, b).dispose();
  for (let i = 0; i < 3; i++) once(); // as torch_bench.py: 3 warm-up products
  const times = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    once();
    times.push(performance.now() - t0);
  }
  const s = median(times) / 1000;
  a.dispose();
  b.dispose();
  return (2 * n ** 3) / s / 1e9;
}
