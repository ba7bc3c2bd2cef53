import { Module, ModuleList, type Parameter, type Rng, TesseraError, dropout, tf, z } from '@tessera/tensor-core';
import { activation } from '../layers/activation.js';
import { projectedAttention } from '../layers/attention.js';
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

/** BERT's config.json, by HF field names. Unknown fields are kept. */
export const bertConfigSchema = z.looseObject({
  model_type: z.literal('bert').default('bert'),
  vocab_size: z.number().int().positive(),
  hidden_size: z.number().int().positive(),
  num_hidden_layers: z.number().int().positive(),
  num_attention_heads: z.number().int().positive(),
  intermediate_size: z.number().int().positive(),
  hidden_act: z.string().default('gelu'),
  hidden_dropout_prob: z.number().min(0).lt(1).default(0.1),
  attention_probs_dropout_prob: z.number().min(0).lt(1).default(0.1),
  max_position_embeddings: z.number().int().positive().default(512),
  type_vocab_size: z.number().int().positive().default(2),
  initializer_range: z.number().positive().default(0.02),
  layer_norm_eps: z.number().positive().default(1e-12),
  pad_token_id: z.number().int().default(0),
  num_labels: z.number().int().positive().default(2),
  classifier_dropout: z.number().min(0).lt(1).nullable().default(null),
});
export type BertConfig = z.output<typeof bertConfigSchema>;

export function parseBertConfig(raw: unknown): BertConfig {
  const config = parseHfConfig(bertConfigSchema, raw, 'BERT');
  if (config.hidden_size % config.num_attention_heads !== 0) {
    throw new TesseraError(
      `BERT config: hidden_size (${config.hidden_size}) must be divisible by num_attention_heads (${config.num_attention_heads}).`,
    );
  }
  activation(config.hidden_act);
  return config;
}

class BertEmbeddings extends Module {
  readonly word_embeddings: Embedding;
  readonly position_embeddings: Embedding;
  readonly token_type_embeddings: Embedding;
  readonly LayerNorm: LayerNorm;

  constructor(
    private readonly config: BertConfig,
    private readonly rng: Rng,
  ) {
    super();
    const { hidden_size: h, initializer_range: std } = config;
    this.word_embeddings = this.registerModule('word_embeddings', new Embedding(config.vocab_size, h, rng, std));
    this.position_embeddings = this.registerModule(
      'position_embeddings',
      new Embedding(config.max_position_embeddings, h, rng, std),
    );
    this.token_type_embeddings = this.registerModule(
      'token_type_embeddings',
      new Embedding(config.type_vocab_size, h, rng, std),
    );
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(h, config.layer_norm_eps));
  }

  forward(inputIds: tf.Tensor, tokenTypeIds: tf.Tensor | undefined): tf.Tensor {
    const T = inputIds.shape[1]!;
    if (T > this.config.max_position_embeddings) {
      throw new TesseraError(
        `BERT: sequence length ${T} exceeds max_position_embeddings = ${this.config.max_position_embeddings}.`,
      );
    }
    const types = tokenTypeIds ?? tf.zerosLike(inputIds);
    const summed = tf.add(
      tf.add(this.word_embeddings.forward(inputIds), this.token_type_embeddings.forward(types)),
      this.position_embeddings.forward(tf.range(0, T, 1, 'int32')),
    ); // [B, T, H]
    return dropout(this.LayerNorm.forward(summed), this.config.hidden_dropout_prob, this.rng, this.training);
  }
}

class BertSelfAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;

  constructor(
    private readonly config: BertConfig,
    private readonly rng: Rng,
  ) {
    super();
    const { hidden_size: h, initializer_range: std } = config;
    this.query = this.registerModule('query', new Linear(h, h, rng, { std }));
    this.key = this.registerModule('key', new Linear(h, h, rng, { std }));
    this.value = this.registerModule('value', new Linear(h, h, rng, { std }));
  }

  forward(x: tf.Tensor, mask: tf.Tensor | undefined): tf.Tensor {
    const n = this.config.num_attention_heads;
    // [B, T, H] each; heads are column ranges, read in place by the fused op
    return projectedAttention(this.query.forward(x), this.key.forward(x), this.value.forward(x), n, {
      mask,
      causal: false,
      scale: null,
      dropout: { rate: this.config.attention_probs_dropout_prob, rng: this.rng, training: this.training },
    }); // [B, T, H]
  }
}

