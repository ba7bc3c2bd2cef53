import { type Rng, attention, attentionAllowed, dropout, seqAttention, tf } from '@tessera/tensor-core';

/** [B, T, nHead*headSize] -> [B, nHead, T, headSize] */
export function splitHeads(x: tf.Tensor, nHead: number): tf.Tensor {
  const [B, T, C] = x.shape as [number, number, number];
  return tf.transpose(tf.reshape(x, [B, T, nHead, C / nHead]), [0, 2, 1, 3]); // [B, nHead, T, headSize]
}

/** [B, nHead, T, headSize] -> [B, T, nHead*headSize] */
export function mergeHeads(x: tf.Tensor): tf.Tensor {
  const [B, H, T, D] = x.shape as [number, number, number, number];
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [B, T, H * D]); // [B, T, C]
}

export interface AttentionCall {
  /** [B, keyLen], 1 = attend, 0 = padding. */
  mask?: tf.Tensor | undefined;
  /** Added to the scores, broadcastable to [B, nHead, queryLen, keyLen]. */
  bias?: tf.Tensor | undefined;
  causal: boolean;
  /** null = 1/sqrt(headSize). */
  scale: number | null;
  /** Dropout on the attention probabilities (training only). */
  dropout?: { rate: number; rng: Rng; training: boolean };
}

/**
 * Scaled-dot-product attention. Uses the fused op; only when attention-probability
 * dropout is active does it compose the steps itself, since the fused op has no dropout.
 */
export function scaledDotProductAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, call: AttentionCall): tf.Tensor {
  const drop = call.dropout;
  if (!drop || !drop.training || drop.rate === 0) {
    return attention(q, k, v, { mask: call.mask, bias: call.bias, causal: call.causal, scale: call.scale });
  }
  const [B, H, Tq, D] = q.shape as [number, number, number, number];
  const Tk = k.shape[2]!;
  const scale = call.scale ?? 1 / Math.sqrt(D);
  let scores = tf.mul(tf.matMul(q, k, false, true), scale); // [B, H, Tq, Tk]
  if (call.bias) scores = tf.add(scores, call.bias);
  const allowed = attentionAllowed(call.mask, call.causal, Tq, Tk);
  let probs: tf.Tensor;
  if (allowed) {
    const allowedFull = tf.broadcastTo(allowed, [B, H, Tq, Tk]);
    const masked = tf.where(tf.cast(allowedFull, 'bool'), scores, tf.fill([B, H, Tq, Tk], -1e30));
    probs = tf.mul(tf.softmax(masked), allowedFull);
  } else {
    probs = tf.softmax(scores);
  }
  return tf.matMul(dropout(probs, drop.rate, drop.rng, drop.training), v); // [B, H, Tq, headSize]
}

/**
 * Attention over q [B, Tq, nHead·headSize], k and v [B, Tk, nHead·headSize] as the projections
 * give them, to [B, Tq, nHead·headSize]. Uses the fused sequence-major op, which reads heads
 * in place (no head transposes); only active attention dropout composes the steps.
 */
export function projectedAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  nHead: number,
  call: AttentionCall,
): tf.Tensor {
  const drop = call.dropout;
  if (!drop || !drop.training || drop.rate === 0) {
    return seqAttention(q, k, v, nHead, { mask: call.mask, bias: call.bias, causal: call.causal, scale: call.scale });
  }
  return mergeHeads(scaledDotProductAttention(splitHeads(q, nHead), splitHeads(k, nHead), splitHeads(v, nHead), call));
}

/** Keys and values of earlier positions, one entry per attention layer, for incremental decoding. */
export class KVCache {
  readonly #layers = new Map<string, { k: tf.Tensor; v: tf.Tensor }>();

  /** Number of cached positions for `layer` (0 when empty). */
  length(layer: string): number {
    return this.#layers.get(layer)?.k.shape[2] ?? 0;
  }

  get(layer: string): { k: tf.Tensor; v: tf.Tensor } | undefined {
    return this.#layers.get(layer);
  }

  /** Appends new keys/values [B, H, Tnew, D] along time and returns the full ones. */
  append(layer: string, k: tf.Tensor, v: tf.Tensor): { k: tf.Tensor; v: tf.Tensor } {
    const prior = this.#layers.get(layer);
    const full = prior ? { k: tf.concat([prior.k, k], 2), v: tf.concat([prior.v, v], 2) } : { k, v };
    this.#set(layer, full);
    return full;
  }

  /** Stores keys/values that never change (T5 cross-attention over the encoder output). */
  setStatic(layer: string, k: tf.Tensor, v: tf.Tensor): void {
    this.#set(layer, { k, v });
  }

  #set(layer: string, entry: { k: tf.Tensor; v: tf.Tensor }): void {
    const prior = this.#layers.get(layer);
    // Kept outside the caller's tidy so the cache survives the decoding step.
    const kept = { k: tf.keep(entry.k.clone()), v: tf.keep(entry.v.clone()) };
    this.#layers.set(layer, kept);
    if (prior) tf.dispose([prior.k, prior.v]);
  }

  dispose(): void {
    for (const entry of this.#layers.values()) tf.dispose([entry.k, entry.v]);
    this.#layers.clear();
  }
}
