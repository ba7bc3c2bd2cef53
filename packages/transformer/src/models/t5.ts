import { Module, ModuleList, type Rng, TesseraError, dropout, tf, z } from '@tessera/tensor-core';
import { activation } from '../layers/activation.js';
import {
  type KVCache,
  mergeHeads,
  projectedAttention,
  scaledDotProductAttention,
  splitHeads,
} from '../layers/attention.js';
import { Embedding, Linear } from '../layers/linear.js';
import { RMSNorm } from '../layers/norm.js';
import { relativePositionBuckets } from '../layers/relative_position.js';
import { lmLoss, type ModelInputs, type ModelOutput, PretrainedModel, parseHfConfig, requireInt } from './common.js';

/** T5's config.json, by HF field names (v1.0: relu + tied; v1.1: gated-gelu + untied). */
export const t5ConfigSchema = z.looseObject({
  model_type: z.literal('t5').default('t5'),
  vocab_size: z.number().int().positive(),
  d_model: z.number().int().positive(),
  d_kv: z.number().int().positive(),
  d_ff: z.number().int().positive(),
  num_layers: z.number().int().positive(),
  num_decoder_layers: z.number().int().positive().nullable().default(null),
  num_heads: z.number().int().positive(),
  relative_attention_num_buckets: z.number().int().positive().default(32),
  relative_attention_max_distance: z.number().int().positive().default(128),
  dropout_rate: z.number().min(0).lt(1).default(0.1),
  layer_norm_epsilon: z.number().positive().default(1e-6),
  initializer_factor: z.number().positive().default(1),
  feed_forward_proj: z.string().default('relu'),
  tie_word_embeddings: z.boolean().default(true),
  decoder_start_token_id: z.number().int().default(0),
  pad_token_id: z.number().int().default(0),
  eos_token_id: z.number().int().default(1),
});
export type T5Config = z.output<typeof t5ConfigSchema>;

/** HF maps "gated-gelu" to gelu_new (tanh); other names map to themselves. */
function feedForward(config: T5Config): { gated: boolean; act: (x: tf.Tensor) => tf.Tensor } {
  const proj = config.feed_forward_proj;
  const gated = proj.startsWith('gated-');
  const name = gated ? proj.slice(6) : proj;
  return { gated, act: activation(gated && name === 'gelu' ? 'gelu_new' : name) };
}

export function parseT5Config(raw: unknown): T5Config {
  const config = parseHfConfig(t5ConfigSchema, raw, 'T5');
  feedForward(config); // validates feed_forward_proj
  return config;
}

class T5Attention extends Module {
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly o: Linear;
  readonly relative_attention_bias: Embedding | undefined;

  constructor(
    private readonly config: T5Config,
    private readonly rng: Rng,
    private readonly isDecoder: boolean,
    hasRelativeBias: boolean,
  ) {
    super();
    const { d_model, d_kv, num_heads, initializer_factor: f } = config;
    const inner = num_heads * d_kv;
    // HF's T5 initialisation (mesh-tensorflow), scaled by fan-in; it replaces 1/sqrt(d_kv) in the scores.
    this.q = this.registerModule(
      'q',
      new Linear(d_model, inner, rng, { bias: false, std: f * (d_model * d_kv) ** -0.5 }),
    );
    this.k = this.registerModule('k', new Linear(d_model, inner, rng, { bias: false, std: f * d_model ** -0.5 }));
    this.v = this.registerModule('v', new Linear(d_model, inner, rng, { bias: false, std: f * d_model ** -0.5 }));
    this.o = this.registerModule('o', new Linear(inner, d_model, rng, { bias: false, std: f * inner ** -0.5 }));
    this.relative_attention_bias = hasRelativeBias
      ? this.registerModule(
          'relative_attention_bias',
          new Embedding(config.relative_attention_num_buckets, num_heads, rng, f * d_model ** -0.5),
        )
      : undefined;
  }

  /** Position bias [1, nHead, queryLen, keyLen] for queries starting at `queryStart`. */
  positionBias(queryStart: number, queryLen: number, keyLen: number): tf.Tensor {
    if (!this.relative_attention_bias)
      throw new TesseraError('T5: this attention layer has no relative_attention_bias.');
    const buckets = relativePositionBuckets(
      queryStart,
      queryLen,
      keyLen,
      !this.isDecoder,
      this.config.relative_attention_num_buckets,
      this.config.relative_attention_max_distance,
    );
    const values = this.relative_attention_bias.forward(tf.tensor2d(buckets, [queryLen, keyLen], 'int32')); // [Tq, Tk, nHead]
    return tf.expandDims(tf.transpose(values, [2, 0, 1]), 0); // [1, nHead, Tq, Tk]
  }