/** dense -> dropout -> LayerNorm(x + residual): BERT's post-LN sublayer output. */
class BertResidualOutput extends Module {
  readonly dense: Linear;
  readonly LayerNorm: LayerNorm;

  constructor(
    inFeatures: number,
    private readonly config: BertConfig,
    private readonly rng: Rng,
  ) {
    super();
    this.dense = this.registerModule(
      'dense',
      new Linear(inFeatures, config.hidden_size, rng, { std: config.initializer_range }),
    );
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(config.hidden_size, config.layer_norm_eps));
  }

  forward(x: tf.Tensor, residual: tf.Tensor): tf.Tensor {
    const h = dropout(this.dense.forward(x), this.config.hidden_dropout_prob, this.rng, this.training);
    return this.LayerNorm.forward(tf.add(h, residual));
  }
}

class BertAttention extends Module {
  readonly self: BertSelfAttention;
  readonly output: BertResidualOutput;

  constructor(config: BertConfig, rng: Rng) {
    super();
    this.self = this.registerModule('self', new BertSelfAttention(config, rng));
    this.output = this.registerModule('output', new BertResidualOutput(config.hidden_size, config, rng));
  }

  forward(x: tf.Tensor, mask: tf.Tensor | undefined): tf.Tensor {
    return this.output.forward(this.self.forward(x, mask), x);
  }
}

class BertIntermediate extends Module {
  readonly dense: Linear;
  readonly #act: (x: tf.Tensor) => tf.Tensor;

  constructor(config: BertConfig, rng: Rng) {
    super();
    this.dense = this.registerModule(
      'dense',
      new Linear(config.hidden_size, config.intermediate_size, rng, { std: config.initializer_range }),
    );
    this.#act = activation(config.hidden_act);
  }

  forward(x: tf.Tensor): tf.Tensor {
    return this.#act(this.dense.forward(x));
  }
}

class BertLayer extends Module {
  readonly attention: BertAttention;
  readonly intermediate: BertIntermediate;
  readonly output: BertResidualOutput;

  constructor(config: BertConfig, rng: Rng) {
    super();
    this.attention = this.registerModule('attention', new BertAttention(config, rng));
    this.intermediate = this.registerModule('intermediate', new BertIntermediate(config, rng));
    this.output = this.registerModule('output', new BertResidualOutput(config.intermediate_size, config, rng));
  }

  forward(x: tf.Tensor, mask: tf.Tensor | undefined): tf.Tensor {
    const attended = this.attention.forward(x, mask); // [B, T, H]
    return this.output.forward(this.intermediate.forward(attended), attended);
  }
}

class BertEncoder extends Module {
  readonly layer: ModuleList<BertLayer>;

  constructor(config: BertConfig, rng: Rng) {
    super();
    this.layer = this.registerModule(
      'layer',
      new ModuleList(Array.from({ length: config.num_hidden_layers }, () => new BertLayer(config, rng))),
    );
  }

  forward(x: tf.Tensor, mask: tf.Tensor | undefined): tf.Tensor {
    for (const layer of this.layer) x = layer.forward(x, mask);
    return x;
  }
}

class BertPooler extends Module {
  readonly dense: Linear;

  constructor(config: BertConfig, rng: Rng) {
    super();
    this.dense = this.registerModule(
      'dense',
      new Linear(config.hidden_size, config.hidden_size, rng, { std: config.initializer_range }),
    );
  }

  /** tanh(dense(first token)) -> [B, H] */
  forward(hidden: tf.Tensor): tf.Tensor {
    const [B, , H] = hidden.shape as [number, number, number];
    const first = tf.reshape(tf.slice(hidden, [0, 0, 0], [B, 1, H]), [B, H]); // [B, H]
    return tf.tanh(this.dense.forward(first));
  }
}

