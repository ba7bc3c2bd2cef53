import { beforeAll, describe, expect, it } from 'vitest';
import { tf, useBackend } from '@tessera/tensor-core';
import '@tessera/kernels-cpu';
import {
  DynamicLossScaler,
  GradientAccumulator,
  NonFiniteGradientError,
  clipGradNorm,
  clipGradValue,
  createOptimizer,
  disposeStateDict,
} from '@tessera/optim';
import { MlpProblem, type Trajectories, disposeGrads, fixture, maxAbsDiff } from './helpers.js';

const doc = fixture<Trajectories>('trajectories.json');

beforeAll(async () => {
  await useBackend('cpu', { log: () => {} });
});

const values = (t: tf.Tensor) => Array.from(t.dataSync());

describe('clipping', () => {
  it('clips by global norm like torch (coefficient max/(norm+1e-6), capped at 1)', () => {
    const a = tf.tensor([3, 0]);
    const b = tf.tensor([[0, 4]]);
    const { grads, norm } = clipGradNorm(
      new Map([
        ['a', a],
        ['b', b],
      ]),
      1,
    );
    expect(norm).toBeCloseTo(5, 6);
    expect(values(grads.get('a')!)).toEqual([expect.closeTo(0.6, 6), 0]);
    expect(values(grads.get('b')!)).toEqual([0, expect.closeTo(0.8, 6)]);
    disposeGrads(grads);
    const loose = clipGradNorm({ a }, 10);
    expect(values(loose.grads.get('a')!)).toEqual([3, 0]);
    disposeGrads(loose.grads);
    const byValue = clipGradValue({ a, b }, 2);
    expect(values(byValue.get('a')!)).toEqual([2, 0]);
    expect(values(byValue.get('b')!)).toEqual([0, 2]);
    disposeGrads(byValue);
    expect(() => clipGradNorm({ a }, 0)).toThrow(/maxNorm must be a finite number > 0/);
    a.dispose();
    b.dispose();
  });
});

describe('clipping inside a step', () => {
  it('one sumSquares pass per gradient; within maxNorm no multiply, the same update bit for bit', async () => {
    const run = (clipGradNorm?: number) => {
      const p = new MlpProblem(doc);
      const opt = createOptimizer({ name: 'adamw', lr: 0.01, ...(clipGradNorm ? { clipGradNorm } : {}) }, p.params);
      return { p, opt };
    };
    const plain = run();
    const loose = run(1e6); // never reached: coefficient 1
    const tight = run(1e-3); // always clips
    const kernels: Record<string, string[]> = {};
    for (const [name, { p, opt }] of Object.entries({ plain, loose, tight })) {
      for (let step = 0; step < 3; step++) {
        const { grads } = p.grads();
        if (step === 2) {
          const info = await tf.profile(() => {
            opt.step(grads);
          });
          kernels[name] = info.kernels.map((k) => k.name);
        } else opt.step(grads);
        disposeGrads(grads);
      }
    }
    const count = (name: string, kernel: string) => kernels[name]!.filter((k) => k === kernel).length;
    const nGrads = Object.keys(plain.p.params).length;
    for (const name of ['plain', 'loose', 'tight']) expect(count(name, 'TesseraSumSquares'), name).toBe(nGrads);
    expect(count('loose', 'Multiply')).toBe(count('plain', 'Multiply'));
    expect(count('tight', 'Multiply')).toBeGreaterThanOrEqual(count('plain', 'Multiply') + nGrads);
    for (const k of Object.keys(plain.p.params)) {
      expect(values(loose.p.params[k]!), k).toEqual(values(plain.p.params[k]!));
      expect(maxAbsDiff(values(tight.p.params[k]!), values(plain.p.params[k]!)), k).toBeGreaterThan(0);
    }
    for (const r of [plain, loose, tight]) {
      r.opt.dispose();
      for (const v of Object.values(r.p.params)) v.dispose();
    }
  });
});

