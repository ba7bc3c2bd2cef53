import * as tf from '@tensorflow/tfjs-core';
import { defineOp } from '../op.js';
import { requireFloat } from './util.js';

/**
 * What an optimizer step needs from each gradient before it updates anything, in one pass:
 * Σx² (for the global norm that clipping uses) and a finiteness probe, Σ(x·0): 0 when every
 * element is finite, NaN when any is NaN or ±Inf. The probe is exact (a product with 0 never
 * overflows); finiteness read off Σx² would not be, since squares of finite values past
 * ~1.8e19 overflow float32.
 */
export const sumSquaresOp = defineOp<'x', Record<string, never>, never>({
  name: 'TesseraSumSquares',
  description: 'Σx² and a finiteness probe Σ(x·0) of a float tensor, as two scalars, in one pass.',
  inputs: ['x'],
  outputs: ['sumSquares', 'probe'],
  inferOutputs(inputs) {
    requireFloat('TesseraSumSquares', 'x', inputs.x);
    return [
      { shape: [], dtype: 'float32' },
      { shape: [], dtype: 'float32' },
    ];
  },
  reference({ x }) {
    // An empty tensor sums to 0; answered here because some backends (tfjs-backend-webgpu)
    // cannot run an elementwise kernel over zero elements.
    if (x!.size === 0) return [tf.scalar(0), tf.scalar(0)];
    return tf.tidy(() => [tf.sum(tf.mul(x!, x!)), tf.sum(tf.mul(x!, 0))]);
  },
});

/** Σx² and the finiteness probe Σ(x·0) of `x` (see sumSquaresOp). */
export function sumSquares(x: tf.Tensor): { sumSquares: tf.Scalar; probe: tf.Scalar } {
  const [s, p] = sumSquaresOp({ x });
  return { sumSquares: s as tf.Scalar, probe: p as tf.Scalar };
}
