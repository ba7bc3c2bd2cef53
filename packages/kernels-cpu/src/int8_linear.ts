import { type FusedKernelTable, roundHalfEven } from '@tessera/tensor-core';
import { output, values } from './access.js';

const f32 = Math.fround;

/**
 * One row of x quantized to symmetric int8 (see int8LinearOp): q into `q` at `at`, returns
 * sx. Every product and quotient is rounded to float32 as the native kernels compute it; a
 * float64 quotient of two float32 values rounds to the same float32 as a float32 division.
 */
export function quantizeRowInt8(x: ArrayLike<number>, base: number, K: number, q: Int8Array, at: number): number {
  let amax = 0;
  for (let k = 0; k < K; k++) amax = Math.max(amax, Math.abs(x[base + k]!));
  if (!(amax > 0)) {
    q.fill(0, at, at + K);
    return 0;
  }
  const inv = f32(127 / amax);
  for (let k = 0; k < K; k++) q[at + k] = Math.max(-127, Math.min(127, roundHalfEven(f32(x[base + k]! * inv))));
  return f32(amax / 127);
}

/** TesseraInt8Linear: integer-exact accumulation (Σ of s8·s8 products < 2^31), float32 epilogue. */
export const int8LinearKernels = {
  TesseraInt8Linear: ({ inputs, backend }) => {
    const { x, weight, scales, bias } = inputs;
    const [rows, K] = x.shape as [number, number];
    const N = weight.shape[0]!;
    const xs = values(backend, x);
    const w = values(backend, weight);
    const sw = values(backend, scales);
    const b = bias ? values(backend, bias) : undefined;
    const q = new Int8Array(K);
    const out = new Float32Array(rows * N);
    for (let r = 0; r < rows; r++) {
      const sx = quantizeRowInt8(xs, r * K, K, q, 0);
      for (let o = 0; o < N; o++) {
        let acc = 0;
        const wb = o * K;
        for (let k = 0; k < K; k++) acc += q[k]! * w[wb + k]!;
        let y = f32(f32(acc) * f32(sx * sw[o]!));
        if (b) y = f32(y + b[o]!);
        out[r * N + o] = y;
      }
    }
    return output(backend, [rows, N], out);
  },
} satisfies Partial<FusedKernelTable>;
