import { beforeAll, describe, expect, it } from 'vitest';
import { registerCpuDerivedBackend } from '@tessera/kernels-cpu';
import { tf, useBackend } from '@tessera/tensor-core';
import { formatTable, runConformance, TRAINING_TOLERANCE } from '@tessera/conformance';
import './fixtures/broken-backends.js';

// Level 4: 20 AdamW steps of a tiny GPT, BERT and T5 from the same weights and batches on
// the reference (cpu) and on the backend under test; the loss curves must agree step by step.

beforeAll(async () => {
  await useBackend('cpu', { log: () => {} });
  registerCpuDerivedBackend('nofused4', { withFusedKernels: false });
});

describe('level 4: training loss curves against cpu', () => {
  it('cpu against itself: the same curve to the bit (the runs are deterministic)', async () => {
    const r = await runConformance({ backend: 'cpu', levels: [4] });
    const l4 = r.levels[0]!;
    expect(l4.status, formatTable(r)).toBe('pass');
    expect(l4.cases.map((c) => c.name)).toEqual([
      'gpt/20 AdamW steps, causal LM',
      'bert/20 AdamW steps, masked LM',
      't5/20 AdamW steps, seq2seq (reverse the input)',
    ]);
    for (const c of l4.cases) {
      expect(c.maxAbsErr).toBe(0);
      // The curves actually move: the models learn in 20 steps.
      const [, first, last] = c.message.match(/loss ([\d.]+) → ([\d.]+)/)!;
      expect(Number(last)).toBeLessThan(0.8 * Number(first));
    }
  });

  it('a backend without fused kernels (float32 reference compositions) stays well inside 1e-3 per step', async () => {
    const before = tf.memory().numTensors;
    const r = await runConformance({ backend: 'nofused4', levels: [4] });
    const l4 = r.levels[0]!;
    expect(l4.status, formatTable(r)).toBe('pass');
    for (const c of l4.cases) {
      expect(c.tolerance).toEqual(TRAINING_TOLERANCE);
      // A different computation (so a real comparison), measured ≤ 3e-6 relative.
      expect(c.maxRelErr).toBeGreaterThan(0);
      expect(c.maxRelErr).toBeLessThan(1e-4);
      expect(c.message).toMatch(
        /^loss match cpu — 20 steps, cpu's loss .* largest deviation rel \S+ \(abs \S+\) at step \d+$/,
      );
    }
    expect(tf.memory().numTensors, 'tensors left behind').toBe(before);
  });

  it('attention that ignores the mask bends the T5 curve (3 steps are enough)', async () => {
    // (BERT's curve leaves the tolerance later, at ~1 relative by step 18; GPT has no padding.)
    const r = await runConformance({ backend: 'nomask', levels: [4], level4: { families: ['t5'], steps: 3 } });
    expect(r.pass).toBe(false);
    const c = r.levels[0]!.cases[0]!;
    expect(c.name).toBe('t5/3 AdamW steps, seq2seq (reverse the input)');
    expect(c.maxRelErr).toBeGreaterThan(1e-2);
    expect(c.message).toMatch(/^loss: max abs err \S+ at \[\d\] .*worst rel/);
  });
});
