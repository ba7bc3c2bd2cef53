import { Module, ModuleList, type Rng, TesseraError, dropout, packedAttention, tf, z } from '@tessera/tensor-core';
import { activation } from '../layers/activation.js';
import { type KVCache, mergeHeads, scaledDotProductAttention, splitHeads } from '../layers/attention.js';
import { Embedding, Linear } from '../layers/linear.js';
import { LayerNorm } from '../layers/norm.js';
import {
  classificationLoss,
  lmLoss,
  type ModelInputs,
  type ModelOutput,
  PretrainedModel,
  parseHfConfig,
  requireInt,
} from './common.js';

/** GPT-2's config.json, by HF field names. Unknown fields are kept. */
export const gptConfigSchema = z.looseObject({
  model_type: z.literal('gpt2').default('gpt2'),
  vocab_size: z.number().int().positive(),
  n_positions: z.number().int().positive().default(1024),
  n_embd: z.number().int().positive(),
  n_layer: z.number().int().positive(),
  n_head: z.number().int().positive(),
  n_inner: z.number().int().positive().nullable().default(null),
  activation_function: z.string().default('gelu_new'),
  resid_pdrop: z.number().min(0).lt(1).default(0.1),
  embd_pdrop: z.number().min(0).lt(1).default(0.1),
  attn_pdrop: z.number().min(0).lt(1).default(0.1),
  layer_norm_epsilon: z.number().positive().default(1e-5),
  initializer_range: z.number().positive().default(0.02),
  tie_word_embeddings: z.boolean().default(true),
  num_labels: z.number().int().positive().default(2),
  pad_token_id: z.number().int().nullable().default(null),
  bos_token_id: z.number().int().nullable().default(50256),
  eos_token_id: z.number().int().nullable().default(50256),
});
export type GptConfig = z.output<typeof gptConfigSchema>;

export function parseGptConfig(raw: unknown): GptConfig {
  const config = parseHfConfig(gptConfigSchema, raw, 'GPT');
  if (config.n_embd % config.n_head !== 0) {
    throw new TesseraError(`GPT config: n_embd (${config.n_embd}) must be divisible by n_head (${config.n_head}).`);
  }
  activation(config.activation_function);
  return config;
}

class GPT2Attention extends Module {
  readonly c_attn: Linear;
  readonly c_proj: Linear;

  constructor(
    private readonly config: GptConfig,
    private readonly rng: Rng,
  ) {
    super();
    const { n_embd, initializer_range: std, n_layer } = config;
    this.c_attn = this.registerModule('c_attn', new Linear(n_embd, 3 * n_embd, rng, { layout: 'inOut', std }));
    // GPT-2 scales the residual projections by 1/sqrt(2·n_layer) at initialisation.
    const residualStd = std / Math.sqrt(2 * n_layer);
    this.c_proj = this.registerModule('c_proj', new Linear(n_embd, n_embd, rng, { layout: 'inOut', std: residualStd }));
  }

  forward(x: tf.Tensor, mask: tf.Tensor | undefined, cache: KVCache | undefined, layer: string): tf.Tensor {
    const qkv = this.c_attn.forward(x); // [B, T, 3C]
    const { attn_pdrop, n_head } = this.config;
    if (!cache && (!this.training || attn_pdrop === 0)) {
      // Training and full-sequence scoring: attention reads the heads straight from the packed
      // projection and writes them merged, so no split / head transposes / concat (nor their
      // gradients) run. Decoding with a cache, or attention dropout, takes the general path.
      const y = packedAttention(qkv, n_head, { mask, causal: true }); // [B, T, C]
      return dropout(this.c_proj.forward(y), this.config.resid_pdrop, this.rng, this.training);
    }
    const [q, k, v] = tf.split(qkv, 3, 2).map((t) => splitHeads(t, n_head)) as [tf.Tensor, tf.Tensor, tf.Tensor]; // [B, nHead, T, headSize]
    const full = cache ? cache.append(layer, k, v) : { k, v };
    const y = scaledDotProductAttention(q, full.k, full.v, {
      mask,
      causal: true,
      scale: null,
      dropout: { rate: attn_pdrop, rng: this.rng, training: this.training },
    }); // [B, nHead, T, headSize]
    const out = this.c_proj.forward(mergeHeads(y)); // [B, T, C]
    return dropout(out, this.config.resid_pdrop, this.rng, this.training);
  }
}

