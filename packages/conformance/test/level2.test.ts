import { beforeAll, describe, expect, it } from 'vitest';
import { registerCpuDerivedBackend } from '@tessera/kernels-cpu';
import { registry, tf, useBackend } from '@tessera/tensor-core';
import { type ConformanceResult, level2Cases, runConformance } from '@tessera/conformance';

// Two cpu-derived backends: "cpucopy" runs exactly cpu's kernels, so every error must be 0;
// "cpucompose" has no fused kernels, so each fused op runs its reference composition
// (float32 tf ops) against cpu's float64-accumulating kernels: a real cross-implementation
// check of the stated tolerances.
let copy: ConformanceResult;
let compose: ConformanceResult;

beforeAll(async () => {
  await useBackend('cpu', { log: () => {} });
  registerCpuDerivedBackend('cpucopy');
  registerCpuDerivedBackend('cpucompose', { withFusedKernels: false });
  copy = await runConformance({ backend: 'cpucopy', levels: [2] });
  compose = await runConformance({ backend: 'cpucompose', levels: [2] });
});

describe('level 2: op and gradient conformance', () => {
  it('covers the kernels GPT/BERT/T5 training runs', () => {
    const groups = new Set(level2Cases().map((c) => c.group));
    for (const g of [
      'matMul',
      'gather',
      'softmax',
      'logSoftmax',
      'sum',
      'mean',
      'max',
      'logSumExp',
      'add',
      'mul',
      'div',
      'exp',
      'log',
      'tanh',
      'erf',
      'rsqrt',
      'reshape',
      'transpose',
      'slice',
      'concat',
      'where',
      'cast',
      'oneHot',
      'int32 floorDiv',
    ]) {
      expect(groups, g).toContain(g);
    }
    const names = level2Cases().map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('covers every registered fused op, forward and (through its gradient) backward', () => {
    const cases = level2Cases();
    for (const op of registry.op.list()) {
      const forward = op.endsWith('Grad') ? op.slice(0, -'Grad'.length) : op;
      const covering = cases.filter((c) => c.fused?.name === forward && (op === forward || c.grad?.length));
      expect(covering.length, `${op} has no conformance case`).toBeGreaterThan(0);
    }
  });

  it('each case reports errors, a stated tolerance and a message', () => {
    const l2 = copy.levels[0]!;
    expect(l2.level).toBe(2);
    expect(l2.cases.length).toBe(level2Cases().length);
    for (const c of l2.cases) {
      expect(c.tolerance?.why.length, c.name).toBeGreaterThan(10);
      expect(typeof c.maxAbsErr).toBe('number');
      expect(typeof c.maxRelErr).toBe('number');
      expect(c.message).toMatch(/match cpu/);
    }
  });

  it('a backend running the very same kernels passes with zero error', () => {
    expect(copy.pass).toBe(true);
    expect(Math.max(...copy.levels[0]!.cases.map((c) => c.maxAbsErr!))).toBe(0);
    expect(copy.levels[0]!.cases.find((c) => c.name.startsWith('attention/'))?.kernel).toBe('own');
  });

  it('reference compositions pass against the float64 kernels within the stated tolerances', () => {
    const failures = compose.levels[0]!.cases.filter((c) => !c.pass);
    expect(failures.map((c) => `${c.name}: ${c.message}`)).toEqual([]);
    const attention = compose.levels[0]!.cases.filter((c) => c.group === 'attention');
    expect(attention.every((c) => c.kernel === 'reference-composition')).toBe(true);
    // Not trivially zero: the compositions really differ in rounding.
    expect(Math.max(...attention.map((c) => c.maxAbsErr!))).toBeGreaterThan(0);
  });

  it('leaves the caller on its backend and leaks nothing itself', async () => {
    expect(tf.getBackend()).toBe('cpu');
    const before = tf.memory().numTensors;
    await runConformance({ backend: 'cpucopy', levels: [2], filter: 'attention/' });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('filters by substring, RegExp or predicate', async () => {
    const sub = await runConformance({ backend: 'cpucopy', levels: [2], filter: 'LAYERNORM' });
    expect(sub.levels[0]!.cases.length).toBeGreaterThan(4);
    expect(sub.levels[0]!.cases.every((c) => c.group === 'layerNorm')).toBe(true);
    const re = await runConformance({ backend: 'cpucopy', levels: [2], filter: /^gelu tanh\// });
    expect(re.levels[0]!.cases.length).toBe(4);
    const none = await runConformance({ backend: 'cpucopy', levels: [2], filter: () => false });
    expect(none.pass).toBe(false);
    expect(none.levels[0]!.cases[0]!.message).toMatch(/no level-2 case matched/);
  });

  it('a caller may override a tolerance, and the report says so', async () => {
    const r = await runConformance({
      backend: 'cpucopy',
      levels: [2],
      filter: 'softmax/[3,7]',
      tolerances: { softmax: { rtol: 0.5 } },
    });
    const c = r.levels[0]!.cases.find((x) => x.group === 'softmax')!;
    expect(c.tolerance?.rtol).toBe(0.5);
    expect(c.tolerance?.why).toMatch(/overridden by the caller/);
  });

  it('names the known backends when the backend does not exist', async () => {
    await expect(runConformance({ backend: 'nosuch', levels: [2] })).rejects.toThrow(/Known backends: .*cpu/);
  });
});
