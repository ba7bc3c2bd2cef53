import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerCpuDerivedBackend } from '@tessera/kernels-cpu';
import { tf, useBackend } from '@tessera/tensor-core';
import { defaultFixturesDir, formatTable, MODEL_FIXTURES, runConformance } from '@tessera/conformance';
import './fixtures/broken-backends.js';

// Level 3: GPT, BERT and T5 forward and backward on the backend under test, against the
// PyTorch fixtures this package ships (logits, loss, extra outputs and every parameter
// gradient).
const FIXTURES = resolve(import.meta.dirname, '..', 'fixtures');

beforeAll(async () => {
  await useBackend('cpu', { log: () => {} });
  // The reference compositions of every Tessera fused op instead of cpu's float64 kernels.
  registerCpuDerivedBackend('nofused3', { withFusedKernels: false });
});

describe('level 3: models against the PyTorch fixtures', () => {
  it('finds the fixtures in its own package (fixtures/, published with it)', () => {
    expect(defaultFixturesDir()).toBe(FIXTURES);
  });

  for (const backend of ['cpu', 'nofused3']) {
    it(`${backend}: every fixture passes, logits and gradients well inside the tolerance`, async () => {
      const before = tf.memory().numTensors;
      const r = await runConformance({ backend, levels: [3] });
      const l3 = r.levels[0]!;
      expect(l3.status, formatTable(r, { onlyFailures: true })).toBe('pass');
      expect(l3.cases.map((c) => c.name.split('/')[0])).toEqual([...MODEL_FIXTURES]);
      for (const c of l3.cases) {
        // Measured: ≤ 7e-6 absolute, ≤ 3e-6 of a gradient's norm; the tolerance is 1e-4.
        expect(c.maxAbsErr).toBeLessThan(2e-5);
        expect(c.maxRelErr).toBeLessThan(2e-5);
        expect(c.message).toMatch(
          /^logits, loss, (seq_relationship_logits, |encoder_last_hidden_state, )?\d+ grad\.\* match PyTorch/,
        );
      }
      expect(l3.cases.find((c) => c.name.startsWith('t5-v1_1'))!.tolerance).toMatchObject({ atol: 1e-4, rtol: 0 });
      expect(tf.memory().numTensors, 'tensors left behind').toBe(before);
      expect(tf.getBackend()).toBe('cpu');
    });
  }

  it('a fixturesDir that does not exist makes the level not available, with the path', async () => {
    const missing = join(FIXTURES, 'nowhere');
    const r = await runConformance({ backend: 'cpu', levels: [3], level3: { fixturesDir: missing } });
    expect(r.pass).toBe(true);
    expect(r.levels[0]).toMatchObject({ status: 'not-available' });
    expect(r.levels[0]!.reason).toBe(`no fixtures directory: ${missing} does not exist (pass fixturesDir)`);
    const strict = await runConformance({
      backend: 'cpu',
      levels: [3],
      level3: { fixturesDir: missing },
      requireAllLevels: true,
    });
    expect(strict.pass).toBe(false);
  });

  it('runs a chosen subset of fixtures, and says which are missing', async () => {
    const r = await runConformance({ backend: 'cpu', levels: [3], level3: { fixtures: ['gpt2'] } });
    expect(r.levels[0]!.cases.map((c) => c.name)).toEqual(['gpt2/forward+backward (GPT2LMHeadModel)']);
    const bad = await runConformance({ backend: 'cpu', levels: [3], level3: { fixtures: ['gpt2', 'llama'] } });
    expect(bad.levels[0]!.reason).toMatch(/^fixtures not found in .*: llama/);
  });
});

describe('level 3 catches a broken backend', () => {
  it('attention that ignores the padding mask: BERT and T5 fail, GPT (no padding) passes', async () => {
    const r = await runConformance({ backend: 'nomask', levels: [3] });
    expect(r.pass).toBe(false);
    const failed = r.levels[0]!.cases.filter((c) => !c.pass);
    expect(failed.map((c) => c.name.split('/')[0])).toEqual([
      'bert-pretraining',
      'bert-classification',
      't5-v1_0',
      't5-v1_1',
    ]);
    for (const c of failed) {
      expect(c.maxAbsErr).toBeGreaterThan(1e-3);
      // The first problem named is the model output, with where and by how much.
      expect(c.message).toMatch(/^logits: max abs err \S+ at \[\d+(, \d+)*\] \(got .*, expected .*\), rel /);
      expect(c.message).toMatch(/grad\./);
    }
    expect(formatTable(r, { onlyFailures: true })).toMatch(/bert-pretraining\/forward\+backward .* FAIL/);
  });
});