describe('gradient accumulation', () => {
  function updateFrom(source: 'full' | 'equal' | 'weighted'): Record<string, Float32Array> {
    const p = new MlpProblem(doc);
    const opt = createOptimizer({ name: 'adamw', lr: 0.01, clipGradNorm: 0.5 }, p.params);
    const acc = new GradientAccumulator();
    for (let step = 0; step < 3; step++) {
      if (source === 'full') {
        const { grads } = p.grads();
        opt.step(grads);
        disposeGrads(grads);
        continue;
      }
      // 8 rows: four equal micro-batches of 2, or unequal ones of 3 and 5 weighted by size.
      const cuts = source === 'equal' ? [0, 2, 4, 6, 8] : [0, 3, 8];
      for (let i = 0; i + 1 < cuts.length; i++) {
        const { grads } = p.grads(cuts[i], cuts[i + 1]);
        acc.add(grads, source === 'equal' ? 1 : cuts[i + 1]! - cuts[i]!);
        disposeGrads(grads);
      }
      expect(acc.count).toBe(cuts.length - 1);
      const mean = acc.mean();
      expect(acc.count).toBe(0);
      opt.step(mean);
      disposeGrads(mean);
    }
    const out = p.snapshot();
    acc.dispose();
    opt.dispose();
    p.dispose();
    return out;
  }

  it('the accumulated update equals the large-batch update (equal and weighted micro-batches)', () => {
    const full = updateFrom('full');
    for (const mode of ['equal', 'weighted'] as const) {
      const acc = updateFrom(mode);
      for (const k of Object.keys(full)) expect(maxAbsDiff(acc[k]!, full[k]!), `${mode} ${k}`).toBeLessThan(2e-6);
    }
  });

  it('refuses micro-batches with different parameters and leaks nothing', () => {
    const acc = new GradientAccumulator();
    const before = tf.memory().numTensors;
    const a = tf.ones([2]);
    for (let i = 0; i < 10; i++) acc.add({ a });
    expect(tf.memory().numTensors).toBe(before + 2);
    expect(() => acc.add({ b: a })).toThrow(/micro-batch 11 has gradients for \[b\] but earlier ones had \[a\]/);
    const mean = acc.mean();
    expect(values(mean.get('a')!)).toEqual([1, 1]);
    disposeGrads(mean);
    a.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(() => acc.mean()).toThrow(/no gradients/);
  });

  it('takeSum hands over the weighted sum and its weight, then starts empty', () => {
    const acc = new GradientAccumulator();
    const before = tf.memory().numTensors;
    const a = tf.tensor([1, 2]);
    const b = tf.tensor([3, 6]);
    acc.add({ g: a }, 3);
    acc.add({ g: b }, 1);
    const { grads, weight } = acc.takeSum();
    expect(weight).toBe(4);
    expect(values(grads.get('g')!)).toEqual([6, 12]);
    expect(acc.count).toBe(0);
    disposeGrads(grads);
    tf.dispose([a, b]);
    acc.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('non-finite gradients', () => {
  it('throws naming the parameter and leaves everything unchanged by default', () => {
    const p = new MlpProblem(doc);
    const opt = createOptimizer({ name: 'adam', lr: 0.01 }, p.params);
    const before = p.snapshot();
    const { grads } = p.grads();
    const bad = new Map(grads);
    bad.set('b2', tf.tensor([Number.NaN, 1]));
    const live = tf.memory().numTensors;
    expect(() => opt.step(bad)).toThrow(NonFiniteGradientError);
    expect(() => opt.step(bad)).toThrow(/Non-finite gradient \(NaN or Inf\) in 1 parameter\(s\): b2/);
    expect(tf.memory().numTensors).toBe(live);
    expect(p.snapshot()).toEqual(before);
    expect(opt.stepCount).toBe(0);
    bad.get('b2')!.dispose();
    disposeGrads(grads);
    opt.dispose();
    p.dispose();
  });

  it('with nonFinite: "skip" skips the update and counts it', () => {
    const p = new MlpProblem(doc);
    const opt = createOptimizer({ name: 'sgd', lr: 0.1, nonFinite: 'skip' }, p.params);
    const before = p.snapshot();
    const inf = tf.fill([5], Number.POSITIVE_INFINITY);
    const result = opt.step({ b1: inf });
    expect(result.applied).toBe(false);
    expect([opt.skippedSteps, opt.stepCount]).toEqual([1, 0]);
    expect(p.snapshot()).toEqual(before);
    const sd = opt.stateDict();
    expect(sd.skippedSteps).toBe(1);
    inf.dispose();
    opt.dispose();
    p.dispose();
  });
});

describe('loss scaling hook', () => {
  it('scaled gradients give the unscaled update; overflow skips and backs off the scale', () => {
    const plain = new MlpProblem(doc);
    const scaled = new MlpProblem(doc);
    const optPlain = createOptimizer({ name: 'adamw', lr: 0.01 }, plain.params);
    const optScaled = createOptimizer({ name: 'adamw', lr: 0.01 }, scaled.params);
    const scaler = new DynamicLossScaler({ initScale: 1024, growthInterval: 2 });
    optScaled.lossScaler = scaler;
    for (let i = 0; i < 3; i++) {
      const g1 = plain.grads().grads;
      optPlain.step(g1);
      disposeGrads(g1);
      // Backward of the scaled loss: every gradient times the scale.
      const names = Object.keys(scaled.params);
      const { value, grads } = tf.variableGrads(
        () => scaler.scaleLoss(scaled.loss()),
        names.map((n) => scaled.params[n]!),
      );
      value.dispose();
      const g2 = new Map(names.map((n) => [n, grads[scaled.params[n]!.name]!] as const));
      optScaled.step(g2);
      disposeGrads(g2);
    }
    expect(scaler.scale).toBe(2048);
    const a = plain.snapshot();
    const b = scaled.snapshot();
    for (const k of Object.keys(a)) expect(maxAbsDiff(a[k]!, b[k]!)).toBeLessThan(1e-6);
    const inf = tf.fill([2], Number.POSITIVE_INFINITY);
    expect(optScaled.step({ b2: inf }).applied).toBe(false);
    expect(scaler.scale).toBe(1024);
    expect(optScaled.skippedSteps).toBe(1);
    const sd = optScaled.stateDict();
    expect(sd.lossScaler).toEqual({ scale: 1024, goodSteps: 0 });
    disposeStateDict(sd);
    inf.dispose();
    for (const o of [optPlain, optScaled]) o.dispose();
    plain.dispose();
    scaled.dispose();
  });
});
