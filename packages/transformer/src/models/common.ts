import { Module, type Rng, TesseraError, formatIssues, softmaxCrossEntropy, tf, type z } from '@tessera/tensor-core';

/** What every model's forward returns. */
export interface ModelOutput {
  logits: tf.Tensor;
  /** Present when labels were given. */
  loss?: tf.Scalar;
  /** Extra outputs (e.g. BERT's next-sentence logits, T5's encoder states). */
  extras?: Record<string, tf.Tensor>;
}

/** Inputs by HF names (camelCased). Integer tensors are int32. */
export interface ModelInputs {
  inputIds: tf.Tensor;
  attentionMask?: tf.Tensor | undefined;
  tokenTypeIds?: tf.Tensor | undefined;
  labels?: tf.Tensor | undefined;
  /** BERT pretraining: [B], 0 = B follows A, 1 = random. */
  nextSentenceLabel?: tf.Tensor | undefined;
  /** T5: decoder inputs; built from labels (shifted right) when absent. */
  decoderInputIds?: tf.Tensor | undefined;
  decoderAttentionMask?: tf.Tensor | undefined;
}

/** Model inputs as HF names them (a tokenizer's or a dataset's output), as nested id arrays. */
export type HfModelInputs = Partial<
  Record<
    | 'input_ids'
    | 'attention_mask'
    | 'token_type_ids'
    | 'labels'
    | 'next_sentence_label'
    | 'decoder_input_ids'
    | 'decoder_attention_mask',
    number[] | number[][]
  >
>;

/** HF-named id arrays -> int32 tensors under Tessera's names (the caller disposes them). */
export function modelInputsFromHf(raw: HfModelInputs): ModelInputs {
  if (!raw.input_ids) throw new TesseraError('modelInputsFromHf: input_ids is required.');
  const t = (v: number[] | number[][] | undefined) => (v ? tf.tensor(v, undefined, 'int32') : undefined);
  return {
    inputIds: t(raw.input_ids)!,
    attentionMask: t(raw.attention_mask),
    tokenTypeIds: t(raw.token_type_ids),
    labels: t(raw.labels),
    nextSentenceLabel: t(raw.next_sentence_label),
    decoderInputIds: t(raw.decoder_input_ids),
    decoderAttentionMask: t(raw.decoder_attention_mask),
  };
}

/** Disposes every tensor of `inputs`. */
export function disposeModelInputs(inputs: ModelInputs): void {
  tf.dispose(Object.values(inputs).filter((v): v is tf.Tensor => v instanceof tf.Tensor));
}

/** A model the trainer and the HF importer can drive. */
export abstract class PretrainedModel extends Module {
  /** HF `architectures[0]`, e.g. GPT2LMHeadModel. */
  abstract readonly architecture: string;
  /** The HF config.json document this model was built from. */
  abstract readonly config: Record<string, unknown>;
  abstract forward(inputs: ModelInputs): ModelOutput;

  /** Draws dropout masks; its state is part of an exact resume. */
  constructor(readonly rng: Rng) {
    super();
  }
}

/** Mean cross-entropy over positions whose label is not -100 (HF's ignore index). */
export function lmLoss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return softmaxCrossEntropy(logits, labels, { ignoreIndex: -100, reduction: 'mean' });
}

/** HF's sequence-classification loss: regression (MSE) for one label, otherwise cross-entropy. */
export function classificationLoss(logits: tf.Tensor, labels: tf.Tensor, numLabels: number): tf.Scalar {
  if (numLabels === 1) {
    return tf.mean(tf.square(tf.sub(tf.reshape(logits, [-1]), tf.cast(tf.reshape(labels, [-1]), 'float32'))));
  }
  return softmaxCrossEntropy(logits, tf.cast(tf.reshape(labels, [-1]), 'int32'), { ignoreIndex: -100 });
}

export function requireInt(name: string, t: tf.Tensor | undefined, rank?: number): void {
  if (!t) return;
  if (t.dtype !== 'int32') throw new TesseraError(`${name} must be int32; got ${t.dtype}.`);
  if (rank !== undefined && t.rank !== rank) {
    throw new TesseraError(`${name} must have rank ${rank} ([batch, seqLen]); got shape [${t.shape.join(', ')}].`);
  }
}

/** Validates an HF config document against a family schema; every problem is listed with its path. */
export function parseHfConfig<S extends z.ZodType>(schema: S, raw: unknown, family: string): z.output<S> {
  // HF derives num_labels from id2label when only the latter is written.
  let doc = raw;
  if (doc && typeof doc === 'object' && !('num_labels' in doc) && 'id2label' in doc) {
    const labels = (doc as { id2label: unknown }).id2label;
    if (labels && typeof labels === 'object') doc = { ...doc, num_labels: Object.keys(labels).length };
  }
  const result = schema.safeParse(doc);
  if (!result.success) throw new TesseraError(`Invalid ${family} config:\n${formatIssues(result.error.issues, doc)}`);
  return result.data;
}
