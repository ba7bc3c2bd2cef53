import type { AttentionAttrs, FusedKernelTable } from '@tessera/tensor-core';
import type { TensorInfo } from '@tessera/tensor-core/tfjs';
import { asF32, type NativeContext, out, sizeOf, type WithBackend } from './storage.js';

/** What forward and backward share (backward adds dy). */
interface AttentionArgs extends WithBackend {
  inputs: { q: TensorInfo; k: TensorInfo; v: TensorInfo; mask?: TensorInfo; bias?: TensorInfo };
  attrs: AttentionAttrs;
}

/** Shapes and optional inputs of an attention call, as the addon takes them. */
function attentionSetup(args: AttentionArgs) {
  const { q, k, v, mask, bias } = args.inputs;
  const [B, H, Tq, D] = q.shape as [number, number, number, number];
  const Tk = k.shape[2]!;
  const Dv = v.shape[3]!;
  const biasShape = bias ? bias.shape : [1, 1, 1, 1];
  const dims = Int32Array.from([B, H, Tq, Tk, D, Dv, ...biasShape]);
  const scale = args.attrs.scale ?? 1 / Math.sqrt(D);
  return {
    q,
    k,
    v,
    bias,
    dims,
    scale,
    causal: args.attrs.causal,
    maskValues: mask ? asF32(args, mask) : null,
    biasValues: bias ? asF32(args, bias) : null,
    B,
    H,
    Tq,
    Tk,
    Dv,
  };
}

/** Attention forward and backward: per-head single-threaded sgemm, one head per pool task. */
export function attentionKernels({ addon, pool }: NativeContext) {
  return {
    TesseraAttention: (args) => {
      const s = attentionSetup(args);
      const y = pool.alloc(s.B * s.H * s.Tq * s.Dv);
      if (y.length) {
        addon.attention(
          asF32(args, s.q),
          asF32(args, s.k),
          asF32(args, s.v),
          y,
          s.dims,
          s.scale,
          s.causal,
          s.maskValues,
          s.biasValues,
        );
      }
      return out(args, [s.B, s.H, s.Tq, s.Dv], y);
    },

    TesseraAttentionGrad: (args) => {
      const s = attentionSetup(args);
      // With no query or no key the addon does not run, and every gradient is zero.
      const runs = s.B * s.H * s.Tq * s.Tk > 0;
      const grad = (n: number) => (runs ? pool.alloc(n) : pool.zeros(n));
      const dq = grad(sizeOf(s.q.shape));
      const dk = grad(sizeOf(s.k.shape));
      const dv = grad(sizeOf(s.v.shape));
      const dbiasShape = s.bias ? s.bias.shape : [s.B, s.H, s.Tq, s.Tk];
      const dbias = grad(sizeOf(dbiasShape));
      if (runs) {
        addon.attentionGrad(
          asF32(args, args.inputs.dy),
          asF32(args, s.q),
          asF32(args, s.k),
          asF32(args, s.v),
          dq,
          dk,
          dv,
          dbias,
          s.dims,
          s.scale,
          s.causal,
          s.maskValues,
          s.biasValues,
        );
      }
      return [
        out(args, s.q.shape, dq),
        out(args, s.k.shape, dk),
        out(args, s.v.shape, dv),
        out(args, dbiasShape, dbias),
      ];
    },
  } satisfies Partial<FusedKernelTable>;
}
