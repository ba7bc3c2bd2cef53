import { allFinite, allFiniteAsync, finiteProbe } from '@tessera/optim';
import '@tessera/kernels-cpu';
import { tf } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';

describe('the non-finite check', () => {
  it('flags NaN, +Inf and -Inf, never huge finite values (no overflow), and leaks nothing', async () => {
    const before = tf.memory().numTensors;
    const huge = tf.fill([1000], 3e38);
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const g = new Map([
        ['a', tf.ones([3, 4])],
        ['b', tf.tensor1d([1, bad, 2])],
      ]);
      expect(allFinite(g)).toBe(false);
      expect(await allFiniteAsync(g)).toBe(false);
      tf.dispose([...g.values()]);
    }
    const ok = new Map([
      ['huge', huge],
      ['neg', tf.fill([7], -3e38)],
    ]);
    expect(allFinite(ok)).toBe(true);
    expect(await allFiniteAsync(ok)).toBe(true);
    expect(allFinite(new Map())).toBe(true);
    const p = finiteProbe([]);
    expect(p.dataSync()[0]).toBe(0);
    tf.dispose([p, ...ok.values()]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