  forward(
    x: tf.Tensor,
    options: {
      keyValue?: tf.Tensor;
      mask?: tf.Tensor | undefined;
      bias?: tf.Tensor;
      causal: boolean;
      cache?: KVCache | undefined;
      cacheKey?: string;
      /** Keys/values that do not grow (cross-attention): computed once, then reused from the cache. */
      staticKeyValue?: boolean;
    },
  ): tf.Tensor {
    const n = this.config.num_heads;
    const dropoutCall = { rate: this.config.dropout_rate, rng: this.rng, training: this.training };
    if (!options.cache) {
      // Training and full-sequence scoring: the fused op reads heads straight from the
      // projections [B, T, nHead·d_kv] (no head transposes); decoding keeps heads-first caches.
      const source = options.keyValue ?? x;
      const y = projectedAttention(this.q.forward(x), this.k.forward(source), this.v.forward(source), n, {
        mask: options.mask,
        bias: options.bias,
        causal: options.causal,
        scale: 1,
        dropout: dropoutCall,
      }); // [B, Tq, nHead·d_kv]
      return this.o.forward(y); // [B, Tq, d_model]
    }
    const q = splitHeads(this.q.forward(x), n); // [B, nHead, Tq, d_kv]
    const cacheKey = options.cacheKey ?? '';
    const cached = options.cache?.get(cacheKey);
    let k: tf.Tensor;
    let v: tf.Tensor;
    if (options.staticKeyValue && cached) {
      ({ k, v } = cached);
    } else {
      const source = options.keyValue ?? x;
      k = splitHeads(this.k.forward(source), n); // [B, nHead, Tk, d_kv]
      v = splitHeads(this.v.forward(source), n);
      if (options.cache) {
        if (options.staticKeyValue) options.cache.setStatic(cacheKey, k, v);
        else ({ k, v } = options.cache.append(cacheKey, k, v));
      }
    }
    const y = scaledDotProductAttention(q, k, v, {
      mask: options.mask,
      bias: options.bias,
      causal: options.causal,
      scale: 1,
      dropout: dropoutCall,
    });
    return this.o.forward(mergeHeads(y)); // [B, Tq, d_model]
  }
}

class T5LayerSelfAttention extends Module {
  readonly SelfAttention: T5Attention;
  readonly layer_norm: RMSNorm;

  constructor(
    private readonly config: T5Config,
    private readonly rng: Rng,
    isDecoder: boolean,
    hasRelativeBias: boolean,
  ) {
    super();
    this.SelfAttention = this.registerModule('SelfAttention', new T5Attention(config, rng, isDecoder, hasRelativeBias));
    this.layer_norm = this.registerModule('layer_norm', new RMSNorm(config.d_model, config.layer_norm_epsilon));
  }

  forward(
    x: tf.Tensor,
    mask: tf.Tensor | undefined,
    bias: tf.Tensor,
    causal: boolean,
    cache?: KVCache,
    key?: string,
  ): tf.Tensor {
    const h = this.SelfAttention.forward(this.layer_norm.forward(x), {
      mask,
      bias,
      causal,
      cache,
      ...(key ? { cacheKey: key } : {}),
    });
    return tf.add(x, dropout(h, this.config.dropout_rate, this.rng, this.training));
  }
}

class T5LayerCrossAttention extends Module {
  readonly EncDecAttention: T5Attention;
  readonly layer_norm: RMSNorm;

  constructor(
    private readonly config: T5Config,
    private readonly rng: Rng,
  ) {
    super();
    this.EncDecAttention = this.registerModule('EncDecAttention', new T5Attention(config, rng, true, false));
    this.layer_norm = this.registerModule('layer_norm', new RMSNorm(config.d_model, config.layer_norm_epsilon));
  }

  forward(
    x: tf.Tensor,
    encoded: tf.Tensor,
    encoderMask: tf.Tensor | undefined,
    cache?: KVCache,
    key?: string,
  ): tf.Tensor {
    const h = this.EncDecAttention.forward(this.layer_norm.forward(x), {
      keyValue: encoded,
      mask: encoderMask,
      causal: false,
      cache,
      ...(key ? { cacheKey: key } : {}),
      staticKeyValue: true,
    });
    return tf.add(x, dropout(h, this.config.dropout_rate, this.rng, this.training));
  }
}

class T5DenseActDense extends Module {
  readonly wi: Linear;
  readonly wo: Linear;

