// A BERT-shaped and a T5-shaped model for the benchmark, op for op the same as the PyTorch
// models in tools/bench-native/torch_bench.py (like gpt.mjs: self-contained, on
// tensor-core's Module and fused ops; @tessera/transformer holds the real BERT and T5).
//  - BERT-shaped: post-LN encoder, erf GELU, padding mask, MLM head tied to the word
//    embedding, loss on the 15% masked positions only (ignore index -100).
//  - T5-shaped: pre-RMSNorm encoder-decoder without biases, unscaled attention, ReLU FFN,
//    relative position bias (32 buckets) shared by the layers of a stack, cross-attention
//    under the encoder's padding mask, causal decoder.
import { attention, gelu, Module, ModuleList, Rng, rmsNorm, softmaxCrossEntropy, tf } from '@tessera/tensor-core';
import { LayerNorm, Linear, mergeHeads, splitHeads } from './gpt.mjs';

class BertLayer extends Module {
  constructor(rng, E) {
    super();
    this.qkv = this.registerModule('qkv', new Linear(rng, E, 3 * E));
    this.attnOut = this.registerModule('attn_out', new Linear(rng, E, E));
    this.ln1 = this.registerModule('ln_1', new LayerNorm(E));
    this.ffIn = this.registerModule('ff_in', new Linear(rng, E, 4 * E));
    this.ffOut = this.registerModule('ff_out', new Linear(rng, 4 * E, E));
    this.ln2 = this.registerModule('ln_2', new LayerNorm(E));
  }
  forward(x, mask, B, T, H) {
    const [q, k, v] = tf.split(this.qkv.forward(x), 3, 1).map((t) => splitHeads(t, B, T, H));
    const a = mergeHeads(attention(q, k, v, { mask }));
    const x1 = this.ln1.forward(tf.add(x, this.attnOut.forward(a)));
    return this.ln2.forward(tf.add(x1, this.ffOut.forward(gelu(this.ffIn.forward(x1), 'none'))));
  }
}

export class BertLike extends Module {
  /** cfg: { nLayer, nHead, nEmbd, seqLen, vocabSize }. */
  constructor(cfg, seed = 'bert') {
    super();
    const rng = new Rng(seed);
    const { nEmbd: E, vocabSize: V } = cfg;
    this.cfg = cfg;
    this.wordEmb = this.registerParameter('word_embeddings', rng.normalTensor([V, E], 0.02));
    this.posEmb = this.registerParameter('position_embeddings', rng.normalTensor([cfg.seqLen, E], 0.02));
    this.lnEmb = this.registerModule('ln_emb', new LayerNorm(E));
    this.layers = this.registerModule('layers', new ModuleList());
    for (let l = 0; l < cfg.nLayer; l++) this.layers.push(new BertLayer(rng, E));
    this.headDense = this.registerModule('head_dense', new Linear(rng, E, E));
    this.headLn = this.registerModule('head_ln', new LayerNorm(E));
    this.headBias = this.registerParameter('head_bias', tf.zeros([V]));
  }
  /** Masked-LM loss: idx, labels [B, T] int32 (labels -100 where not masked), mask [B, T] float 1/0. */
  loss({ idx, mask, labels }) {
    const [B, T] = idx.shape;
    const E = this.cfg.nEmbd;
    const tok = tf.reshape(tf.gather(this.wordEmb.value, tf.reshape(idx, [B * T])), [B, T, E]);
    const pos = tf.slice(this.posEmb.value, [0, 0], [T, E]);
    let x = this.lnEmb.forward(tf.reshape(tf.add(tok, pos), [B * T, E]));
    for (const layer of this.layers) x = layer.forward(x, mask, B, T, this.cfg.nHead);
    const h = this.headLn.forward(gelu(this.headDense.forward(x), 'none'));
    const logits = tf.add(tf.matMul(h, this.wordEmb.value, false, true), this.headBias.value); // [B*T, V]
    return softmaxCrossEntropy(logits, tf.reshape(labels, [B * T]), { ignoreIndex: -100 });
  }
}

class RmsNorm extends Module {
  constructor(features) {
    super();
    this.gamma = this.registerParameter('weight', tf.ones([features]));
  }
  forward(x) {
    return rmsNorm(x, this.gamma.value, 1e-6);
  }
}

