import { tf, useBackend } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';
import '@tessera/kernels-native';
// @ts-expect-error: the bench model is plain ESM JavaScript without declarations.
import { AdamW, GPT, gptTrainStep, randomBatch } from '../bench/gpt.mjs';

const cfg = { nLayer: 2, nHead: 2, nEmbd: 32, blockSize: 16, vocabSize: 65 };

/** Trains a fresh, identically seeded GPT for `steps` steps on `backend`; returns the losses. */
async function train(backend: string, steps: number) {
  await useBackend(backend, { log: () => {} });
  const model = new GPT(cfg, 'training-test');
  const optimizer = new AdamW(model, { lr: 3e-3 });
  const { idx, targets } = randomBatch(cfg, 4, 'training-test-batch');
  const losses: number[] = [];
  const counts: number[] = [];
  try {
    for (let s = 0; s < steps; s++) {
      losses.push(gptTrainStep(model, optimizer, idx, targets));
      counts.push(tf.memory().numTensors);
    }
  } finally {
    idx.dispose();
    targets.dispose();
    optimizer.dispose();
    model.dispose();
  }
  return { losses, counts };
}

describe('GPT training step on native vs cpu', () => {
  it('gives the same losses step by step (rtol 1e-4: fp32 BLAS vs float64 JS sums, compounded over 6 steps)', async () => {
    const native = await train('native', 6);
    const cpu = await train('cpu', 6);
    expect(native.losses[0]).toBeGreaterThan(3.5); // ≈ ln(65) at initialisation
    native.losses.forEach((l, i) => {
      expect(Math.abs(l - cpu.losses[i]!) / cpu.losses[i]!, `step ${i}: ${l} vs ${cpu.losses[i]}`).toBeLessThan(1e-4);
    });
    expect(native.losses[5]!).toBeLessThan(native.losses[0]!); // it learns
  });

  it('leaks no tensors over many steps', async () => {
    const before = tf.memory().numTensors;
    const { counts, losses } = await train('native', 25);
    expect(new Set(counts.slice(1)).size, `live tensors per step: ${counts.join(', ')}`).toBe(1);
    expect(tf.memory().numTensors).toBe(before);
    expect(losses.every(Number.isFinite)).toBe(true);
  });
});