  constructor(
    private readonly config: T5Config,
    private readonly rng: Rng,
    private readonly act: (x: tf.Tensor) => tf.Tensor,
  ) {
    super();
    const { d_model, d_ff, initializer_factor: f } = config;
    this.wi = this.registerModule('wi', new Linear(d_model, d_ff, rng, { bias: false, std: f * d_model ** -0.5 }));
    this.wo = this.registerModule('wo', new Linear(d_ff, d_model, rng, { bias: false, std: f * d_ff ** -0.5 }));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return this.wo.forward(dropout(this.act(this.wi.forward(x)), this.config.dropout_rate, this.rng, this.training));
  }
}

class T5DenseGatedActDense extends Module {
  readonly wi_0: Linear;
  readonly wi_1: Linear;
  readonly wo: Linear;

  constructor(
    private readonly config: T5Config,
    private readonly rng: Rng,
    private readonly act: (x: tf.Tensor) => tf.Tensor,
  ) {
    super();
    const { d_model, d_ff, initializer_factor: f } = config;
    this.wi_0 = this.registerModule('wi_0', new Linear(d_model, d_ff, rng, { bias: false, std: f * d_model ** -0.5 }));
    this.wi_1 = this.registerModule('wi_1', new Linear(d_model, d_ff, rng, { bias: false, std: f * d_model ** -0.5 }));
    this.wo = this.registerModule('wo', new Linear(d_ff, d_model, rng, { bias: false, std: f * d_ff ** -0.5 }));
  }

  forward(x: tf.Tensor): tf.Tensor {
    const gated = tf.mul(this.act(this.wi_0.forward(x)), this.wi_1.forward(x)); // [B, T, d_ff]
    return this.wo.forward(dropout(gated, this.config.dropout_rate, this.rng, this.training));
  }
}

class T5LayerFF extends Module {
  readonly DenseReluDense: T5DenseActDense | T5DenseGatedActDense;
  readonly layer_norm: RMSNorm;

  constructor(
    private readonly config: T5Config,
    private readonly rng: Rng,
  ) {
    super();
    const { gated, act } = feedForward(config);
    this.DenseReluDense = this.registerModule(
      'DenseReluDense',
      gated ? new T5DenseGatedActDense(config, rng, act) : new T5DenseActDense(config, rng, act),
    );
    this.layer_norm = this.registerModule('layer_norm', new RMSNorm(config.d_model, config.layer_norm_epsilon));
  }

  forward(x: tf.Tensor): tf.Tensor {
    const h = this.DenseReluDense.forward(this.layer_norm.forward(x));
    return tf.add(x, dropout(h, this.config.dropout_rate, this.rng, this.training));
  }
}

class T5Block extends Module {
  readonly layer: ModuleList;
  readonly selfAttention: T5LayerSelfAttention;
  readonly crossAttention: T5LayerCrossAttention | undefined;
  readonly feedForward: T5LayerFF;

  constructor(config: T5Config, rng: Rng, isDecoder: boolean, hasRelativeBias: boolean) {
    super();
    this.selfAttention = new T5LayerSelfAttention(config, rng, isDecoder, hasRelativeBias);
    this.crossAttention = isDecoder ? new T5LayerCrossAttention(config, rng) : undefined;
    this.feedForward = new T5LayerFF(config, rng);
    // HF numbers the sublayers: 0 self-attention, (1 cross-attention), last feed-forward.
    const sublayers: Module[] = [
      this.selfAttention,
      ...(this.crossAttention ? [this.crossAttention] : []),
      this.feedForward,
    ];
    this.layer = this.registerModule('layer', new ModuleList(sublayers));
  }
}

/** Encoder or decoder stack (HF `T5Stack`); the token embedding is the model's shared one. */
class T5Stack extends Module {
  readonly block: ModuleList<T5Block>;
  readonly final_layer_norm: RMSNorm;

  constructor(
    private readonly config: T5Config,
    private readonly rng: Rng,
    private readonly isDecoder: boolean,
    private readonly embedTokens: Embedding,
  ) {
    super();
    const layers = isDecoder ? (config.num_decoder_layers ?? config.num_layers) : config.num_layers;
    // Only the first block owns the relative position bias; the others reuse it.
    this.block = this.registerModule(
      'block',
      new ModuleList(Array.from({ length: layers }, (_, i) => new T5Block(config, rng, isDecoder, i === 0))),
    );
    this.final_layer_norm = this.registerModule(
      'final_layer_norm',
      new RMSNorm(config.d_model, config.layer_norm_epsilon),
    );
  }

