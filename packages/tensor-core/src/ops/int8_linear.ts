import * as tf from '@tensorflow/tfjs-core';
import { defineOp, OpInputError, type TensorSpec } from '../op.js';
import { requireFloat } from './util.js';

/**
 * Dynamic int8 linear, the arithmetic every kernel must reproduce bit for bit:
 *
 *   per row r of x:  amax = max|x[r, :]|, sx = f32(amax / 127), inv = f32(127 / amax)
 *                    q[r, k] = clamp(roundHalfEven(f32(x[r, k] · inv)), -127, 127)   (amax 0: sx = 0, q = 0)
 *   acc[r, o] = Σ_k q[r, k] · w[o, k]        exact in int32 (|acc| ≤ 127² · K, K ≤ INT8_LINEAR_MAX_K)
 *   y[r, o]   = f32(f32(acc) · f32(sx · scales[o]))   then  f32(y + bias[o])
 *
 * Activations are symmetric s8 ([-127, 127], no zero point): the integer result is then a
 * plain s8·s8 dot product that every instruction set reaches exactly (VNNI's u8·s8 by
 * shifting q by +128 and subtracting 128·Σ_k w[o, k]; AVX2 by |q| · sign(w, q), whose pair
 * sums stay ≤ 2·127² < 2^15), and no per-row zero-point term enters the epilogue.
 * tfjs has no int8 dtype: the weight is an int32 tensor holding values in [-127, 127].
 */
export const INT8_LINEAR_MAX_K = Math.floor((2 ** 31 - 1) / (127 * 127));

/** Round half to even: the rounding of x86 conversions, nearbyint and tf.round, so every kernel rounds alike. */
export function roundHalfEven(v: number): number {
  const r = Math.round(v); // half rounds up (towards +∞)
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The reference composition is the fp32 fallback a backend without an int8 kernel runs
 * (webgpu, cuda): the quantized activations and the int8 weight as float32 through the
 * backend's own matmul, the scales applied after. It equals the integer kernels exactly
 * while the float32 partial sums stay below 2^24 and within float32 rounding past that.
 */
export const int8LinearOp = defineOp<'x' | 'weight' | 'scales' | 'bias', Record<string, never>, 'bias'>({
  name: 'TesseraInt8Linear',
  description:
    'y = dequant(q(x) · Wᵀ) + b: x float32 [rows, in] quantized per row (symmetric int8), W int8 [out, in] with float32 per-output scales.',
  inputs: ['x', 'weight', 'scales', 'bias'],
  optionalInputs: ['bias'],
  inferOutputs(inputs) {
    const op = 'TesseraInt8Linear';
    const x = requireFloat(op, 'x', inputs.x);
    const w = inputs.weight as TensorSpec;
    if (x.shape.length !== 2)
      throw new OpInputError(`${op}: x must be [rows, in]; got [${x.shape.join(', ')}]. Reshape it first.`);
    if (w.dtype !== 'int32' || w.shape.length !== 2)
      throw new OpInputError(
        `${op}: weight must be an int32 [out, in] tensor of int8 values; got ${w.dtype} [${w.shape.join(', ')}].`,
      );
    const [rows, K] = x.shape as [number, number];
    const [N, wK] = w.shape as [number, number];
    if (wK !== K) throw new OpInputError(`${op}: x has ${K} features but weight [${N}, ${wK}] takes ${wK}.`);
    if (K > INT8_LINEAR_MAX_K)
      throw new OpInputError(
        `${op}: in = ${K} exceeds ${INT8_LINEAR_MAX_K}, past which int32 accumulation can overflow.`,
      );
    for (const name of ['scales', 'bias'] as const) {
      const t = inputs[name];
      if (!t) continue;
      requireFloat(op, name, t);
      if (t.shape.length !== 1 || t.shape[0] !== N)
        throw new OpInputError(`${op}: ${name} must be [${N}] (one per output); got [${t.shape.join(', ')}].`);
    }
    return [{ shape: [rows, N], dtype: 'float32' }];
  },
  reference({ x, weight, scales, bias }) {
    return tf.tidy(() => {
      const amax = tf.max(tf.abs(x!), 1, true); // [rows, 1]
      const nonzero = tf.greater(amax, 0);
      const sx = tf.div(amax, 127); // [rows, 1]
      const inv = tf.where(nonzero, tf.div(tf.scalar(127), tf.maximum(amax, 1e-30)), tf.zerosLike(amax));
      const q = tf.clipByValue(tf.round(tf.mul(x!, inv)), -127, 127); // [rows, in], integer-valued
      const acc = tf.matMul(q, tf.cast(weight!, 'float32'), false, true); // [rows, out]
      const y = tf.mul(acc, tf.mul(sx, scales!)); // [rows, out]
      return bias ? tf.add(y, bias) : y;
    });
  },
});

/** The int8 linear of `x` [rows, in] (see int8LinearOp): [rows, out]. Inference only (no gradient). */
export function int8Linear(x: tf.Tensor, weight: tf.Tensor, scales: tf.Tensor, bias?: tf.Tensor): tf.Tensor2D {
  return int8LinearOp({ x, weight, scales, ...(bias ? { bias } : {}) })[0] as tf.Tensor2D;
}