class GPT2MLP extends Module {
  readonly c_fc: Linear;
  readonly c_proj: Linear;
  readonly #act: (x: tf.Tensor) => tf.Tensor;

  constructor(
    private readonly config: GptConfig,
    private readonly rng: Rng,
  ) {
    super();
    const inner = config.n_inner ?? 4 * config.n_embd;
    const std = config.initializer_range;
    this.c_fc = this.registerModule('c_fc', new Linear(config.n_embd, inner, rng, { layout: 'inOut', std }));
    this.c_proj = this.registerModule(
      'c_proj',
      new Linear(inner, config.n_embd, rng, { layout: 'inOut', std: std / Math.sqrt(2 * config.n_layer) }),
    );
    this.#act = activation(config.activation_function);
  }

  forward(x: tf.Tensor): tf.Tensor {
    const h = this.#act(this.c_fc.forward(x)); // [B, T, inner]
    return dropout(this.c_proj.forward(h), this.config.resid_pdrop, this.rng, this.training);
  }
}

/** Pre-LN block: x + attn(ln_1(x)); x + mlp(ln_2(x)). */
class GPT2Block extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: GPT2Attention;
  readonly ln_2: LayerNorm;
  readonly mlp: GPT2MLP;

  constructor(config: GptConfig, rng: Rng) {
    super();
    this.ln_1 = this.registerModule('ln_1', new LayerNorm(config.n_embd, config.layer_norm_epsilon));
    this.attn = this.registerModule('attn', new GPT2Attention(config, rng));
    this.ln_2 = this.registerModule('ln_2', new LayerNorm(config.n_embd, config.layer_norm_epsilon));
    this.mlp = this.registerModule('mlp', new GPT2MLP(config, rng));
  }

  forward(x: tf.Tensor, mask: tf.Tensor | undefined, cache: KVCache | undefined, layer: string): tf.Tensor {
    const afterAttn = tf.add(x, this.attn.forward(this.ln_1.forward(x), mask, cache, layer));
    return tf.add(afterAttn, this.mlp.forward(this.ln_2.forward(afterAttn)));
  }
}

/** The GPT-2 trunk (HF `GPT2Model`, saved under `transformer.`). */
export class GPT2Model extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly h: ModuleList<GPT2Block>;
  readonly ln_f: LayerNorm;

  constructor(
    readonly config: GptConfig,
    private readonly rng: Rng,
  ) {
    super();
    const { vocab_size, n_positions, n_embd, initializer_range: std } = config;
    this.wte = this.registerModule('wte', new Embedding(vocab_size, n_embd, rng, std));
    this.wpe = this.registerModule('wpe', new Embedding(n_positions, n_embd, rng, std / 2));
    this.h = this.registerModule(
      'h',
      new ModuleList(Array.from({ length: config.n_layer }, () => new GPT2Block(config, rng))),
    );
    this.ln_f = this.registerModule('ln_f', new LayerNorm(n_embd, config.layer_norm_epsilon));
  }

  /** Hidden states [B, T, n_embd]; with a cache, positions continue after the cached ones. */
  forward(inputIds: tf.Tensor, attentionMask?: tf.Tensor, cache?: KVCache): tf.Tensor {
    requireInt('inputIds', inputIds, 2);
    requireInt('attentionMask', attentionMask, 2);
    const T = inputIds.shape[1]!;
    const past = cache?.length('h.0') ?? 0;
    if (past + T > this.config.n_positions) {
      throw new TesseraError(`GPT: ${past + T} positions exceed n_positions = ${this.config.n_positions}.`);
    }
    if (attentionMask && attentionMask.shape[1] !== past + T) {
      throw new TesseraError(
        `GPT: attentionMask covers ${attentionMask.shape[1]} positions; expected ${past + T} (cached + new).`,
      );
    }
    const positions = tf.range(past, past + T, 1, 'int32'); // [T]
    const embedded = tf.add(this.wte.forward(inputIds), this.wpe.forward(positions)); // [B, T, C]
    let x = dropout(embedded, this.config.embd_pdrop, this.rng, this.training);
    this.h.items.forEach((block, i) => {
      x = block.forward(x, attentionMask, cache, `h.${i}`);
    });
    return this.ln_f.forward(x); // [B, T, C]
  }
}

