import * as tf from '@tensorflow/tfjs-core';
import { defineOp, OpInputError, type TensorSpec } from '../op.js';
import { attentionGradOp, attentionOp } from './attention.js';
import { checkAttentionExtras, requireFloat, requireQkv } from './util.js';

export interface SeqAttentionAttrs extends Record<string, unknown> {
  /** Heads: each input's last axis is nHead · headSize, head h in columns [h·headSize, (h+1)·headSize). */
  nHead: number;
  /** Query i sees keys j <= i + (Tk - Tq). */
  causal: boolean;
  /** Multiplies q·k; null means 1/sqrt(headSize). */
  scale: number | null;
}

type SeqInputs = 'q' | 'k' | 'v' | 'mask' | 'bias';

function check(op: string, inputs: Partial<Record<SeqInputs, TensorSpec>>, attrs: SeqAttentionAttrs) {
  const { q, k, v } = requireQkv(op, inputs, 3, "[batch, seqLen, nHead·headSize] (a projection's output)");
  const [B, Tq, E] = q.shape as [number, number, number];
  const H = attrs.nHead;
  if (!Number.isInteger(H) || H < 1 || E % H !== 0 || v.shape[2]! % H !== 0) {
    throw new OpInputError(
      `${op}: attr nHead must be a positive integer dividing the widths of q (${E}) and v (${v.shape[2]}); got ${String(H)}.`,
    );
  }
  const Tk = k.shape[1]!;
  if (k.shape[0] !== B || k.shape[2] !== E) {
    throw new OpInputError(`${op}: k [${k.shape.join(', ')}] must match q [${q.shape.join(', ')}] in batch and width.`);
  }
  if (v.shape[0] !== B || v.shape[1] !== Tk) {
    throw new OpInputError(
      `${op}: v [${v.shape.join(', ')}] must match k [${k.shape.join(', ')}] in batch and seqLen.`,
    );
  }
  checkAttentionExtras(op, inputs, attrs, { B, H, Tq, Tk });
  return { B, H, Tq, Tk, Ev: v.shape[2]! };
}

/** [B, T, nHead·headSize] -> [B, nHead, T, headSize] */
function heads(x: tf.Tensor, nHead: number): tf.Tensor {
  const [B, T, C] = x.shape as [number, number, number];
  return tf.transpose(tf.reshape(x, [B, T, nHead, C / nHead]), [0, 2, 1, 3]); // [B, nHead, T, headSize]
}

/** [B, nHead, T, headSize] -> [B, T, nHead·headSize] */
function merge(x: tf.Tensor): tf.Tensor {
  const [B, H, T, D] = x.shape as [number, number, number, number];
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [B, T, H * D]); // [B, T, C]
}

export const seqAttentionGradOp = defineOp<'dy' | SeqInputs, SeqAttentionAttrs, 'mask' | 'bias'>({
  name: 'TesseraSeqAttentionGrad',
  description: 'Backward of sequence-major attention: dq, dk, dv (as q, k, v) and dbias.',
  inputs: ['dy', 'q', 'k', 'v', 'mask', 'bias'],
  optionalInputs: ['mask', 'bias'],
  outputs: ['dq', 'dk', 'dv', 'dbias'],
  defaults: { causal: false, scale: null },
  inferOutputs(inputs, attrs) {
    const { B, H, Tq, Tk, Ev } = check('TesseraSeqAttentionGrad', inputs, attrs);
    const dy = requireFloat('TesseraSeqAttentionGrad', 'dy', inputs.dy);
    if (dy.shape.length !== 3 || dy.shape[0] !== B || dy.shape[1] !== Tq || dy.shape[2] !== Ev) {
      throw new OpInputError(`TesseraSeqAttentionGrad: dy must be [${B}, ${Tq}, ${Ev}]; got [${dy.shape.join(', ')}].`);
    }
    return [
      { shape: inputs.q!.shape, dtype: 'float32' },
      { shape: inputs.k!.shape, dtype: 'float32' },
      { shape: inputs.v!.shape, dtype: 'float32' },
      { shape: inputs.bias?.shape ?? [B, H, Tq, Tk], dtype: 'float32' },
    ];
  },
  reference({ dy, q, k, v, mask, bias }, attrs) {
    return tf.tidy(() => {
      const n = attrs.nHead;
      const [dq, dk, dv, dbias] = attentionGradOp(
        {
          dy: heads(dy!, n),
          q: heads(q!, n),
          k: heads(k!, n),
          v: heads(v!, n),
          ...(mask ? { mask } : {}),
          ...(bias ? { bias } : {}),
        },
        { causal: attrs.causal, scale: attrs.scale },
      );
      return [merge(dq!), merge(dk!), merge(dv!), dbias!];
    });
  },
});

export const seqAttentionOp = defineOp<SeqInputs, SeqAttentionAttrs, 'mask' | 'bias'>({
  name: 'TesseraSeqAttention',
  description:
    'Scaled-dot-product attention over sequence-major q, k, v [B, T, nHead·headSize] (projection outputs as they are), heads merged in the output.',
  inputs: ['q', 'k', 'v', 'mask', 'bias'],
  optionalInputs: ['mask', 'bias'],
  nonDifferentiable: ['mask'],
  defaults: { causal: false, scale: null },
  inferOutputs(inputs, attrs) {
    const { B, Tq, Ev } = check('TesseraSeqAttention', inputs, attrs);
    return [{ shape: [B, Tq, Ev], dtype: 'float32' }];
  },
  reference({ q, k, v, mask, bias }, attrs) {
    return tf.tidy(() => {
      const n = attrs.nHead;
      const y = attentionOp(
        { q: heads(q!, n), k: heads(k!, n), v: heads(v!, n), ...(mask ? { mask } : {}), ...(bias ? { bias } : {}) },
        { causal: attrs.causal, scale: attrs.scale },
      )[0]!;
      return merge(y); // [B, Tq, nHead·headSize]
    });
  },
  gradient([dy], { inputs, attrs }) {
    const { q, k, v, mask, bias } = inputs;
    const [dq, dk, dv, dbias] = seqAttentionGradOp(
      { dy, q, k, v, ...(mask ? { mask } : {}), ...(bias ? { bias } : {}) },
      attrs,
    );
    if (!bias) dbias!.dispose();
    return { q: dq, k: dk, v: dv, ...(bias ? { bias: dbias } : {}) };
  },
});

export interface SeqAttentionOptions {
  /** [batch, keyLen], 1 = attend, 0 = padding. */
  mask?: tf.Tensor;
  /** Added to the scores, broadcast to [batch, nHead, queryLen, keyLen] (T5 relative position bias). */
  bias?: tf.Tensor;
  causal?: boolean;
  /** Default 1/sqrt(headSize). */
  scale?: number | null;
}

/**
 * Attention over q [B, Tq, nHead·headSize], k [B, Tk, nHead·headSize], v [B, Tk, nHead·headSizeV]
 * as the q/k/v projections give them, to y [B, Tq, nHead·headSizeV]: the values of splitting
 * into heads, `attention` and merging, without the head transposes where a backend has a kernel.
 */
export function seqAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  nHead: number,
  options: SeqAttentionOptions = {},
): tf.Tensor {
  const { mask, bias, causal = false, scale = null } = options;
  return seqAttentionOp(
    { q, k, v, ...(mask ? { mask } : {}), ...(bias ? { bias } : {}) },
    { nHead, causal, scale },
  )[0]!;
}
