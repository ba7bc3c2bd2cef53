import type { FusedKernelArgs, FusedKernelTable } from '@tessera/tensor-core';
import type { TensorInfo } from '@tessera/tensor-core/tfjs';
import { asF32, type NativeContext, out, sizeOf, type WithBackend } from './storage.js';

/**
 * One attention problem as the addon takes it: sizes, where each head of q, k, v and the
 * output lives (native/kernels.h HeadLayout: offset, batch, head, row — q, k, v, out; null for
 * contiguous [B, H, T, D]), and the optional mask and bias.
 */
interface Problem {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  sizes: { B: number; H: number; Tq: number; Tk: number; D: number; Dv: number };
  dims: Int32Array;
  scale: number;
  causal: boolean;
  mask: Float32Array | null;
  bias: Float32Array | null;
  biasShape: number[] | undefined;
  layouts: Float64Array | undefined;
}

interface ProblemInputs {
  q: TensorInfo;
  k: TensorInfo;
  v: TensorInfo;
  mask?: TensorInfo | undefined;
  bias?: TensorInfo | undefined;
}

function problem(
  args: WithBackend,
  inputs: ProblemInputs,
  sizes: Problem['sizes'],
  attrs: { causal: boolean; scale: number | null },
  layouts?: number[],
): Problem {
  const { B, H, Tq, Tk, D, Dv } = sizes;
  const biasShape = inputs.bias?.shape;
  return {
    q: asF32(args, inputs.q),
    k: asF32(args, inputs.k),
    v: asF32(args, inputs.v),
    sizes,
    dims: Int32Array.from([B, H, Tq, Tk, D, Dv, ...(biasShape ?? [1, 1, 1, 1])]),
    scale: attrs.scale ?? 1 / Math.sqrt(D),
    causal: attrs.causal,
    mask: inputs.mask ? asF32(args, inputs.mask) : null,
    bias: inputs.bias ? asF32(args, inputs.bias) : null,
    biasShape,
    layouts: layouts ? Float64Array.from(layouts) : undefined,
  };
}

/** Heads of a [B, T, width] tensor at column `offset`: head h at columns offset + h·headSize. */
const rowsOf = (offset: number, T: number, width: number, headSize: number) => [offset, T * width, headSize, width];

/** Head-major q, k, v [B, H, T, D] (contiguous). */
function headsProblem(args: FusedKernelArgs<'TesseraAttention'>): Problem {
  const { q, k, v } = args.inputs;
  const [B, H, Tq, D] = q.shape as [number, number, number, number];
  return problem(args, args.inputs, { B, H, Tq, Tk: k.shape[2]!, D, Dv: v.shape[3]! }, args.attrs);
}

/**
 * The packed problem: q, k, v are the column blocks [0, E), [E, 2E), [2E, 3E) of qkv [B, T, 3E],
 * read in place (row stride 3E), heads written merged [B, T, E]: no split, transposes or concat.
 */
function packedProblem(args: FusedKernelArgs<'TesseraPackedAttention'>): Problem {
  const { qkv, mask } = args.inputs;
  const [B, T, threeE] = qkv.shape as [number, number, number];
  const E = threeE / 3;
  const H = args.attrs.nHead;
  const D = E / H;
  const layouts = [...rowsOf(0, T, threeE, D), ...rowsOf(E, T, threeE, D), ...rowsOf(2 * E, T, threeE, D)];
  return problem(args, { q: qkv, k: qkv, v: qkv, mask }, { B, H, Tq: T, Tk: T, D, Dv: D }, args.attrs, [
    ...layouts,
    ...rowsOf(0, T, E, D),
  ]);
}

/** Sequence-major q, k, v [B, T, nHead·headSize] (projection outputs): heads are column ranges of each row. */
function seqProblem(args: FusedKernelArgs<'TesseraSeqAttention'>): Problem {
  const { q, k, v } = args.inputs;
  const [B, Tq, E] = q.shape as [number, number, number];
  const Tk = k.shape[1]!;
  const Ev = v.shape[2]!;
  const H = args.attrs.nHead;
  const [D, Dv] = [E / H, Ev / H];
  const layouts = [...rowsOf(0, Tq, E, D), ...rowsOf(0, Tk, E, D), ...rowsOf(0, Tk, Ev, Dv), ...rowsOf(0, Tq, Ev, Dv)];
  return problem(args, args.inputs, { B, H, Tq, Tk, D, Dv }, args.attrs, layouts);
}

