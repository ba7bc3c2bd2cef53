import type {
  AttentionAttrs,
  FusedKernelArgs,
  FusedKernelTable,
  PackedAttentionAttrs,
  SeqAttentionAttrs,
} from '@tessera/tensor-core';
import type { TensorInfo } from '@tessera/tensor-core/tfjs';
import { output, sizeOf, values } from './access.js';

/** The inputs forward and backward share (backward adds dy), as the op declares them. */
type AttentionInputs = FusedKernelArgs<'TesseraAttention'>['inputs'];

/** Where head (b, h) of a tensor lives: element (b, h, t, d) is at offset + b·batch + h·head + t·row + d. */
interface HeadLayout {
  offset: number;
  batch: number;
  head: number;
  row: number;
}

/** [B, H, T, width], contiguous. */
function contiguous(H: number, T: number, width: number): HeadLayout {
  return { offset: 0, batch: H * T * width, head: T * width, row: width };
}

/** Head layouts of q, k, v (and their gradients) and of the output (and dy). */
interface Layouts {
  q: HeadLayout;
  k: HeadLayout;
  v: HeadLayout;
  out: HeadLayout;
}

/** What the problem reads: q, k, v (possibly one packed tensor), and the optional mask and bias. */
interface AttentionData {
  q: TensorInfo;
  k: TensorInfo;
  v: TensorInfo;
  mask?: TensorInfo | undefined;
  bias?: TensorInfo | undefined;
}

interface Sizes {
  B: number;
  H: number;
  Tq: number;
  Tk: number;
  D: number;
  Dv: number;
}

/** Everything the forward and backward loops share: sizes, data and the row softmax. */
class AttentionProblem {
  readonly B: number;
  readonly H: number;
  readonly Tq: number;
  readonly Tk: number;
  readonly D: number;
  readonly Dv: number;
  readonly scale: number;
  readonly causal: boolean;
  readonly q: ArrayLike<number>;
  readonly k: ArrayLike<number>;
  readonly v: ArrayLike<number>;
  readonly mask: ArrayLike<number> | undefined;
  readonly bias: ArrayLike<number> | undefined;
  readonly biasShape: number[];
  readonly biasStrides: number[];
  readonly layouts: Layouts;

  constructor(
    backend: unknown,
    data: AttentionData,
    sizes: Sizes,
    attrs: { causal: boolean; scale: number | null },
    layouts?: Layouts,
  ) {
    ({ B: this.B, H: this.H, Tq: this.Tq, Tk: this.Tk, D: this.D, Dv: this.Dv } = sizes);
    this.scale = attrs.scale ?? 1 / Math.sqrt(this.D);
    this.causal = attrs.causal;
    this.q = values(backend, data.q);
    this.k = values(backend, data.k);
    this.v = values(backend, data.v);
    this.mask = data.mask ? values(backend, data.mask) : undefined;
    this.bias = data.bias ? values(backend, data.bias) : undefined;
    this.biasShape = data.bias ? data.bias.shape : [1, 1, 1, 1];
    const [, s1, s2, s3] = this.biasShape as [number, number, number, number];
    this.biasStrides = [s1 * s2 * s3, s2 * s3, s3, 1];
    const { H, Tq, Tk, D, Dv } = sizes;
    this.layouts = layouts ?? {
      q: contiguous(H, Tq, D),
      k: contiguous(H, Tk, D),
      v: contiguous(H, Tk, Dv),
      out: contiguous(H, Tq, Dv),
    };
  }

  /** The [B, H, T, D] problem of the plain op. */
  static heads(backend: unknown, inputs: AttentionInputs, attrs: AttentionAttrs): AttentionProblem {
    const [B, H, Tq, D] = inputs.q.shape as [number, number, number, number];
    const sizes = { B, H, Tq, Tk: inputs.k.shape[2]!, D, Dv: inputs.v.shape[3]! };
    return new AttentionProblem(backend, inputs, sizes, attrs);
  }

  /** The packed problem: q, k, v are column blocks of one [B, T, 3E] tensor; the output is [B, T, E]. */
  static packed(backend: unknown, qkv: TensorInfo, mask: TensorInfo | undefined, attrs: PackedAttentionAttrs) {
    const [B, T, threeE] = qkv.shape as [number, number, number];
    const E = threeE / 3;
    const H = attrs.nHead;
    const D = E / H;
    const view = (offset: number): HeadLayout => ({ offset, batch: T * threeE, head: D, row: threeE });
    const layouts = { q: view(0), k: view(E), v: view(2 * E), out: { offset: 0, batch: T * E, head: D, row: E } };
    return new AttentionProblem(
      backend,
      { q: qkv, k: qkv, v: qkv, mask },
      { B, H, Tq: T, Tk: T, D, Dv: D },
      attrs,
      layouts,
    );
  }

