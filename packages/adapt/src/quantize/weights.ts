import { roundHalfEven, tf } from '@tessera/tensor-core';
import type { Linear } from '@tessera/transformer';

const f32 = Math.fround;

/**
 * Per-output-channel symmetric int8 of a Linear's weight: scale[o] = max|W[o, :]| / 127,
 * q = round(W / scale) in [-127, 127] (-128 is never used, so |q| ≤ 127 as the kernels
 * assume). Returns q as int32 [out, in] (tfjs has no int8) and the scales [out].
 */
export function quantizeWeight(linear: Linear): { q: tf.Tensor2D; scales: tf.Tensor1D } {
  const N = linear.outFeatures;
  const K = linear.inFeatures;
  const w = linear.weight.value.dataSync() as Float32Array;
  const at =
    linear.layout === 'inOut' ? (o: number, k: number) => w[k * N + o]! : (o: number, k: number) => w[o * K + k]!;
  const q = new Int32Array(N * K);
  const scales = new Float32Array(N);
  for (let o = 0; o < N; o++) {
    let amax = 0;
    for (let k = 0; k < K; k++) amax = Math.max(amax, Math.abs(at(o, k)));
    if (!(amax > 0)) continue; // an all-zero channel: scale 0, q 0
    const inv = f32(127 / amax);
    for (let k = 0; k < K; k++) q[o * K + k] = Math.max(-127, Math.min(127, roundHalfEven(f32(at(o, k) * inv))));
    scales[o] = f32(amax / 127);
  }
  return { q: tf.tensor2d(q, [N, K], 'int32'), scales: tf.tensor1d(scales) };
}

/** q · scale in the layer's own layout ([out, in], or [in, out] for Conv1D). */
export function dequantizeWeight(linear: Linear, q: tf.Tensor, scales: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const w = tf.mul(tf.cast(q, 'float32'), tf.reshape(scales, [-1, 1])); // [out, in]
    return linear.layout === 'inOut' ? tf.transpose(w) : w;
  });
}
