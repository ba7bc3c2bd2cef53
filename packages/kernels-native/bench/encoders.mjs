// The benchmark's BERT-shaped and T5-shaped models: @tessera/transformer's BertForMaskedLM
// and T5ForConditionalGeneration, configured to compute what the BertLike and T5Like models
// of tools/bench-native/torch_bench.py compute (dropout off everywhere).
//  - BERT: post-LN encoder, erf GELU, padding mask, MLM head tied to the word embedding,
//    loss on the 15% masked positions only (ignore index -100).
//  - T5 v1.0 layout: pre-RMSNorm encoder-decoder without biases, unscaled attention, ReLU
//    FFN, relative position bias (32 buckets) shared by the layers of a stack,
//    cross-attention under the encoder's padding mask, causal decoder, untied LM head.
import { Rng, tf } from '@tessera/tensor-core';
import { BertForMaskedLM, parseBertConfig, parseT5Config, T5ForConditionalGeneration } from '@tessera/transformer';

export class BertLike extends BertForMaskedLM {
  /** cfg: { nLayer, nHead, nEmbd, seqLen, vocabSize }. */
  constructor(cfg, seed = 'bert') {
    const config = parseBertConfig({
      vocab_size: cfg.vocabSize,
      hidden_size: cfg.nEmbd,
      num_hidden_layers: cfg.nLayer,
      num_attention_heads: cfg.nHead,
      intermediate_size: 4 * cfg.nEmbd,
      hidden_act: 'gelu',
      hidden_dropout_prob: 0,
      attention_probs_dropout_prob: 0,
      max_position_embeddings: cfg.seqLen,
      type_vocab_size: 2,
    });
    super(config, new Rng(seed));
    this.cfg = cfg;
  }
  /** Masked-LM loss: idx, labels [B, T] int32 (labels -100 where not masked), mask [B, T] int32 1/0. */
  loss({ idx, mask, labels }) {
    return this.forward({ inputIds: idx, attentionMask: mask, labels }).loss;
  }
}

export class T5Like extends T5ForConditionalGeneration {
  /** cfg: { nLayer (per stack), nHead, nEmbd, dFf, encLen, decLen, vocabSize }. */
  constructor(cfg, seed = 't5') {
    const config = parseT5Config({
      vocab_size: cfg.vocabSize,
      d_model: cfg.nEmbd,
      d_kv: cfg.nEmbd / cfg.nHead,
      d_ff: cfg.dFf,
      num_layers: cfg.nLayer,
      num_heads: cfg.nHead,
      relative_attention_num_buckets: 32,
      relative_attention_max_distance: 128,
      dropout_rate: 0,
      feed_forward_proj: 'relu',
      tie_word_embeddings: false,
    });
    super(config, new Rng(seed));
    this.cfg = cfg;
  }
  /** Seq2seq loss: inputs [B, Tenc] with mask [B, Tenc]; decoder inputs and labels [B, Tdec]. */
  loss({ inputs, mask, decoderInputs, labels }) {
    return this.forward({ inputIds: inputs, attentionMask: mask, decoderInputIds: decoderInputs, labels }).loss;
  }
}

/** Padding: rows 1, 3, 5, ... end with `padFraction` of their length masked out. */
function paddingMask(B, T, padFraction) {
  const mask = new Int32Array(B * T).fill(1);
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
    mask: tf.tensor2d(mask, [B, T], 'int32'),
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
    mask: tf.tensor2d(mask, [B, Te], 'int32'),
    decoderInputs: tf.tensor2d(decoderInputs, [B, Td], 'int32'),
    labels: tf.tensor2d(labels, [B, Td], 'int32'),
    arrays: { inputs, mask, decoderInputs, labels },
  };
}
