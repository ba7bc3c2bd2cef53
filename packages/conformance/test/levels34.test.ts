import { beforeAll, describe, expect, it } from 'vitest';
import { registerCpuDerivedBackend } from '@tessera/kernels-cpu';
import { Rng, tf, useBackend } from '@tessera/tensor-core';
import { type ConformanceSuites, type HostTensor, runConformance, TRANSCENDENTAL } from '@tessera/conformance';
import './fixtures/broken-backends.js';

// The plumbing of levels 3 and 4: cases passed as `suites` replace the built-in ones, run
// on the backend and are compared. The "model" here is a two-op toy with a hand-written
// expected value; test/models.test.ts runs the real GPT/BERT/T5 cases.
async function host(t: tf.Tensor): Promise<HostTensor> {
  return { shape: t.shape, dtype: t.dtype, values: await t.data() };
}

function toySuites(expectedOffset = 0): ConformanceSuites {
  const x = [0.5, -1, 2];
  return {
    model: [
      {
        name: 'toy/softmax of three logits',
        group: 'toy',
        tolerance: TRANSCENDENTAL,
        run: async () => {
          const y = tf.softmax(tf.tensor(x));
          const out = { probs: await host(y) };
          y.dispose();
          return out;
        },
        expected: async () => {
          const e = x.map(Math.exp);
          const s = e.reduce((a, b) => a + b, 0);
          return { probs: { shape: [3], dtype: 'float32', values: e.map((v) => v / s + expectedOffset) } };
        },
      },
    ],
    training: [
      {
        name: 'toy/5 steps of gradient descent, softmax regression',
        group: 'toy',
        tolerance: TRANSCENDENTAL,
        run: async () => {
          const rng = new Rng('toy');
          const w = tf.variable(rng.normalTensor([4, 3]));
          const data = rng.normalTensor([8, 4]);
          const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], 'int32'), 3);
          const losses: number[] = [];
          for (let i = 0; i < 5; i++) {
            const { value, grads } = tf.variableGrads(() =>
              tf.neg(tf.mean(tf.sum(tf.mul(labels, tf.log(tf.softmax(tf.matMul(data, w)))), -1))),
            );
            losses.push((await value.data())[0]!);
            w.assign(tf.sub(w, tf.mul(grads[w.name]!, 0.5)));
            tf.dispose([value, ...Object.values(grads)]);
          }
          tf.dispose([w, data, labels]);
          return losses;
        },
      },
    ],
  };
}

beforeAll(async () => {
  await useBackend('cpu', { log: () => {} });
  registerCpuDerivedBackend('cpucopy34');
});

describe('levels 3 and 4 take cases from the caller', () => {
  it("runs a provider's model and training cases on the backend and compares them", async () => {
    const r = await runConformance({ backend: 'cpucopy34', levels: [3, 4], suites: toySuites() });
    expect(r.levels.map((l) => l.status)).toEqual(['pass', 'pass']);
    expect(r.levels[0]!.cases[0]!.message).toBe('probs match PyTorch');
    expect(r.levels[1]!.cases[0]!.message).toMatch(
      /^loss match cpu — 5 steps, cpu's loss [\d.]+ → [\d.]+; largest deviation rel 0/,
    );
  });

  it('fails a model case that disagrees with its fixture, and a curve that drifts', async () => {
    const wrong = await runConformance({ backend: 'cpucopy34', levels: [3], suites: toySuites(1e-3) });
    expect(wrong.pass).toBe(false);
    expect(wrong.levels[0]!.cases[0]!.message).toMatch(/^probs: max abs err 1\.00e-3/);
    const drift = await runConformance({ backend: 'softmaxbug', levels: [4], suites: toySuites() });
    expect(drift.pass).toBe(false);
    expect(drift.levels[0]!.cases[0]!.message).toMatch(/^loss: max abs err/);
  });
});
