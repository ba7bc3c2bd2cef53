import { tf, useBackend } from '@tessera/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { nativePool } from '@tessera/kernels-native';
import { createRequire } from 'node:module';
import type { NativeAddon } from '../src/addon.js';
import { BufferPool } from '../src/pool.js';
// @ts-expect-error: the bench model is plain ESM JavaScript without declarations.
import { AdamW, GPT, gptTrainStep, randomBatch } from '../bench/gpt.mjs';

// The pool recycles kernel outputs; these tests try every way a recycled buffer could still
// be seen (a read-out array, a view made by another tensor) and check nothing changes under it.

const n = 64 * 64; // above the pool's minimum length
const iota = (len: number, start = 0) => Float32Array.from({ length: len }, (_, i) => start + i);

/** A pooled kernel output (Add runs natively) with known values start, start+1, ... */
const pooledTensor = (start: number) => {
  const a = tf.tensor2d(iota(n, start), [64, 64]);
  const zero = tf.zerosLike(a);
  const y = tf.add(a, zero);
  a.dispose();
  zero.dispose();
  return y;
};

/** Runs same-sized kernels that would reuse any buffer released to the pool, filled with -1. */
const churn = () => {
  for (let i = 0; i < 4; i++) {
    tf.tidy(() => {
      const m = tf.fill([64, 64], -1);
      tf.add(m, tf.zerosLike(m));
      tf.mul(m, m);
    });
  }
};

beforeAll(async () => {
  await useBackend('native', { log: () => {} });
  nativePool().clear();
});

