import { beforeAll, describe, expect, it } from 'vitest';
import { tf, useBackend } from '@tessera/tensor-core';
import { compareTensors, expectClose, planConformance, runConformance, toHost } from '@tessera/conformance';
import './fixtures/broken-backends.js';

beforeAll(async () => {
  await useBackend('cpu', { log: () => {} });
});

// What a test runner needs to make each case a test of its own: every name before
// anything runs, each case run on its own, and the report of what ran.
describe('planConformance: the suite case by case', () => {
  it('lists every case up front, runs them one at a time, and reports only what ran', async () => {
    const plan = await planConformance({ backend: 'offsoftmax', levels: [2, 3], filter: 'softmax' });
    expect(plan.levels.map((l) => l.level)).toEqual([2, 3]);
    const [l2, l3] = plan.levels;
    expect(l2!.cases.length).toBeGreaterThan(3);
    expect(l2!.cases.every((c) => /softmax/i.test(c.name) && c.level === 2)).toBe(true);
    expect(l3!.cases).toEqual([]); // no fixture name matches the filter
    expect(plan.result().levels.map((l) => l.level)).toEqual([3]);

    const first = await l2!.cases[0]!.run();
    expect(first.name).toBe(l2!.cases[0]!.name);
    const partial = plan.result();
    expect(partial.levels.find((l) => l.level === 2)!.cases).toEqual([first]);

    for (const c of l2!.cases.slice(1)) await c.run();
    const done = plan.result();
    expect(done.pass).toBe(false);
    expect(done.counts.cases).toBe(l2!.cases.length);
    expect(plan.levelResult(2).cases.filter((c) => !c.pass).length).toBeGreaterThan(0);
    expect(tf.getBackend()).toBe('cpu');
  });

  it('gives the same verdicts as runConformance', async () => {
    const options = { backend: 'offsoftmax', levels: [2] as 2[], filter: 'logSoftmax' };
    const whole = await runConformance(options);
    const plan = await planConformance(options);
    for (const c of plan.levels[0]!.cases) await c.run();
    const stepwise = plan.result();
    expect(stepwise.levels[0]!.cases.map((c) => [c.name, c.pass])).toEqual(
      whole.levels[0]!.cases.map((c) => [c.name, c.pass]),
    );
  });

  it('a not-available level is in the plan with its reason and no cases', async () => {
    const plan = await planConformance({ backend: 'cpu', levels: [3], level3: { fixturesDir: '/nowhere' } });
    expect(plan.levels[0]).toMatchObject({ level: 3, cases: [] });
    expect(plan.levels[0]!.reason).toMatch(/does not exist/);
    expect(plan.result().levels[0]!.status).toBe('not-available');
  });
});

describe('compareTensors / expectClose: the one tolerance rule', () => {
  it('passes within atol + rtol * max|expected| and says by how much', () => {
    const c = compareTensors(
      { shape: [3], values: [1, 2, 4.00001] },
      { shape: [3], values: [1, 2, 4] },
      { rtol: 1e-5 },
    );
    expect(c.pass).toBe(true);
    expect(c.maxAbs).toBeCloseTo(1e-5, 9);
    expect(c.maxRel).toBeCloseTo(2.5e-6, 9);
    expect(c.message).toMatch(/within rtol 1\.00e-5/);
  });

  it('fails naming the label, the element, both values and the allowance', () => {
    const a = tf.tensor2d([
      [1, 2],
      [3, 5],
    ]);
    const e = tf.tensor2d([
      [1, 2],
      [3, 4],
    ]);
    expect(() => expectClose(a, e, { rtol: 1e-3, atol: 1e-6 }, 'y')).toThrow(
      /^y: max abs err 1\.00e\+0 at \[1, 1\] \(got 5, expected 4\), rel 2\.50e-1 of scale 4\.00e\+0 — allowed rtol 1\.00e-3 \+ atol 1\.00e-6$/,
    );
    expect(() => expectClose(a, tf.zeros([4]), { atol: 1 }, 'y')).toThrow(/y: shape \[2, 2\], expected \[4\]/);
    tf.dispose([a, e]);
  });

  it('compares a gradient against its norm, with a floor for ones that are mathematically zero', () => {
    const noise = { shape: [2], values: [1e-8, -1e-8] };
    const zero = { shape: [2], values: [0, 0] };
    expect(compareTensors(zero, noise, { rtol: 1e-4, scale: 'norm', floor: 1e-2 }).pass).toBe(true);
    expect(compareTensors(zero, noise, { rtol: 1e-4, scale: 'norm' }).pass).toBe(false);
  });

  it('toHost reads asynchronously and keeps a copy after the tensor is gone', async () => {
    const t = tf.tensor1d([1, 2, 3]);
    const h = await toHost(t);
    t.dispose();
    expect(h).toEqual({ shape: [3], dtype: 'float32', values: Float32Array.from([1, 2, 3]) });
  });
});
