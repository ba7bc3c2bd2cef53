import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf, useBackend } from '@tessera/tensor-core';
import '@tessera/kernels-cpu';
import { createOptimizer } from '@tessera/optim';
import { MlpProblem, type Trajectories, disposeGrads, fixture, maxAbsDiff } from './helpers.js';

// PyTorch 1.13 trajectories from tools/fixtures-optim/generate.py. Both sides run in
// float32 with their own matmul/tanh, so tiny differences feed back through 30 steps;
// the bar is 1e-5 absolute on every parameter at every recorded step.
const ATOL = 1e-5;
const doc = fixture<Trajectories>('trajectories.json');
const worst = new Map<string, number>();

beforeAll(async () => {
  await useBackend('cpu', { log: () => {} });
});

afterAll(() => {
  const lines = [...worst].map(([name, d]) => `  ${name.padEnd(10)} ${d.toExponential(2)}`);
  console.log(`max |tessera - torch| over every parameter and step, per optimizer:\n${lines.join('\n')}`);
});

describe('trajectories match PyTorch', () => {
  for (const c of doc.cases) {
    it(c.id, () => {
      const problem = new MlpProblem(doc);
      const opt = createOptimizer(c.spec, problem.params);
      let live = 0;
      let maxDev = 0;
      let snap = 0;
      for (let step = 1; step <= doc.steps; step++) {
        const { loss, grads } = problem.grads();
        expect(Math.abs(loss - c.losses[step - 1]!), `loss before update ${step}`).toBeLessThan(ATOL);
        const result = opt.step(grads);
        disposeGrads(grads);
        expect(result.applied).toBe(true);
        if (c.gradNorms) expect(Math.abs(result.gradNorm! - c.gradNorms[step - 1]!)).toBeLessThan(ATOL);
        // State is created at the first update; from then on the live count must not grow.
        if (step === 1) live = tf.memory().numTensors;
        else expect(tf.memory().numTensors, `live tensors after update ${step}`).toBe(live);
        const expected = c.snapshots[snap];
        if (expected?.step === step) {
          snap++;
          const got = problem.snapshot();
          for (const [name, values] of Object.entries(expected.params)) {
            const d = maxAbsDiff(got[name]!, values);
            maxDev = Math.max(maxDev, d);
            expect(d, `${name} after update ${step}`).toBeLessThanOrEqual(ATOL);
          }
        }
      }
      expect(snap).toBe(c.snapshots.length);
      worst.set(c.spec.name, Math.max(worst.get(c.spec.name) ?? 0, maxDev));
      opt.dispose();
      problem.dispose();
    });
  }
});
