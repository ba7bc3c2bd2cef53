import type { FusedKernelTable } from '@tessera/tensor-core';
import { asF32, type NativeContext, out } from './storage.js';

/** GELU (erf and tanh) and its gradient, vectorised fp32 in C++. */
export function activationKernels({ addon, pool }: NativeContext) {
  return {
    TesseraGelu: (args) => {
      const x = args.inputs.x;
      const xv = asF32(args, x);
      const y = pool.alloc(xv.length);
      addon.gelu(xv, y, args.attrs.approximate === 'tanh');
      return out(args, x.shape, y);
    },

    TesseraGeluGrad: (args) => {
      const x = args.inputs.x;
      const xv = asF32(args, x);
      const dx = pool.alloc(xv.length);
      addon.geluGrad(xv, asF32(args, args.inputs.dy), dx, args.attrs.approximate === 'tanh');
      return out(args, x.shape, dx);
    },
  } satisfies Partial<FusedKernelTable>;
}
