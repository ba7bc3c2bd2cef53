import { expect } from 'vitest';
import type { tf } from '@tessera/tensor-core';

export interface Deviation {
  maxAbs: number;
  maxRel: number;
}

/**
 * Largest deviation of `actual` from `expected`: absolute, and relative to the
 * tensor's own scale (max |expected|), which is how fp32 rounding grows in a sum.
 */
export function deviation(actual: tf.Tensor, expected: tf.Tensor): Deviation {
  expect(actual.shape).toEqual(expected.shape);
  const a = actual.dataSync();
  const e = expected.dataSync();
  let scale = 0;
  for (let i = 0; i < e.length; i++) scale = Math.max(scale, Math.abs(e[i]!));
  let maxAbs = 0;
  for (let i = 0; i < e.length; i++) {
    const d = Math.abs(a[i]! - e[i]!);
    if (!(d <= maxAbs)) maxAbs = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return { maxAbs, maxRel: scale === 0 ? maxAbs : maxAbs / scale };
}

/**
 * Passes when the deviation is within `rtol` of the tensor's scale, or within `atol`
 * absolutely (for tensors that are mathematically ~0, such as d/dx of a 1-wide norm).
 */
export function expectClose(actual: tf.Tensor, expected: tf.Tensor, rtol: number, label = '', atol = 1e-7): Deviation {
  const d = deviation(actual, expected);
  if (d.maxAbs <= atol) return d;
  expect(
    d.maxRel,
    `${label}: max abs ${d.maxAbs.toExponential(2)}, rel ${d.maxRel.toExponential(2)}`,
  ).toBeLessThanOrEqual(rtol);
  return d;
}