  /** Sequence-major q, k, v [B, T, nHead·headSize] (projection outputs); the output is [B, Tq, nHead·Dv]. */
  static seq(backend: unknown, inputs: AttentionData, attrs: SeqAttentionAttrs) {
    const [B, Tq, E] = inputs.q.shape as [number, number, number];
    const Tk = inputs.k.shape[1]!;
    const Ev = inputs.v.shape[2]!;
    const H = attrs.nHead;
    const [D, Dv] = [E / H, Ev / H];
    const view = (T: number, width: number, headSize: number): HeadLayout => ({
      offset: 0,
      batch: T * width,
      head: headSize,
      row: width,
    });
    const layouts = { q: view(Tq, E, D), k: view(Tk, E, D), v: view(Tk, Ev, Dv), out: view(Tq, Ev, Dv) };
    return new AttentionProblem(backend, inputs, { B, H, Tq, Tk, D, Dv }, attrs, layouts);
  }

  /** Start of head (b, h) of a tensor with layout `l`. */
  at(l: HeadLayout, b: number, h: number): number {
    return l.offset + b * l.batch + h * l.head;
  }

  /** Index into the (broadcast) bias for (b, h, i, j). */
  biasIndex(b: number, h: number, i: number, j: number): number {
    const [s0, s1, s2, s3] = this.biasShape as [number, number, number, number];
    const [t0, t1, t2] = this.biasStrides as [number, number, number];
    return (s0 === 1 ? 0 : b) * t0 + (s1 === 1 ? 0 : h) * t1 + (s2 === 1 ? 0 : i) * t2 + (s3 === 1 ? 0 : j);
  }

  /**
   * Fills `probs` (length Tk) with row (b, h, i)'s attention weights; all zero when no key is
   * allowed. A NaN or +Inf score makes the row NaN wherever causality lets it look (masked keys
   * included), as PyTorch's softmax does, instead of vanishing into a zero weight.
   */
  rowProbabilities(b: number, h: number, i: number, probs: Float64Array): void {
    const { Tq, Tk, D, layouts } = this;
    const qBase = this.at(layouts.q, b, h) + i * layouts.q.row;
    const kBase = this.at(layouts.k, b, h);
    const lastKey = this.causal ? i + (Tk - Tq) : Tk - 1;
    let max = Number.NEGATIVE_INFINITY;
    let poisoned = false;
    for (let j = 0; j < Tk; j++) {
      if (j > lastKey || (this.mask && this.mask[b * Tk + j] === 0)) {
        probs[j] = Number.NaN; // marks "not allowed" until normalisation
        continue;
      }
      let s = 0;
      for (let d = 0; d < D; d++) s += this.q[qBase + d]! * this.k[kBase + j * layouts.k.row + d]!;
      s *= this.scale;
      if (this.bias) s += this.bias[this.biasIndex(b, h, i, j)]!;
      probs[j] = s;
      if (s > max) max = s;
      if (!(s < Number.POSITIVE_INFINITY)) poisoned = true;
    }
    if (poisoned) {
      for (let j = 0; j < Tk; j++) probs[j] = j > lastKey ? 0 : Number.NaN;
      return;
    }
    let sum = 0;
    for (let j = 0; j < Tk; j++) {
      if (Number.isNaN(probs[j]!)) continue;
      const e = Math.exp(probs[j]! - max);
      probs[j] = e;
      sum += e;
    }
    for (let j = 0; j < Tk; j++) probs[j] = Number.isNaN(probs[j]!) ? 0 : probs[j]! / sum;
  }
}

/** Forward into `out` laid out as a.layouts.out: float64 row softmax, one query row at a time. */
function forward(a: AttentionProblem, out: Float32Array): void {
  const { B, H, Tq, Tk, Dv, layouts } = a;
  const probs = new Float64Array(Tk);
  const acc = new Float64Array(Dv);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const vBase = a.at(layouts.v, b, h);
      const oBase = a.at(layouts.out, b, h);
      for (let i = 0; i < Tq; i++) {
        a.rowProbabilities(b, h, i, probs);
        acc.fill(0);
        for (let j = 0; j < Tk; j++) {
          const p = probs[j]!;
          if (p === 0) continue;
          for (let d = 0; d < Dv; d++) acc[d] += p * a.v[vBase + j * layouts.v.row + d]!;
        }
        out.set(acc, oBase + i * layouts.out.row);
      }
    }
  }
}

/**
 * Backward: dq, dk, dv (laid out as q, k, v; they may all be one array when the layouts are
 * disjoint views of it) and dbias (the bias's shape, or [B, H, Tq, Tk]; null: not wanted).
 */
