import * as tf from '@tensorflow/tfjs-core';
import { defineOp, OpInputError, type TensorSpec } from '../op.js';
import { attentionGradOp, attentionOp } from './attention.js';
import { checkAttentionExtras, requireFloat } from './util.js';

export interface PackedAttentionAttrs extends Record<string, unknown> {
  /** Heads in each of q, k and v: the packed last axis is 3 · nHead · headSize. */
  nHead: number;
  causal: boolean;
  /** Multiplies q·k; null means 1/sqrt(headSize). */
  scale: number | null;
}

type PackedInputs = 'qkv' | 'mask';

function check(op: string, inputs: Partial<Record<PackedInputs | 'dy', TensorSpec>>, attrs: PackedAttentionAttrs) {
  const qkv = requireFloat(op, 'qkv', inputs.qkv);
  if (qkv.shape.length !== 3 || qkv.shape[2]! % 3 !== 0) {
    throw new OpInputError(
      `${op}: input "qkv" must be [batch, seqLen, 3·nHead·headSize] (q, k and v side by side, as GPT-2's c_attn writes them); got [${qkv.shape.join(', ')}].`,
    );
  }
  const [B, T, threeE] = qkv.shape as [number, number, number];
  const E = threeE / 3;
  if (!Number.isInteger(attrs.nHead) || attrs.nHead < 1 || E % attrs.nHead !== 0) {
    throw new OpInputError(
      `${op}: attr nHead must be a positive integer dividing the width ${E} of q, k and v; got ${String(attrs.nHead)}.`,
    );
  }
  checkAttentionExtras(op, { mask: inputs.mask }, attrs, { B, H: attrs.nHead, Tq: T, Tk: T });
  return { B, T, E, H: attrs.nHead, D: E / attrs.nHead };
}

/** [B, T, 3E] -> q, k, v as [B, nHead, T, headSize] */
function unpack(qkv: tf.Tensor, nHead: number): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const [B, T, threeE] = qkv.shape as [number, number, number];
  const D = threeE / 3 / nHead;
  return tf.split(qkv, 3, 2).map((t) => tf.transpose(tf.reshape(t, [B, T, nHead, D]), [0, 2, 1, 3])) as [
    tf.Tensor,
    tf.Tensor,
    tf.Tensor,
  ]; // [B, nHead, T, headSize]
}

/** [B, nHead, T, headSize] -> [B, T, nHead·headSize] */
function merge(x: tf.Tensor): tf.Tensor {
  const [B, H, T, D] = x.shape as [number, number, number, number];
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [B, T, H * D]); // [B, T, E]
}

export const packedAttentionGradOp = defineOp<'dy' | PackedInputs, PackedAttentionAttrs, 'mask'>({
  name: 'TesseraPackedAttentionGrad',
  description: 'Backward of packed self-attention: the gradient of the packed q|k|v projection.',
  inputs: ['dy', 'qkv', 'mask'],
  optionalInputs: ['mask'],
  outputs: ['dqkv'],
  defaults: { causal: false, scale: null },
  inferOutputs(inputs, attrs) {
    const { B, T, E } = check('TesseraPackedAttentionGrad', inputs, attrs);
    const dy = requireFloat('TesseraPackedAttentionGrad', 'dy', inputs.dy);
    if (dy.shape.length !== 3 || dy.shape[0] !== B || dy.shape[1] !== T || dy.shape[2] !== E) {
      throw new OpInputError(
        `TesseraPackedAttentionGrad: dy must be [${B}, ${T}, ${E}]; got [${dy.shape.join(', ')}].`,
      );
    }
    return [{ shape: inputs.qkv!.shape, dtype: 'float32' }];
  },
  reference({ dy, qkv, mask }, attrs) {
    return tf.tidy(() => {
      const [q, k, v] = unpack(qkv!, attrs.nHead);
      const [B, H, T, D] = q.shape as [number, number, number, number];
      const dyHeads = tf.transpose(tf.reshape(dy!, [B, T, H, D]), [0, 2, 1, 3]); // [B, nHead, T, headSize]
      const [dq, dk, dv, dbias] = attentionGradOp(
        { dy: dyHeads, q, k, v, ...(mask ? { mask } : {}) },
        { causal: attrs.causal, scale: attrs.scale },
      );
      dbias!.dispose();
      return tf.concat([merge(dq!), merge(dk!), merge(dv!)], 2); // [B, T, 3E]
    });
  },
});

export const packedAttentionOp = defineOp<PackedInputs, PackedAttentionAttrs, 'mask'>({
  name: 'TesseraPackedAttention',
  description:
    'Self-attention over a packed q|k|v projection [B, T, 3E] (GPT-2 c_attn order), heads merged in the output [B, T, E].',
  inputs: ['qkv', 'mask'],
  optionalInputs: ['mask'],
  nonDifferentiable: ['mask'],
  defaults: { causal: false, scale: null },
  inferOutputs(inputs, attrs) {
    const { B, T, E } = check('TesseraPackedAttention', inputs, attrs);
    return [{ shape: [B, T, E], dtype: 'float32' }];
  },
  reference({ qkv, mask }, attrs) {
    return tf.tidy(() => {
      const [q, k, v] = unpack(qkv!, attrs.nHead);
      const y = attentionOp({ q, k, v, ...(mask ? { mask } : {}) }, { causal: attrs.causal, scale: attrs.scale })[0]!;
      return merge(y); // [B, T, E]
    });
  },
  gradient([dy], { inputs, attrs }) {
    const { qkv, mask } = inputs;
    const [dqkv] = packedAttentionGradOp({ dy, qkv, ...(mask ? { mask } : {}) }, attrs);
    return { qkv: dqkv };
  },
});

export interface PackedAttentionOptions {
  /** [batch, seqLen], 1 = attend, 0 = padding. */
  mask?: tf.Tensor;
  causal?: boolean;
  /** Default 1/sqrt(headSize). */
  scale?: number | null;
}

/**
 * Self-attention straight from a packed projection: qkv [B, T, 3·nHead·headSize] (q, k, v side
 * by side, each head's columns contiguous) to y [B, T, nHead·headSize]. The same values as
 * splitting, transposing to heads, `attention` and merging; a backend with a kernel reads the
 * heads in place and skips those copies (and their gradients).
 */
export function packedAttention(qkv: tf.Tensor, nHead: number, options: PackedAttentionOptions = {}): tf.Tensor {
  const { mask, causal = false, scale = null } = options;
  return packedAttentionOp({ qkv, ...(mask ? { mask } : {}) }, { nHead, causal, scale })[0]!;
}