/** GPT-2 with the causal-LM head tied to the token embedding (HF `GPT2LMHeadModel`). */
export class GPT2LMHeadModel extends PretrainedModel {
  readonly architecture = 'GPT2LMHeadModel';
  readonly transformer: GPT2Model;
  readonly lm_head: Linear | undefined;

  constructor(
    readonly config: GptConfig,
    rng: Rng,
  ) {
    super(rng);
    this.transformer = this.registerModule('transformer', new GPT2Model(config, rng));
    this.lm_head = config.tie_word_embeddings
      ? undefined
      : this.registerModule('lm_head', new Linear(config.n_embd, config.vocab_size, rng, { bias: false }));
  }

  /** Logits [B, T, vocab]; given labels [B, T], the next-token loss (labels shifted inside, as HF does). */
  forward(inputs: ModelInputs & { cache?: KVCache }): ModelOutput {
    const hidden = this.transformer.forward(inputs.inputIds, inputs.attentionMask, inputs.cache); // [B, T, C]
    const [B, T] = hidden.shape as [number, number, number];
    const logits = this.lm_head
      ? this.lm_head.forward(hidden)
      : tf.reshape(
          tf.matMul(tf.reshape(hidden, [B * T, this.config.n_embd]), this.transformer.wte.weight.value, false, true),
          [B, T, this.config.vocab_size],
        ); // [B, T, V]
    if (!inputs.labels) return { logits };
    requireInt('labels', inputs.labels, 2);
    if (T < 2) return { logits, loss: tf.scalar(0) };
    const shiftedLogits = tf.slice(logits, [0, 0, 0], [B, T - 1, this.config.vocab_size]); // [B, T-1, V]
    const shiftedLabels = tf.slice(inputs.labels, [0, 1], [B, T - 1]); // [B, T-1]
    return { logits, loss: lmLoss(shiftedLogits, shiftedLabels) };
  }
}

/** GPT-2 with a classification head on the last non-padding token (HF `GPT2ForSequenceClassification`). */
export class GPT2ForSequenceClassification extends PretrainedModel {
  readonly architecture = 'GPT2ForSequenceClassification';
  readonly transformer: GPT2Model;
  readonly score: Linear;

  constructor(
    readonly config: GptConfig,
    rng: Rng,
  ) {
    super(rng);
    this.transformer = this.registerModule('transformer', new GPT2Model(config, rng));
    this.score = this.registerModule(
      'score',
      new Linear(config.n_embd, config.num_labels, rng, { bias: false, std: config.initializer_range }),
    );
  }

  forward(inputs: ModelInputs): ModelOutput {
    const hidden = this.transformer.forward(inputs.inputIds, inputs.attentionMask); // [B, T, C]
    const [B, T] = inputs.inputIds.shape as [number, number];
    // Last real token = count of non-padding ids − 1 (right padding); without a pad id, the last position.
    const padId = this.config.pad_token_id;
    const lengths =
      padId === null ? tf.fill([B], T, 'int32') : tf.sum(tf.cast(tf.notEqual(inputs.inputIds, padId), 'int32'), 1); // [B]
    const last = tf.maximum(tf.sub(lengths, 1), 0); // [B]
    const pick = tf.cast(tf.equal(tf.expandDims(last, 1), tf.expandDims(tf.range(0, T, 1, 'int32'), 0)), 'float32'); // [B, T]
    const pooled = tf.sum(tf.mul(hidden, tf.expandDims(pick, 2)), 1); // [B, C]
    const logits = this.score.forward(pooled); // [B, numLabels]
    if (!inputs.labels) return { logits };
    return { logits, loss: classificationLoss(logits, inputs.labels, this.config.num_labels) };
  }
}