function backward(
  a: AttentionProblem,
  dy: ArrayLike<number>,
  grads: { dq: Float64Array; dk: Float64Array; dv: Float64Array; dbias: Float64Array | null },
  hasBias: boolean,
): void {
  const { B, H, Tq, Tk, D, Dv, scale, layouts } = a;
  const { dq, dk, dv, dbias } = grads;
  const dbiasIndex = hasBias
    ? a.biasIndex.bind(a)
    : (b: number, h: number, i: number, j: number) => ((b * H + h) * Tq + i) * Tk + j;
  const probs = new Float64Array(Tk);
  const dScores = new Float64Array(Tk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const qHead = a.at(layouts.q, b, h);
      const kHead = a.at(layouts.k, b, h);
      const vHead = a.at(layouts.v, b, h);
      const oHead = a.at(layouts.out, b, h);
      for (let i = 0; i < Tq; i++) {
        a.rowProbabilities(b, h, i, probs);
        const dyBase = oHead + i * layouts.out.row;
        let dot = 0;
        for (let j = 0; j < Tk; j++) {
          const p = probs[j]!;
          let dp = 0;
          if (p !== 0) {
            const vBase = vHead + j * layouts.v.row;
            for (let d = 0; d < Dv; d++) {
              dp += dy[dyBase + d]! * a.v[vBase + d]!;
              dv[vBase + d] += p * dy[dyBase + d]!;
            }
          }
          dScores[j] = dp;
          dot += p * dp;
        }
        const qBase = qHead + i * layouts.q.row;
        for (let j = 0; j < Tk; j++) {
          const ds = probs[j]! * (dScores[j]! - dot);
          if (ds === 0) continue;
          if (dbias) dbias[dbiasIndex(b, h, i, j)] += ds;
          const kBase = kHead + j * layouts.k.row;
          for (let d = 0; d < D; d++) {
            dq[qBase + d] += ds * scale * a.k[kBase + d]!;
            dk[kBase + d] += ds * scale * a.q[qBase + d]!;
          }
        }
      }
    }
  }
}

/** Runs the forward into a new [..outShape] output. */
function forwardOutput(a: AttentionProblem, backend: unknown, outShape: number[]): TensorInfo {
  const out = new Float32Array(sizeOf(outShape));
  forward(a, out);
  return output(backend, outShape, out);
}

/** dq, dk, dv (shaped as q, k, v) and dbias (the bias's shape, or [B, H, Tq, Tk]) of separate q, k, v. */
function separateGrads(
  a: AttentionProblem,
  backend: unknown,
  inputs: AttentionData & { dy: TensorInfo },
): TensorInfo[] {
  const { q, k, v, bias } = inputs;
  const dbiasShape = bias ? bias.shape : [a.B, a.H, a.Tq, a.Tk];
  const grads = {
    dq: new Float64Array(sizeOf(q.shape)),
    dk: new Float64Array(sizeOf(k.shape)),
    dv: new Float64Array(sizeOf(v.shape)),
    dbias: new Float64Array(sizeOf(dbiasShape)),
  };
  backward(a, values(backend, inputs.dy), grads, bias !== undefined);
  return [
    output(backend, q.shape, Float32Array.from(grads.dq)),
    output(backend, k.shape, Float32Array.from(grads.dk)),
    output(backend, v.shape, Float32Array.from(grads.dv)),
    output(backend, dbiasShape, Float32Array.from(grads.dbias)),
  ];
}

/** Attention forward and backward, plain and packed. */
export const attentionKernels = {
  TesseraAttention: ({ inputs, backend, attrs }) => {
    const a = AttentionProblem.heads(backend, inputs, attrs);
    return forwardOutput(a, backend, [a.B, a.H, a.Tq, a.Dv]);
  },

  TesseraAttentionGrad: ({ inputs, backend, attrs }) =>
    separateGrads(AttentionProblem.heads(backend, inputs, attrs), backend, inputs),

  TesseraPackedAttention: ({ inputs, backend, attrs }) => {
    const a = AttentionProblem.packed(backend, inputs.qkv, inputs.mask, attrs);
    return forwardOutput(a, backend, [a.B, a.Tq, a.H * a.Dv]); // [B, T, E]
  },

  TesseraPackedAttentionGrad: ({ inputs, backend, attrs }) => {
    const a = AttentionProblem.packed(backend, inputs.qkv, inputs.mask, attrs);
    // dq, dk and dv are the three column blocks of one [B, T, 3E] gradient.
    const dqkv = new Float64Array(sizeOf(inputs.qkv.shape));
    backward(a, values(backend, inputs.dy), { dq: dqkv, dk: dqkv, dv: dqkv, dbias: null }, false);
    return output(backend, inputs.qkv.shape, Float32Array.from(dqkv));
  },

  TesseraSeqAttention: ({ inputs, backend, attrs }) => {
    const a = AttentionProblem.seq(backend, inputs, attrs);
    return forwardOutput(a, backend, [a.B, a.Tq, a.H * a.Dv]); // [B, Tq, nHead·Dv]
  },

  TesseraSeqAttentionGrad: ({ inputs, backend, attrs }) =>
    separateGrads(AttentionProblem.seq(backend, inputs, attrs), backend, inputs),
} satisfies Partial<FusedKernelTable>;