/** T5's bucket of relative position k - q (bidirectional: 16 buckets a side; causal: 32 backwards). */
export function relativeBucket(relative, bidirectional, numBuckets = 32, maxDistance = 128) {
  let buckets = numBuckets;
  let offset = 0;
  let n;
  if (bidirectional) {
    buckets /= 2;
    if (relative > 0) offset = buckets;
    n = Math.abs(relative);
  } else {
    n = Math.max(-relative, 0);
  }
  const maxExact = buckets / 2;
  if (n < maxExact) return offset + n;
  const large =
    maxExact + Math.floor((Math.log(n / maxExact) / Math.log(maxDistance / maxExact)) * (buckets - maxExact));
  return offset + Math.min(large, buckets - 1);
}

/** [Tq·Tk] int32 bucket ids, row-major over (query, key). */
function bucketIds(Tq, Tk, bidirectional) {
  const ids = new Int32Array(Tq * Tk);
  for (let i = 0; i < Tq; i++) for (let j = 0; j < Tk; j++) ids[i * Tk + j] = relativeBucket(j - i, bidirectional);
  return tf.tensor1d(ids, 'int32');
}

class T5Attention extends Module {
  /** Self-attention projects q, k, v from x; cross-attention projects k, v from the encoder output. */
  constructor(rng, E, cross) {
    super();
    const noBias = { bias: false };
    this.cross = cross;
    if (cross) {
      this.q = this.registerModule('q', new Linear(rng, E, E, 0.02, noBias));
      this.kv = this.registerModule('kv', new Linear(rng, E, 2 * E, 0.02, noBias));
    } else {
      this.qkv = this.registerModule('qkv', new Linear(rng, E, 3 * E, 0.02, noBias));
    }
    this.o = this.registerModule('o', new Linear(rng, E, E, 0.02, noBias));
  }
  forward(x, context, { B, Tq, Tk, H, mask, bias, causal }) {
    let q;
    let k;
    let v;
    if (this.cross) {
      q = splitHeads(this.q.forward(x), B, Tq, H);
      [k, v] = tf.split(this.kv.forward(context), 2, 1).map((t) => splitHeads(t, B, Tk, H));
    } else {
      [q, k, v] = tf.split(this.qkv.forward(x), 3, 1).map((t) => splitHeads(t, B, Tq, H));
    }
    return this.o.forward(mergeHeads(attention(q, k, v, { mask, bias, causal, scale: 1 })));
  }
}

class T5Layer extends Module {
  constructor(rng, E, F, decoder) {
    super();
    const noBias = { bias: false };
    this.lnSelf = this.registerModule('ln_self', new RmsNorm(E));
    this.self = this.registerModule('self', new T5Attention(rng, E, false));
    if (decoder) {
      this.lnCross = this.registerModule('ln_cross', new RmsNorm(E));
      this.crossAttn = this.registerModule('cross', new T5Attention(rng, E, true));
    }
    this.lnFf = this.registerModule('ln_ff', new RmsNorm(E));
    this.wi = this.registerModule('wi', new Linear(rng, E, F, 0.02, noBias));
    this.wo = this.registerModule('wo', new Linear(rng, F, E, 0.02, noBias));
  }
  forward(x, ctx) {
    x = tf.add(x, this.self.forward(this.lnSelf.forward(x), null, ctx.self));
    if (this.crossAttn) x = tf.add(x, this.crossAttn.forward(this.lnCross.forward(x), ctx.encoded, ctx.cross));
    return tf.add(x, this.wo.forward(tf.relu(this.wi.forward(this.lnFf.forward(x)))));
  }
}

