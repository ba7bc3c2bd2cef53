import type { FusedKernelTable } from '@tessera/tensor-core';
import type { TensorInfo } from '@tessera/tensor-core/tfjs';
import { asF32, type NativeContext, out, sizeOf } from './storage.js';

function rowsOf(x: TensorInfo) {
  const C = x.shape[x.shape.length - 1]!;
  return { C, rows: C === 0 ? 0 : sizeOf(x.shape) / C };
}

/** Layer norm and RMS norm, forward and backward: float64 row statistics in C++. */
export function normKernels({ addon, pool }: NativeContext) {
  return {
    TesseraLayerNorm: (args) => {
      const { x, gamma, beta } = args.inputs;
      const { C, rows } = rowsOf(x);
      const y = pool.alloc(sizeOf(x.shape));
      if (rows > 0) {
        const b = beta ? asF32(args, beta) : null;
        addon.layerNorm(asF32(args, x), asF32(args, gamma), b, y, rows, C, args.attrs.eps);
      }
      return out(args, x.shape, y);
    },

    TesseraLayerNormGrad: (args) => {
      const { dy, x, gamma } = args.inputs;
      const { C, rows } = rowsOf(x);
      const dx = pool.alloc(sizeOf(x.shape));
      const dgamma = pool.zeros(C);
      const dbeta = pool.zeros(C);
      if (rows > 0) {
        const eps = args.attrs.eps;
        addon.layerNormGrad(asF32(args, x), asF32(args, dy), asF32(args, gamma), dx, dgamma, dbeta, rows, C, eps);
      }
      return [out(args, x.shape, dx), out(args, [C], dgamma), out(args, [C], dbeta)];
    },

    TesseraRmsNorm: (args) => {
      const { x, gamma } = args.inputs;
      const { C, rows } = rowsOf(x);
      const y = pool.alloc(sizeOf(x.shape));
      if (rows > 0) addon.rmsNorm(asF32(args, x), asF32(args, gamma), y, rows, C, args.attrs.eps);
      return out(args, x.shape, y);
    },

    TesseraRmsNormGrad: (args) => {
      const { dy, x, gamma } = args.inputs;
      const { C, rows } = rowsOf(x);
      const dx = pool.alloc(sizeOf(x.shape));
      const dgamma = pool.zeros(C);
      if (rows > 0) {
        const eps = args.attrs.eps;
        addon.rmsNormGrad(asF32(args, x), asF32(args, dy), asF32(args, gamma), dx, dgamma, rows, C, eps);
      }
      return [out(args, x.shape, dx), out(args, [C], dgamma)];
    },
  } satisfies Partial<FusedKernelTable>;
}
