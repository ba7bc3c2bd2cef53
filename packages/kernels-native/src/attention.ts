import type { AttentionAttrs, FusedKernelArgs, FusedKernelTable } from '@tessera/tensor-core';
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

/**
 * The packed problem: q, k, v are the column blocks [0, E), [E, 2E), [2E, 3E) of qkv [B, T, 3E]
 * and heads are column ranges within them, so the addon reads them in place (row stride 3E)
 * and writes heads merged, [B, T, E] (row stride E): no split, transposes or concat.
 */
function packedSetup(args: FusedKernelArgs<'TesseraPackedAttention'>) {
  const { qkv, mask } = args.inputs;
  const [B, T, threeE] = qkv.shape as [number, number, number];
  const E = threeE / 3;
  const H = args.attrs.nHead;
  const D = E / H;
  const view = (offset: number) => [offset, T * threeE, D, threeE];
  // q, k, v, out: offset, batch, head, row (native/kernels.h HeadLayout).
  const layouts = Float64Array.from([...view(0), ...view(E), ...view(2 * E), 0, T * E, D, E]);
  return {
    B,
    T,
    E,
    dims: Int32Array.from([B, H, T, T, D, D, 1, 1, 1, 1]),
    scale: args.attrs.scale ?? 1 / Math.sqrt(D),
    maskValues: mask ? asF32(args, mask) : null,
    layouts,
  };
}

/** Sequence-major q, k, v [B, T, nHead·headSize]: heads are column ranges of each row. */
function seqSetup(args: FusedKernelArgs<'TesseraSeqAttention'>) {
  const { q, k, v, mask, bias } = args.inputs;
  const [B, Tq, E] = q.shape as [number, number, number];
  const Tk = k.shape[1]!;
  const Ev = v.shape[2]!;
  const H = args.attrs.nHead;
  const [D, Dv] = [E / H, Ev / H];
  const biasShape = bias ? bias.shape : [1, 1, 1, 1];
  const view = (T: number, width: number, headSize: number) => [0, T * width, headSize, width];
  // q, k, v, out: offset, batch, head, row (native/kernels.h HeadLayout).
  const layouts = Float64Array.from([...view(Tq, E, D), ...view(Tk, E, D), ...view(Tk, Ev, Dv), ...view(Tq, Ev, Dv)]);
  return {
    B,
    H,
    Tq,
    Tk,
    Ev,
    bias,
    dims: Int32Array.from([B, H, Tq, Tk, D, Dv, ...biasShape]),
    scale: args.attrs.scale ?? 1 / Math.sqrt(D),
    maskValues: mask ? asF32(args, mask) : null,
    biasValues: bias ? asF32(args, bias) : null,
    layouts,
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

    TesseraPackedAttention: (args) => {
      const s = packedSetup(args);
      const qkv = asF32(args, args.inputs.qkv);
      const y = pool.alloc(s.B * s.T * s.E);
      if (y.length) {
        addon.attention(qkv, qkv, qkv, y, s.dims, s.scale, args.attrs.causal, s.maskValues, null, s.layouts);
      }
      return out(args, [s.B, s.T, s.E], y); // [B, T, E]
    },

    TesseraPackedAttentionGrad: (args) => {
      const s = packedSetup(args);
      const qkv = asF32(args, args.inputs.qkv);
      const runs = s.B * s.T > 0 && s.E > 0;
      // dq, dk and dv are the three column blocks of one buffer; the addon writes all of it.
      const dqkv = runs ? pool.alloc(3 * s.B * s.T * s.E) : pool.zeros(3 * s.B * s.T * s.E);
      if (runs) {
        // dScores scratch: [B, H, T, T] (the addon's dbias output, unused here).
        const scratch = pool.alloc(s.dims[0]! * s.dims[1]! * s.T * s.T);
        addon.attentionGrad(
          asF32(args, args.inputs.dy),
          qkv,
          qkv,
          qkv,
          dqkv,
          dqkv,
          dqkv,
          scratch,
          s.dims,
          s.scale,
          args.attrs.causal,
          s.maskValues,
          null,
          s.layouts,
        );
        pool.release(scratch);
      }
      return out(args, args.inputs.qkv.shape, dqkv);
    },

    TesseraSeqAttention: (args) => {
      const s = seqSetup(args);
      const { q, k, v } = args.inputs;
      const y = pool.alloc(s.B * s.Tq * s.Ev);
      if (y.length) {
        addon.attention(
          asF32(args, q),
          asF32(args, k),
          asF32(args, v),
          y,
          s.dims,
          s.scale,
          args.attrs.causal,
          s.maskValues,
          s.biasValues,
          s.layouts,
        );
      }
      return out(args, [s.B, s.Tq, s.Ev], y); // [B, Tq, nHead·Dv]
    },

    TesseraSeqAttentionGrad: (args) => {
      const s = seqSetup(args);
      const { q, k, v, dy } = args.inputs;
      const runs = s.B * s.H * s.Tq * s.Tk > 0;
      const grad = (n: number) => (runs ? pool.alloc(n) : pool.zeros(n));
      const dq = grad(sizeOf(q.shape));
      const dk = grad(sizeOf(k.shape));
      const dv = grad(sizeOf(v.shape));
      const dbiasShape = s.bias ? s.bias.shape : [s.B, s.H, s.Tq, s.Tk];
      const dbias = grad(sizeOf(dbiasShape));
      if (runs) {
        addon.attentionGrad(
          asF32(args, dy),
          asF32(args, q),
          asF32(args, k),
          asF32(args, v),
          dq,
          dk,
          dv,
          dbias,
          s.dims,
          s.scale,
          args.attrs.causal,
          s.maskValues,
          s.biasValues,
          s.layouts,
        );
      }
      return [out(args, q.shape, dq), out(args, k.shape, dk), out(args, v.shape, dv), out(args, dbiasShape, dbias)];
    },
  } satisfies Partial<FusedKernelTable>;
}