/** Attention forward and backward: per-head single-threaded sgemm, one head per pool task. */
export function attentionKernels({ addon, pool }: NativeContext) {
  const forward = (args: WithBackend, p: Problem, outShape: number[]) => {
    const y = pool.alloc(sizeOf(outShape));
    if (y.length) {
      addon.attention(p.q, p.k, p.v, y, p.dims, p.scale, p.causal, p.mask, p.bias, p.layouts);
    }
    return out(args, outShape, y);
  };

  /**
   * Writes dq, dk, dv (laid out as q, k, v: `grads` may give one buffer for all three when the
   * layouts are disjoint views of it) and, when given, dbias (the bias's shape, or
   * [B, H, Tq, Tk]). Without dbias the addon keeps the scores' gradient block-local.
   */
  const backward = (
    dy: Float32Array,
    p: Problem,
    grads: { dq: Float32Array; dk: Float32Array; dv: Float32Array },
    dbias: Float32Array | null,
  ) => {
    const { B, H, Tq, Tk } = p.sizes;
    // With no query or no key the addon does not run; the caller's zeroed buffers stand.
    if (B * H * Tq * Tk > 0) {
      addon.attentionGrad(
        dy,
        p.q,
        p.k,
        p.v,
        grads.dq,
        grads.dk,
        grads.dv,
        dbias,
        p.dims,
        p.scale,
        p.causal,
        p.mask,
        p.bias,
        p.layouts,
      );
    } else {
      dbias?.fill(0);
    }
  };

  /** Outputs the addon writes completely when it runs; zeros when it does not. */
  const gradBuffer = (p: Problem, n: number) => {
    const { B, H, Tq, Tk } = p.sizes;
    return B * H * Tq * Tk > 0 ? pool.alloc(n) : pool.zeros(n);
  };

  /** The four gradients of an attention whose q, k, v are separate tensors. */
  const separateGrads = (args: WithBackend, p: Problem, inputs: ProblemInputs & { dy: TensorInfo }) => {
    const { q, k, v } = inputs;
    const grads = {
      dq: gradBuffer(p, sizeOf(q.shape)),
      dk: gradBuffer(p, sizeOf(k.shape)),
      dv: gradBuffer(p, sizeOf(v.shape)),
    };
    const { B, H, Tq, Tk } = p.sizes;
    // These ops promise the scores' gradient (the bias's, when there is one).
    const dbias = pool.alloc(sizeOf(p.biasShape ?? [B, H, Tq, Tk]));
    backward(asF32(args, inputs.dy), p, grads, dbias);
    return [
      out(args, q.shape, grads.dq),
      out(args, k.shape, grads.dk),
      out(args, v.shape, grads.dv),
      out(args, p.biasShape ?? [B, H, Tq, Tk], dbias),
    ];
  };

  return {
    TesseraAttention: (args) => {
      const p = headsProblem(args);
      const { B, H, Tq, Dv } = p.sizes;
      return forward(args, p, [B, H, Tq, Dv]);
    },

    TesseraAttentionGrad: (args) => separateGrads(args, headsProblem(args), args.inputs),

    TesseraPackedAttention: (args) => {
      const p = packedProblem(args);
      const { B, Tq, H, Dv } = p.sizes;
      return forward(args, p, [B, Tq, H * Dv]); // [B, T, E]
    },

    TesseraPackedAttentionGrad: (args) => {
      const p = packedProblem(args);
      // dq, dk and dv are the three column blocks of one buffer; the addon writes all of it.
      const dqkv = gradBuffer(p, sizeOf(args.inputs.qkv.shape));
      // No bias to give the scores' gradient to.
      backward(asF32(args, args.inputs.dy), p, { dq: dqkv, dk: dqkv, dv: dqkv }, null);
      return out(args, args.inputs.qkv.shape, dqkv);
    },

    TesseraSeqAttention: (args) => {
      const p = seqProblem(args);
      const { B, Tq, H, Dv } = p.sizes;
      return forward(args, p, [B, Tq, H * Dv]); // [B, Tq, nHead·Dv]
    },

    TesseraSeqAttentionGrad: (args) => separateGrads(args, seqProblem(args), args.inputs),
  } satisfies Partial<FusedKernelTable>;
}
