import type { FusedKernelTable } from '@tessera/tensor-core';
import { asF32, type NativeContext, out, sizeOf } from './storage.js';

/** The AdamW update in C++ (float64 arithmetic, torch.optim.AdamW's order), and the gradient statistics a step reads first. */
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

    // One pass over the gradient instead of Mul + Sum twice (norm and finiteness).
    TesseraSumSquares: (args) => {
      const result = new Float32Array(2);
      addon.sumSquares(asF32(args, args.inputs.x), result);
      return [out(args, [], Float32Array.of(result[0]!)), out(args, [], Float32Array.of(result[1]!))];
    },
  } satisfies Partial<FusedKernelTable>;
}
