import * as tf from '@tensorflow/tfjs-core';
import { defineOp, OpInputError, type TensorSpec } from '../op.js';
import { checkAttentionExtras, requireFloat, requireQkv, sumToShape } from './util.js';

export interface AttentionAttrs extends Record<string, unknown> {
  /** Query i sees keys j <= i + (Tk - Tq): GPT, and T5's decoder (also with a KV cache). */
  causal: boolean;
  /** Multiplies q·k; null means 1/sqrt(headSize). T5 uses 1. */
  scale: number | null;
}

type AttentionInputs = 'q' | 'k' | 'v' | 'mask' | 'bias';

/** Scores masked this far down vanish under softmax without producing inf - inf. */
const MASKED = -1e30;

function check(op: string, inputs: Partial<Record<AttentionInputs, TensorSpec>>, attrs: AttentionAttrs) {
  const { q, k, v } = requireQkv(op, inputs, 4, '[batch, nHead, seqLen, headSize]');
  const [B, H, Tq, D] = q.shape as [number, number, number, number];
  const Tk = k.shape[2]!;
  if (k.shape[0] !== B || k.shape[1] !== H || k.shape[3] !== D) {
    throw new OpInputError(
      `${op}: k [${k.shape.join(', ')}] must match q [${q.shape.join(', ')}] in batch, nHead and headSize.`,
    );
  }
  if (v.shape[0] !== B || v.shape[1] !== H || v.shape[2] !== Tk) {
    throw new OpInputError(
      `${op}: v [${v.shape.join(', ')}] must match k [${k.shape.join(', ')}] in batch, nHead and seqLen.`,
    );
  }
  checkAttentionExtras(op, inputs, attrs, { B, H, Tq, Tk });
  return { B, H, Tq, Tk, D, Dv: v.shape[3]! };
}

/** Which (query, key) pairs may attend: [B|1, 1, Tq|1, Tk] as float 1/0, or null when all may. */
export function attentionAllowed(
  mask: tf.Tensor | undefined,
  causal: boolean,
  Tq: number,
  Tk: number,
): tf.Tensor | null {
  if (!mask && !causal) return null;
  return tf.tidy(() => {
    let allowed: tf.Tensor | null = null;
    if (mask) {
      allowed = tf.reshape(tf.cast(tf.notEqual(mask, 0), 'float32'), [mask.shape[0]!, 1, 1, Tk]); // [B, 1, 1, Tk]
    }
    if (causal) {
      const rows = tf.reshape(tf.range(Tk - Tq, Tk, 1, 'int32'), [Tq, 1]);
      const cols = tf.reshape(tf.range(0, Tk, 1, 'int32'), [1, Tk]);
      const band = tf.reshape(tf.cast(tf.lessEqual(cols, rows), 'float32'), [1, 1, Tq, Tk]); // [1, 1, Tq, Tk]
      allowed = allowed ? tf.mul(allowed, band) : band;
    }
    return allowed!;
  });
}

/** softmax over keys of the masked scores; disallowed pairs (and fully masked rows) get probability 0. */
function probabilities(
  q: tf.Tensor,
  k: tf.Tensor,
  mask: tf.Tensor | undefined,
  bias: tf.Tensor | undefined,
  attrs: AttentionAttrs,
): { probs: tf.Tensor; scale: number } {
  const [B, H, Tq, D] = q.shape as [number, number, number, number];
  const Tk = k.shape[2]!;
  const scale = attrs.scale ?? 1 / Math.sqrt(D);
  let scores = tf.mul(tf.matMul(q, k, false, true), scale); // [B, H, Tq, Tk]
  if (bias) scores = tf.add(scores, bias);
  const allowed = attentionAllowed(mask, attrs.causal, Tq, Tk);
  if (!allowed) return { probs: tf.softmax(scores), scale };
  const allowedFull = tf.broadcastTo(allowed, [B, H, Tq, Tk]);
  const masked = tf.where(tf.cast(allowedFull, 'bool'), scores, tf.fill([B, H, Tq, Tk], MASKED));
  return { probs: tf.mul(tf.softmax(masked), allowedFull), scale };
}