describe('output buffer pool', () => {
  it('reuses the buffers of disposed outputs', () => {
    nativePool().clear();
    for (let i = 0; i < 10; i++) pooledTensor(0).dispose();
    const s = nativePool().stats();
    expect(s.hits).toBeGreaterThanOrEqual(9);
    expect(s.pooledArrays).toBeGreaterThan(0);
  });

  it('starts its arrays on a 64-byte boundary (views into a slightly longer buffer), and makes new ones with its create function', () => {
    const addon = createRequire(import.meta.url)('../dist/native/tessera_native.node') as NativeAddon;
    const y = pooledTensor(0);
    const values = y.dataSync() as Float32Array;
    // The view's offset is exactly the distance from the buffer's data to its first boundary.
    expect(values.byteOffset).toBe(addon.alignmentSkip(values.buffer as ArrayBuffer));
    expect(values.byteOffset % 16).toBe(0);
    expect(Array.from(values.subarray(0, 3))).toEqual([0, 1, 2]);
    y.dispose();
    const made: number[] = [];
    const pool = new BufferPool(1 << 20, (length) => {
      made.push(length);
      return new Float32Array(length);
    });
    pool.release(pool.alloc(n));
    pool.alloc(n); // served from the pool: not made again
    pool.alloc(10); // below the pooled length: a plain array
    expect(made).toEqual([n]);
  });

  it('never recycles an array handed out by dataSync() or data()', async () => {
    const y1 = pooledTensor(0);
    const synced = y1.dataSync() as Float32Array;
    y1.dispose();
    const y2 = pooledTensor(100);
    const read = (await y2.data()) as Float32Array;
    y2.dispose();
    churn();
    expect(synced).toEqual(iota(n, 0));
    expect(read).toEqual(iota(n, 100));
  });

  it('keeps views made by other kernels valid after their input is disposed', () => {
    // Each view gets its own source, disposed at once: kernels that share the dataId
    // (reshape, clone) keep it alive by refcount, those that view the buffer
    // (tfjs-backend-cpu's Slice under unstack/stridedSlice) must mark it escaped.
    const make: Record<string, [(y: tf.Tensor) => tf.Tensor, number, number]> = {
      slice: [(y) => tf.slice(y, [3, 0], [5, 64]), 3, 8],
      stridedSlice: [(y) => tf.stridedSlice(y, [1, 0], [9, 64], [1, 1]), 1, 9],
      unstack: [(y) => tf.unstack(y)[7]!, 7, 8],
      split: [(y) => tf.split(y, 4, 0)[2]!, 32, 48],
      reshape: [(y) => tf.reshape(y, [n]), 0, 64],
      squeeze: [(y) => tf.squeeze(tf.expandDims(y, 0)), 0, 64],
      clone: [(y) => tf.clone(y), 0, 64],
      cast: [(y) => tf.cast(y, 'float32'), 0, 64],
    };
    // Distinct contents per source: the next source may well get the previous one's buffer.
    const views = Object.entries(make).map(([name, [view, r0, r1]], k) => {
      const y = pooledTensor(10_000 * k);
      const t = tf.tidy(() => view(y));
      y.dispose();
      return { name, t, expected: iota(n, 10_000 * k).slice(r0 * 64, r1 * 64) };
    });
    churn();
    for (const { name, t, expected } of views) expect(t.dataSync(), name).toEqual(expected);
    tf.dispose(views.map((v) => v.t));
  });

  it('serves nearly every allocation of a training step from the pool, and stays bounded', () => {
    const cfg = { nLayer: 2, nHead: 2, nEmbd: 64, blockSize: 32, vocabSize: 65 };
    const model = new GPT(cfg, 'pool-test');
    const optimizer = new AdamW(model);
    const { idx, targets } = randomBatch(cfg, 4, 'pool-test-batch');
    try {
      gptTrainStep(model, optimizer, idx, targets);
      nativePool().clear();
      gptTrainStep(model, optimizer, idx, targets); // fills the pool
      const afterOne = nativePool().stats().pooledBytes;
      const tensors = tf.memory().numTensors;
      for (let i = 0; i < 20; i++) gptTrainStep(model, optimizer, idx, targets);
      const s = nativePool().stats();
      expect(s.hits / (s.hits + s.misses)).toBeGreaterThan(0.9);
      // Same shapes every step: the pool does not grow after the first step.
      expect(s.pooledBytes).toBeLessThanOrEqual(afterOne);
      expect(tf.memory().numTensors).toBe(tensors);
    } finally {
      idx.dispose();
      targets.dispose();
      optimizer.dispose();
      model.dispose();
    }
  });

  it('at the cap, evicts the least recently used sizes so a second model still reuses its buffers', () => {
    const kib = 1024 / 4; // floats per KiB
    const pool = new BufferPool(64 * 1024); // 64 KiB
    // "Model 1": two sizes that fill the cap.
    const a = [pool.alloc(16 * kib), pool.alloc(16 * kib), pool.alloc(32 * kib)];
    for (const x of a) pool.release(x);
    expect(pool.stats().pooledBytes).toBe(64 * 1024);
    pool.release(pool.alloc(16 * kib)); // 16 KiB arrays are now more recent than the 32 KiB one
    // "Model 2": a new size pushes out the least recently used (32 KiB) first, then 16 KiB ones.
    const b = [pool.alloc(24 * kib), pool.alloc(24 * kib)];
    for (const x of b) pool.release(x);
    let s = pool.stats();
    expect(s.pooledBytes).toBeLessThanOrEqual(64 * 1024);
    expect(s.evictions).toBe(2); // the 32 KiB array, then one 16 KiB array for the second 24 KiB
    // Its steady state now hits every time, as a fresh model's would with an empty pool.
    const before = s.misses;
    for (let step = 0; step < 3; step++) {
      const c = [pool.alloc(24 * kib), pool.alloc(24 * kib)];
      for (const x of c) pool.release(x);
    }
    s = pool.stats();
    expect(s.misses).toBe(before);
    expect(s.pooledBytes).toBeLessThanOrEqual(64 * 1024);
  });

  it('a pool full of one size keeps turning over, and an array above the cap is not kept', () => {
    const pool = new BufferPool(8 * 4096 * 4);
    const xs = Array.from({ length: 8 }, () => pool.alloc(4096));
    for (const x of xs) pool.release(x);
    const extra = pool.alloc(4096);
    const fresh = new BufferPool(8 * 4096 * 4);
    pool.release(extra);
    expect(pool.stats().pooledArrays).toBe(8);
    const big = fresh.alloc(9 * 4096);
    fresh.release(big);
    expect(fresh.stats().pooledBytes).toBe(0);
  });

  it('keeps nothing with a cap of 0, and rejects a bad cap', () => {
    nativePool().setCapMB(0);
    try {
      for (let i = 0; i < 3; i++) pooledTensor(0).dispose();
      expect(nativePool().stats().pooledBytes).toBe(0);
      expect(() => nativePool().setCapMB(-1)).toThrow(/MiB >= 0/);
    } finally {
      nativePool().setCapMB(1024);
    }
  });
});
