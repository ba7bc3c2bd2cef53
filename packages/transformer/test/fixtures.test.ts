import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf, useBackend, valueAndGrads } from '@tessera/tensor-core';
import '@tessera/kernels-cpu';
import { loadPretrained, loadSafetensors } from '@tessera/transformer';
import { disposeInputs, FIXTURES, fixtureInputs } from './helpers.js';

// Tolerances of the issue: logits and loss within 1e-4 absolute; each parameter gradient
// within 1e-4 relative to its norm (with a floor of 1e-2 on the norm: BERT's key biases
// have mathematically zero gradients, which the fixture holds as ~1e-8 rounding noise).
const LOGIT_ATOL = 1e-4;
const GRAD_RTOL = 1e-4;

const CASES = ['gpt2', 'bert-pretraining', 'bert-classification', 't5-v1_0', 't5-v1_1'];

function maxAbsDiff(a: Float32Array | Int32Array | Uint8Array, b: Float32Array | Int32Array | Uint8Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

beforeAll(async () => {
  await useBackend('cpu', { log: () => {} });
});

describe('models match the PyTorch fixtures on cpu', () => {
  for (const name of CASES) {
    it(`${name}: logits, loss and every parameter gradient`, () => {
      const dir = join(FIXTURES, name);
      const { model, report } = loadPretrained(dir);
      model.eval();
      const expected = loadSafetensors(join(dir, 'expected.safetensors')).tensors;
      const inputs = fixtureInputs(name);
      const before = tf.memory().numTensors;
      let logits: tf.Tensor | undefined;
      const { loss, grads } = valueAndGrads(model, () => {
        const out = model.forward(inputs);
        logits = tf.keep(out.logits);
        return out.loss!;
      });
      const logitError = maxAbsDiff(logits!.dataSync(), expected.logits!.dataSync());
      const lossError = Math.abs(loss.dataSync()[0]! - expected.loss!.dataSync()[0]!);
      expect(logits!.shape).toEqual(expected.logits!.shape);
      expect(logitError, `${name} logits`).toBeLessThanOrEqual(LOGIT_ATOL);
      expect(lossError, `${name} loss`).toBeLessThanOrEqual(LOGIT_ATOL);
      const gradNames = Object.keys(expected)
        .filter((k) => k.startsWith('grad.'))
        .map((k) => k.slice(5));
      expect(gradNames.sort()).toEqual([...grads.keys()].sort());
      let worst = 0;
      for (const param of gradNames) {
        const e = expected[`grad.${param}`]!;
        const g = grads.get(param)!;
        expect(g.shape, param).toEqual(e.shape);
        const values = e.dataSync();
        const norm = Math.sqrt(values.reduce((acc, v) => acc + v * v, 0));
        const relative = maxAbsDiff(g.dataSync(), e.dataSync()) / Math.max(norm, 1e-2);
        worst = Math.max(worst, relative);
        expect(relative, `${name} grad ${param}`).toBeLessThanOrEqual(GRAD_RTOL);
      }
      console.log(
        `${name}: |Δlogits| ${logitError.toExponential(2)}, |Δloss| ${lossError.toExponential(2)}, max grad error/norm ${worst.toExponential(2)}; loaded ${report.loaded} tensors`,
      );
      tf.dispose([loss, logits!, ...grads.values()]);
      expect(tf.memory().numTensors, 'tensors left after the step').toBe(before);
      tf.dispose(Object.values(expected));
      disposeInputs(inputs);
      model.dispose();
    });
  }
});