/** The BERT trunk (HF `BertModel`, saved under `bert.`). */
export class BertModel extends Module {
  readonly embeddings: BertEmbeddings;
  readonly encoder: BertEncoder;
  readonly pooler: BertPooler | undefined;

  constructor(config: BertConfig, rng: Rng, options: { pooler: boolean }) {
    super();
    this.embeddings = this.registerModule('embeddings', new BertEmbeddings(config, rng));
    this.encoder = this.registerModule('encoder', new BertEncoder(config, rng));
    this.pooler = options.pooler ? this.registerModule('pooler', new BertPooler(config, rng)) : undefined;
  }

  forward(inputs: ModelInputs): { hidden: tf.Tensor; pooled: tf.Tensor | undefined } {
    requireInt('inputIds', inputs.inputIds, 2);
    requireInt('attentionMask', inputs.attentionMask, 2);
    requireInt('tokenTypeIds', inputs.tokenTypeIds, 2);
    const hidden = this.encoder.forward(
      this.embeddings.forward(inputs.inputIds, inputs.tokenTypeIds),
      inputs.attentionMask,
    );
    return { hidden, pooled: this.pooler?.forward(hidden) };
  }
}

class BertPredictionTransform extends Module {
  readonly dense: Linear;
  readonly LayerNorm: LayerNorm;
  readonly #act: (x: tf.Tensor) => tf.Tensor;

  constructor(config: BertConfig, rng: Rng) {
    super();
    this.dense = this.registerModule(
      'dense',
      new Linear(config.hidden_size, config.hidden_size, rng, { std: config.initializer_range }),
    );
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(config.hidden_size, config.layer_norm_eps));
    this.#act = activation(config.hidden_act);
  }

  forward(x: tf.Tensor): tf.Tensor {
    return this.LayerNorm.forward(this.#act(this.dense.forward(x)));
  }
}

/** transform (dense, act, LayerNorm), then the decoder tied to the word embeddings, plus a bias. */
class BertLMPredictionHead extends Module {
  readonly transform: BertPredictionTransform;
  readonly bias: Parameter;

  constructor(
    private readonly config: BertConfig,
    rng: Rng,
    private readonly wordEmbeddings: Embedding,
  ) {
    super();
    this.transform = this.registerModule('transform', new BertPredictionTransform(config, rng));
    this.bias = this.registerParameter('bias', tf.zeros([config.vocab_size]));
  }

  /** [B, T, H] -> [B, T, vocab] */
  forward(hidden: tf.Tensor): tf.Tensor {
    const h = this.transform.forward(hidden);
    const [B, T, H] = h.shape as [number, number, number];
    const scores = tf.matMul(tf.reshape(h, [B * T, H]), this.wordEmbeddings.weight.value, false, true); // [B*T, V]
    return tf.reshape(tf.add(scores, this.bias.value), [B, T, this.config.vocab_size]); // [B, T, V]
  }
}

class BertOnlyMLMHead extends Module {
  readonly predictions: BertLMPredictionHead;
  constructor(config: BertConfig, rng: Rng, wordEmbeddings: Embedding) {
    super();
    this.predictions = this.registerModule('predictions', new BertLMPredictionHead(config, rng, wordEmbeddings));
  }
}

class BertPreTrainingHeads extends Module {
  readonly predictions: BertLMPredictionHead;
  readonly seq_relationship: Linear;
  constructor(config: BertConfig, rng: Rng, wordEmbeddings: Embedding) {
    super();
    this.predictions = this.registerModule('predictions', new BertLMPredictionHead(config, rng, wordEmbeddings));
    this.seq_relationship = this.registerModule(
      'seq_relationship',
      new Linear(config.hidden_size, 2, rng, { std: config.initializer_range }),
    );
  }
}

/** MLM + next-sentence prediction (HF `BertForPreTraining`); loss = MLM loss + NSP loss. */
export class BertForPreTraining extends PretrainedModel {
  readonly architecture = 'BertForPreTraining';
  readonly bert: BertModel;
  readonly cls: BertPreTrainingHeads;

