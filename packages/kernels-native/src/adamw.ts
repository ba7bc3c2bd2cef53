import type { FusedKernelTable } from '@tessera/tensor-core';
import { asF32, type NativeContext, out, sizeOf } from './storage.js';

/** The AdamW update in C++ (float64 arithmetic, torch.optim.AdamW's order). */
export function adamwKernels({ addon, pool }: NativeContext) {
  return {
    TesseraAdamW: (args) => {
      const a = args.attrs;
      const { param, grad, m, v } = args.inputs;
      const n = sizeOf(param.shape);
      const p1 = pool.alloc(n);
      const m1 = pool.alloc(n);
      const v1 = pool.alloc(n);
      addon.adamw(
        asF32(args, param),
        asF32(args, grad),
        asF32(args, m),
        asF32(args, v),
        p1,
        m1,
        v1,
        a.lr,
        a.beta1,
        a.beta2,
        a.eps,
        a.weightDecay,
        a.step,
      );
      const shape = param.shape;
      return [out(args, shape, p1), out(args, shape, m1), out(args, shape, v1)];
    },
  } satisfies Partial<FusedKernelTable>;
}
