import { describe, expect, it } from 'vitest';
import { Rng, dropout, tf } from '@tessera/tensor-core';
import '@tessera/kernels-cpu';

describe('Rng', () => {
  it('the same seed gives the same stream; another seed another', () => {
    const draw = (seed: number | string) => {
      const r = new Rng(seed);
      return Array.from({ length: 5 }, () => r.nextUint32());
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
    expect(draw('42')).not.toEqual(draw(42));
  });

  it('uniform, normal and int have the right ranges and moments', () => {
    const r = new Rng(7);
    const n = 20000;
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < n; i++) {
      const u = r.uniform();
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
      const z = r.normal();
      sum += z;
      sq += z * z;
    }
    expect(Math.abs(sum / n)).toBeLessThan(0.03);
    expect(Math.abs(sq / n - 1)).toBeLessThan(0.05);
    const counts = new Array(5).fill(0);
    for (let i = 0; i < 5000; i++) counts[r.int(5)]++;
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(150);
    expect(() => r.int(0)).toThrow(/positive integer/);
  });

  it('state save/restore continues the exact stream', () => {
    const r = new Rng(9);
    for (let i = 0; i < 10; i++) r.uniform();
    const state = JSON.parse(JSON.stringify(r.getState()));
    const expected = Array.from({ length: 8 }, () => r.uniform());
    const resumed = new Rng(0);
    resumed.setState(state);
    expect(Array.from({ length: 8 }, () => resumed.uniform())).toEqual(expected);
    expect(() => resumed.setState({ s: [1, 2] } as never)).toThrow(/four uint32/);
  });

  it('forks are independent and reproducible', () => {
    const a = new Rng(1).fork('init');
    const b = new Rng(1).fork('init');
    const c = new Rng(1).fork('data');
    expect(a.uniform()).toBe(b.uniform());
    expect(new Rng(1).fork('init').uniform()).not.toBe(c.uniform());
  });

  it('dropout: identity in eval, inverted scaling in train, same mask for the same seed', () => {
    const x = tf.ones([1000]);
    expect(dropout(x, 0.5, new Rng(1), false)).toBe(x);
    const y1 = dropout(x, 0.25, new Rng(1), true);
    const y2 = dropout(x, 0.25, new Rng(1), true);
    const values = Array.from(y1.dataSync());
    expect(values).toEqual(Array.from(y2.dataSync()));
    const kept = values.filter((v) => v !== 0);
    for (const v of kept) expect(v).toBeCloseTo(1 / 0.75, 6);
    expect(Math.abs(kept.length / 1000 - 0.75)).toBeLessThan(0.05);
    expect(() => dropout(x, 1, new Rng(1), true)).toThrow(/\[0, 1\)/);
    tf.dispose([x, y1, y2]);
  });
});