  forward(
    inputIds: tf.Tensor,
    mask: tf.Tensor | undefined,
    encoded?: { hidden: tf.Tensor; mask: tf.Tensor | undefined },
    cache?: KVCache,
  ): tf.Tensor {
    const T = inputIds.shape[1]!;
    const past = cache?.length('self.0') ?? 0;
    let x = dropout(this.embedTokens.forward(inputIds), this.config.dropout_rate, this.rng, this.training); // [B, T, d_model]
    const bias = this.block.items[0]!.selfAttention.SelfAttention.positionBias(past, T, past + T); // [1, nHead, T, past+T]
    this.block.items.forEach((block, i) => {
      x = block.selfAttention.forward(x, mask, bias, this.isDecoder, cache, `self.${i}`);
      if (block.crossAttention && encoded)
        x = block.crossAttention.forward(x, encoded.hidden, encoded.mask, cache, `cross.${i}`);
      x = block.feedForward.forward(x);
    });
    return dropout(this.final_layer_norm.forward(x), this.config.dropout_rate, this.rng, this.training);
  }
}

/** T5 encoder-decoder with the seq2seq LM head (HF `T5ForConditionalGeneration`). */
export class T5ForConditionalGeneration extends PretrainedModel {
  readonly architecture = 'T5ForConditionalGeneration';
  readonly shared: Embedding;
  readonly encoder: T5Stack;
  readonly decoder: T5Stack;
  readonly lm_head: Linear | undefined;

  constructor(
    readonly config: T5Config,
    rng: Rng,
  ) {
    super(rng);
    const f = config.initializer_factor;
    this.shared = this.registerModule('shared', new Embedding(config.vocab_size, config.d_model, rng, f));
    this.encoder = this.registerModule('encoder', new T5Stack(config, rng, false, this.shared));
    this.decoder = this.registerModule('decoder', new T5Stack(config, rng, true, this.shared));
    this.lm_head = config.tie_word_embeddings
      ? undefined
      : this.registerModule('lm_head', new Linear(config.d_model, config.vocab_size, rng, { bias: false, std: f }));
  }

  /** Encoder hidden states [B, Tenc, d_model]. */
  encode(inputIds: tf.Tensor, attentionMask?: tf.Tensor): tf.Tensor {
    requireInt('inputIds', inputIds, 2);
    requireInt('attentionMask', attentionMask, 2);
    return this.encoder.forward(inputIds, attentionMask);
  }

  /** Decoder logits [B, Tdec, vocab] given encoder states; with a cache, only the new decoder tokens are fed. */
  decode(
    decoderInputIds: tf.Tensor,
    encoded: tf.Tensor,
    encoderMask: tf.Tensor | undefined,
    cache?: KVCache,
    decoderMask?: tf.Tensor,
  ): tf.Tensor {
    requireInt('decoderInputIds', decoderInputIds, 2);
    const hidden = this.decoder.forward(decoderInputIds, decoderMask, { hidden: encoded, mask: encoderMask }, cache);
    const { d_model, vocab_size } = this.config;
    if (this.lm_head) return this.lm_head.forward(hidden);
    // Tied head: mesh-tensorflow rescales the decoder output by d_model^-0.5 first.
    const [B, T] = hidden.shape as [number, number, number];
    const scaled = tf.reshape(tf.mul(hidden, d_model ** -0.5), [B * T, d_model]); // [B*T, d_model]
    return tf.reshape(tf.matMul(scaled, this.shared.weight.value, false, true), [B, T, vocab_size]); // [B, T, V]
  }

  /** labels shifted right behind the decoder start token, -100 replaced by the pad id (HF `_shift_right`). */
  shiftRight(labels: tf.Tensor): tf.Tensor {
    const [B, T] = labels.shape as [number, number];
    const start = tf.fill([B, 1], this.config.decoder_start_token_id, 'int32');
    const shifted = tf.concat([start, tf.slice(labels, [0, 0], [B, T - 1])], 1); // [B, T]
    return tf.where(tf.equal(shifted, -100), tf.fill([B, T], this.config.pad_token_id, 'int32'), shifted);
  }

  forward(inputs: ModelInputs): ModelOutput {
    const encoded = this.encode(inputs.inputIds, inputs.attentionMask);
    let decoderIds = inputs.decoderInputIds;
    if (!decoderIds) {
      if (!inputs.labels)
        throw new TesseraError('T5: give decoderInputIds or labels (decoder inputs are built from labels).');
      requireInt('labels', inputs.labels, 2);
      decoderIds = this.shiftRight(inputs.labels);
    }
    const logits = this.decode(decoderIds, encoded, inputs.attentionMask, undefined, inputs.decoderAttentionMask);
    const extras = { encoderHidden: encoded };
    if (!inputs.labels) return { logits, extras };
    return { logits, loss: lmLoss(logits, inputs.labels), extras };
  }
}