  constructor(
    readonly config: BertConfig,
    rng: Rng,
  ) {
    super(rng);
    this.bert = this.registerModule('bert', new BertModel(config, rng, { pooler: true }));
    this.cls = this.registerModule('cls', new BertPreTrainingHeads(config, rng, this.bert.embeddings.word_embeddings));
  }

  forward(inputs: ModelInputs): ModelOutput {
    const { hidden, pooled } = this.bert.forward(inputs);
    const logits = this.cls.predictions.forward(hidden); // [B, T, V]
    const seqRelationshipLogits = this.cls.seq_relationship.forward(pooled!); // [B, 2]
    const extras = { seqRelationshipLogits };
    if (!inputs.labels) return { logits, extras };
    requireInt('labels', inputs.labels, 2);
    let loss = lmLoss(logits, inputs.labels);
    if (inputs.nextSentenceLabel)
      loss = tf.add(loss, lmLoss(seqRelationshipLogits, tf.reshape(inputs.nextSentenceLabel, [-1])));
    return { logits, loss, extras };
  }
}

/** Masked LM alone (HF `BertForMaskedLM`: no pooler). */
export class BertForMaskedLM extends PretrainedModel {
  readonly architecture = 'BertForMaskedLM';
  readonly bert: BertModel;
  readonly cls: BertOnlyMLMHead;

  constructor(
    readonly config: BertConfig,
    rng: Rng,
  ) {
    super(rng);
    this.bert = this.registerModule('bert', new BertModel(config, rng, { pooler: false }));
    this.cls = this.registerModule('cls', new BertOnlyMLMHead(config, rng, this.bert.embeddings.word_embeddings));
  }

  forward(inputs: ModelInputs): ModelOutput {
    const logits = this.cls.predictions.forward(this.bert.forward(inputs).hidden);
    if (!inputs.labels) return { logits };
    return { logits, loss: lmLoss(logits, inputs.labels) };
  }
}

/** Pooler + dropout + classifier (HF `BertForSequenceClassification`). */
export class BertForSequenceClassification extends PretrainedModel {
  readonly architecture = 'BertForSequenceClassification';
  readonly bert: BertModel;
  readonly classifier: Linear;

  constructor(
    readonly config: BertConfig,
    rng: Rng,
  ) {
    super(rng);
    this.bert = this.registerModule('bert', new BertModel(config, rng, { pooler: true }));
    this.classifier = this.registerModule(
      'classifier',
      new Linear(config.hidden_size, config.num_labels, rng, { std: config.initializer_range }),
    );
  }

  forward(inputs: ModelInputs): ModelOutput {
    const pooled = this.bert.forward(inputs).pooled!;
    const rate = this.config.classifier_dropout ?? this.config.hidden_dropout_prob;
    const logits = this.classifier.forward(dropout(pooled, rate, this.rng, this.training)); // [B, numLabels]
    if (!inputs.labels) return { logits };
    return { logits, loss: classificationLoss(logits, inputs.labels, this.config.num_labels) };
  }
}

/**
 * Sentence embeddings for retrieval: the mean of the last hidden states over non-padding
 * tokens (sentence-transformers' mean pooling), [B, H], returned as `logits`.
 */
export class BertForEmbeddings extends PretrainedModel {
  readonly architecture = 'BertModel';
  readonly bert: BertModel;

  constructor(
    readonly config: BertConfig,
    rng: Rng,
  ) {
    super(rng);
    this.bert = this.registerModule('bert', new BertModel(config, rng, { pooler: false }));
  }

  forward(inputs: ModelInputs): ModelOutput {
    const { hidden } = this.bert.forward(inputs); // [B, T, H]
    const mask = inputs.attentionMask
      ? tf.cast(inputs.attentionMask, 'float32')
      : tf.onesLike(hidden).slice([0, 0, 0], [-1, -1, 1]).squeeze([2]);
    const summed = tf.sum(tf.mul(hidden, tf.expandDims(mask, 2)), 1); // [B, H]
    const counts = tf.maximum(tf.sum(mask, 1, true), 1e-9); // [B, 1]
    return { logits: tf.div(summed, counts) };
  }
}