export class T5Like extends Module {
  /** cfg: { nLayer (per stack), nHead, nEmbd, dFf, encLen, decLen, vocabSize }. */
  constructor(cfg, seed = 't5') {
    super();
    const rng = new Rng(seed);
    const { nEmbd: E, dFf: F, nHead: H } = cfg;
    this.cfg = cfg;
    this.shared = this.registerParameter('shared', rng.normalTensor([cfg.vocabSize, E], 0.02));
    this.encBias = this.registerParameter('enc_rel_bias', rng.normalTensor([32, H], 0.02));
    this.decBias = this.registerParameter('dec_rel_bias', rng.normalTensor([32, H], 0.02));
    this.encoder = this.registerModule('encoder', new ModuleList());
    this.decoder = this.registerModule('decoder', new ModuleList());
    for (let l = 0; l < cfg.nLayer; l++) {
      this.encoder.push(new T5Layer(rng, E, F, false));
      this.decoder.push(new T5Layer(rng, E, F, true));
    }
    this.encLn = this.registerModule('enc_ln', new RmsNorm(E));
    this.decLn = this.registerModule('dec_ln', new RmsNorm(E));
    this.lmHead = this.registerModule('lm_head', new Linear(rng, E, cfg.vocabSize, 0.02, { bias: false }));
    // Bucket ids depend only on the lengths: computed once, not per step.
    this.encBuckets = bucketIds(cfg.encLen, cfg.encLen, true);
    this.decBuckets = bucketIds(cfg.decLen, cfg.decLen, false);
  }
  /** [1, nHead, Tq, Tk] relative position bias from a [32, nHead] table. */
  positionBias(table, buckets, Tq, Tk) {
    const H = this.cfg.nHead;
    const perPair = tf.reshape(tf.gather(table, buckets), [Tq, Tk, H]); // [Tq, Tk, H]
    return tf.reshape(tf.transpose(perPair, [2, 0, 1]), [1, H, Tq, Tk]); // [1, H, Tq, Tk]
  }
  embed(ids) {
    const [B, T] = ids.shape;
    return tf.gather(this.shared.value, tf.reshape(ids, [B * T])); // [B*T, E]
  }
  /** Seq2seq loss: inputs [B, Tenc] with mask [B, Tenc]; decoder inputs and labels [B, Tdec]. */
  loss({ inputs, mask, decoderInputs, labels }) {
    const [B, Te] = inputs.shape;
    const Td = decoderInputs.shape[1];
    const H = this.cfg.nHead;
    const encSelf = {
      B,
      Tq: Te,
      Tk: Te,
      H,
      mask,
      bias: this.positionBias(this.encBias.value, this.encBuckets, Te, Te),
    };
    let x = this.embed(inputs);
    for (const layer of this.encoder) x = layer.forward(x, { self: encSelf });
    const encoded = this.encLn.forward(x);
    const decSelf = {
      B,
      Tq: Td,
      Tk: Td,
      H,
      causal: true,
      bias: this.positionBias(this.decBias.value, this.decBuckets, Td, Td),
    };
    const cross = { B, Tq: Td, Tk: Te, H, mask };
    let y = this.embed(decoderInputs);
    for (const layer of this.decoder) y = layer.forward(y, { self: decSelf, cross, encoded });
    const logits = this.lmHead.forward(this.decLn.forward(y)); // [B*Td, V]
    return softmaxCrossEntropy(logits, tf.reshape(labels, [B * Td]), { ignoreIndex: -100 });
  }
  dispose() {
    this.encBuckets.dispose();
    this.decBuckets.dispose();
    super.dispose();
  }
}

/** Padding: rows 1, 3, 5, ... end with `padFraction` of their length masked out. */
function paddingMask(B, T, padFraction) {
  const mask = new Float32Array(B * T).fill(1);
  const pad = Math.floor(T * padFraction);
  for (let b = 1; b < B; b += 2) mask.fill(0, b * T + T - pad, (b + 1) * T);
  return mask;
}

/** A deterministic masked-LM batch: 15% of the unpadded positions carry a label. */
export function bertBatch(cfg, B, seed) {
  const rng = new Rng(seed);
  const T = cfg.seqLen;
  const idx = Int32Array.from({ length: B * T }, () => rng.int(cfg.vocabSize));
  const mask = paddingMask(B, T, 0.125);
  const labels = Int32Array.from(idx, (t, i) => (mask[i] && rng.uniform() < 0.15 ? t : -100));
  return {
    idx: tf.tensor2d(idx, [B, T], 'int32'),
    mask: tf.tensor2d(mask, [B, T]),
    labels: tf.tensor2d(labels, [B, T], 'int32'),
    arrays: { idx, mask, labels },
  };
}

/** A deterministic seq2seq batch: random inputs (padded like bertBatch), random targets. */
export function t5Batch(cfg, B, seed) {
  const rng = new Rng(seed);
  const { encLen: Te, decLen: Td, vocabSize: V } = cfg;
  const inputs = Int32Array.from({ length: B * Te }, () => rng.int(V));
  const mask = paddingMask(B, Te, 0.125);
  const labels = Int32Array.from({ length: B * Td }, () => rng.int(V));
  // Decoder inputs: labels shifted right behind a start token 0.
  const decoderInputs = Int32Array.from(labels, (_, i) => (i % Td === 0 ? 0 : labels[i - 1]));
  return {
    inputs: tf.tensor2d(inputs, [B, Te], 'int32'),
    mask: tf.tensor2d(mask, [B, Te]),
    decoderInputs: tf.tensor2d(decoderInputs, [B, Td], 'int32'),
    labels: tf.tensor2d(labels, [B, Td], 'int32'),
    arrays: { inputs, mask, decoderInputs, labels },
  };
}