export const attentionGradOp = defineOp<'dy' | AttentionInputs, AttentionAttrs, 'mask' | 'bias'>({
  name: 'TesseraAttentionGrad',
  description: 'Backward of scaled-dot-product attention: dq, dk, dv, dbias.',
  inputs: ['dy', 'q', 'k', 'v', 'mask', 'bias'],
  optionalInputs: ['mask', 'bias'],
  outputs: ['dq', 'dk', 'dv', 'dbias'],
  defaults: { causal: false, scale: null },
  inferOutputs(inputs, attrs) {
    const { B, H, Tq, Tk } = check('TesseraAttentionGrad', inputs, attrs);
    requireFloat('TesseraAttentionGrad', 'dy', inputs.dy);
    return [
      { shape: inputs.q!.shape, dtype: 'float32' },
      { shape: inputs.k!.shape, dtype: 'float32' },
      { shape: inputs.v!.shape, dtype: 'float32' },
      { shape: inputs.bias?.shape ?? [B, H, Tq, Tk], dtype: 'float32' },
    ];
  },
  reference({ dy, q, k, v, mask, bias }, attrs) {
    return tf.tidy(() => {
      const { probs, scale } = probabilities(q!, k!, mask, bias, attrs);
      const dv = tf.matMul(probs, dy!, true, false); // [B, H, Tk, Dv]
      const dProbs = tf.matMul(dy!, v!, false, true); // [B, H, Tq, Tk]
      const dScores = tf.mul(probs, tf.sub(dProbs, tf.sum(tf.mul(dProbs, probs), -1, true)));
      const dq = tf.mul(tf.matMul(dScores, k!), scale);
      const dk = tf.mul(tf.matMul(dScores, q!, true, false), scale);
      const dbias = bias ? sumToShape(dScores, bias.shape) : dScores;
      return [dq, dk, dv, dbias];
    });
  },
});

export const attentionOp = defineOp<AttentionInputs, AttentionAttrs, 'mask' | 'bias'>({
  name: 'TesseraAttention',
  description: 'Scaled-dot-product attention softmax(q·kᵀ·scale + bias, masked)·v with causal and padding masks.',
  inputs: ['q', 'k', 'v', 'mask', 'bias'],
  optionalInputs: ['mask', 'bias'],
  nonDifferentiable: ['mask'],
  defaults: { causal: false, scale: null },
  inferOutputs(inputs, attrs) {
    const { B, H, Tq, Dv } = check('TesseraAttention', inputs, attrs);
    return [{ shape: [B, H, Tq, Dv], dtype: 'float32' }];
  },
  reference({ q, k, v, mask, bias }, attrs) {
    return tf.tidy(() => tf.matMul(probabilities(q!, k!, mask, bias, attrs).probs, v!)); // [B, H, Tq, Dv]
  },
  gradient([dy], { inputs, attrs }) {
    const { q, k, v, mask, bias } = inputs;
    const [dq, dk, dv, dbias] = attentionGradOp(
      { dy, q, k, v, ...(mask ? { mask } : {}), ...(bias ? { bias } : {}) },
      { causal: attrs.causal, scale: attrs.scale },
    );
    if (!bias) dbias!.dispose();
    return { q: dq, k: dk, v: dv, ...(bias ? { bias: dbias } : {}) };
  },
});

export interface AttentionOptions {
  /** [batch, keyLen], 1 = attend, 0 = padding. */
  mask?: tf.Tensor;
  /** Added to the scores, broadcast to [batch, nHead, queryLen, keyLen] (T5 relative position bias). */
  bias?: tf.Tensor;
  causal?: boolean;
  /** Default 1/sqrt(headSize). */
  scale?: number | null;
}

/**
 * Scaled-dot-product attention over q, k, v of shape [batch, nHead, seqLen, headSize].
 * Rows whose keys are all masked produce zeros (not NaN, not a uniform average).
 */
export function attention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, options: AttentionOptions = {}): tf.Tensor {
  const { mask, bias, causal = false, scale = null } = options;
  return attentionOp({ q, k, v, ...(mask ? { mask } : {}), ...(bias ? { bias } : {}) }, { causal, scale })[0]!;
}
