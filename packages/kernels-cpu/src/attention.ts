import type { AttentionAttrs, FusedKernelArgs, FusedKernelTable } from '@tessera/tensor-core';
import { output, sizeOf, values } from './access.js';

/** The inputs forward and backward share (backward adds dy), as the op declares them. */
type AttentionInputs = FusedKernelArgs<'TesseraAttention'>['inputs'];

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

  constructor(backend: unknown, inputs: AttentionInputs, attrs: AttentionAttrs) {
    [this.B, this.H, this.Tq, this.D] = inputs.q.shape as [number, number, number, number];
    this.Tk = inputs.k.shape[2]!;
    this.Dv = inputs.v.shape[3]!;
    this.scale = attrs.scale ?? 1 / Math.sqrt(this.D);
    this.causal = attrs.causal;
    this.q = values(backend, inputs.q);
    this.k = values(backend, inputs.k);
    this.v = values(backend, inputs.v);
    this.mask = inputs.mask ? values(backend, inputs.mask) : undefined;
    this.bias = inputs.bias ? values(backend, inputs.bias) : undefined;
    this.biasShape = inputs.bias ? inputs.bias.shape : [1, 1, 1, 1];
    const [, s1, s2, s3] = this.biasShape as [number, number, number, number];
    this.biasStrides = [s1 * s2 * s3, s2 * s3, s3, 1];
  }

  /** Index into the (broadcast) bias for (b, h, i, j). */
  biasIndex(b: number, h: number, i: number, j: number): number {
    const [s0, s1, s2, s3] = this.biasShape as [number, number, number, number];
    const [t0, t1, t2] = this.biasStrides as [number, number, number];
    return (s0 === 1 ? 0 : b) * t0 + (s1 === 1 ? 0 : h) * t1 + (s2 === 1 ? 0 : i) * t2 + (s3 === 1 ? 0 : j);
  }

  /** Fills `probs` (length Tk) with row (b, h, i)'s attention weights; all zero when no key is allowed. */
  rowProbabilities(b: number, h: number, i: number, probs: Float64Array): void {
    const { Tq, Tk, D } = this;
    const qBase = ((b * this.H + h) * Tq + i) * D;
    const kBase = (b * this.H + h) * Tk * D;
    const lastKey = this.causal ? i + (Tk - Tq) : Tk - 1;
    let max = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < Tk; j++) {
      if (j > lastKey || (this.mask && this.mask[b * Tk + j] === 0)) {
        probs[j] = Number.NaN; // marks "not allowed" until normalisation
        continue;
      }
      let s = 0;
      for (let d = 0; d < D; d++) s += this.q[qBase + d]! * this.k[kBase + j * D + d]!;
      s *= this.scale;
      if (this.bias) s += this.bias[this.biasIndex(b, h, i, j)]!;
      probs[j] = s;
      if (s > max) max = s;
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

/** Attention forward and backward: float64 row softmax, one query row at a time. */
export const attentionKernels = {
  TesseraAttention: ({ inputs, backend, attrs }) => {
    const a = new AttentionProblem(backend, inputs, attrs);
    const { B, H, Tq, Tk, Dv } = a;
    const out = new Float32Array(B * H * Tq * Dv);
    const probs = new Float64Array(Tk);
    const acc = new Float64Array(Dv);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const vBase = (b * H + h) * Tk * Dv;
        for (let i = 0; i < Tq; i++) {
          a.rowProbabilities(b, h, i, probs);
          acc.fill(0);
          for (let j = 0; j < Tk; j++) {
            const p = probs[j]!;
            if (p === 0) continue;
            for (let d = 0; d < Dv; d++) acc[d] += p * a.v[vBase + j * Dv + d]!;
          }
          out.set(acc, ((b * H + h) * Tq + i) * Dv);
        }
      }
    }
    return output(backend, [B, H, Tq, Dv], out);
  },

  TesseraAttentionGrad: ({ inputs, backend, attrs }) => {
    const a = new AttentionProblem(backend, inputs, attrs);
    const { B, H, Tq, Tk, D, Dv, scale } = a;
    const dy = values(backend, inputs.dy);
    const dq = new Float64Array(B * H * Tq * D);
    const dk = new Float64Array(B * H * Tk * D);
    const dv = new Float64Array(B * H * Tk * Dv);
    const dbiasShape = inputs.bias ? inputs.bias.shape : [B, H, Tq, Tk];
    const dbiasIndex = inputs.bias
      ? a.biasIndex.bind(a)
      : (b: number, h: number, i: number, j: number) => ((b * H + h) * Tq + i) * Tk + j;
    const dbias = new Float64Array(sizeOf(dbiasShape));
    const probs = new Float64Array(Tk);
    const dScores = new Float64Array(Tk);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const bh = b * H + h;
        for (let i = 0; i < Tq; i++) {
          a.rowProbabilities(b, h, i, probs);
          const dyBase = (bh * Tq + i) * Dv;
          let dot = 0;
          for (let j = 0; j < Tk; j++) {
            const p = probs[j]!;
            let dp = 0;
            if (p !== 0) {
              for (let d = 0; d < Dv; d++) {
                dp += dy[dyBase + d]! * a.v[(bh * Tk + j) * Dv + d]!;
                dv[(bh * Tk + j) * Dv + d] += p * dy[dyBase + d]!;
              }
            }
            dScores[j] = dp;
            dot += p * dp;
          }
          const qBase = (bh * Tq + i) * D;
          for (let j = 0; j < Tk; j++) {
            const ds = probs[j]! * (dScores[j]! - dot);
            if (ds === 0) continue;
            dbias[dbiasIndex(b, h, i, j)] += ds;
            const kBase = (bh * Tk + j) * D;
            for (let d = 0; d < D; d++) {
              dq[qBase + d] += ds * scale * a.k[kBase + d]!;
              dk[kBase + d] += ds * scale * a.q[qBase + d]!;
            }
          }
        }
      }
    }
    return [
      output(backend, [B, H, Tq, D], Float32Array.from(dq)),
      output(backend, [B, H, Tk, D], Float32Array.from(dk)),
      output(backend, [B, H, Tk, Dv], Float32Array.from(dv)),
      output(backend, dbiasShape, Float32Array.from(dbias)),
    ];
  },
} satisfies Partial<FusedKernelTable>;
