import { type Rng, TesseraError } from '@tessera/tensor-core';
import {
  BertForEmbeddings,
  BertForMaskedLM,
  BertForPreTraining,
  BertForSequenceClassification,
  parseBertConfig,
} from './models/bert.js';
import type { PretrainedModel } from './models/common.js';
import { GPT2ForSequenceClassification, GPT2LMHeadModel, parseGptConfig } from './models/gpt.js';
import { T5ForConditionalGeneration, parseT5Config } from './models/t5.js';

type Factory = (config: Record<string, unknown>, rng: Rng) => PretrainedModel;

export interface Family {
  /** HF model_type. */
  modelType: string;
  /** Head name -> model factory. */
  heads: Record<string, Factory>;
  defaultHead: string;
  /** HF architecture name -> head name. */
  architectures: Record<string, string>;
  /** The trunk's prefix in HF checkpoints (`transformer.`, `bert.`), absent in bare-trunk files. */
  trunkPrefix?: string;
  /** Non-parameter buffers that older HF checkpoints carry; skipped on import and reported. */
  buffers: RegExp[];
}

/** The built-in families by registry name. */
export const FAMILIES: Record<string, Family> = {
  gpt: {
    modelType: 'gpt2',
    heads: {
      'causal-lm': (raw, rng) => new GPT2LMHeadModel(parseGptConfig(raw), rng),
      'sequence-classification': (raw, rng) => new GPT2ForSequenceClassification(parseGptConfig(raw), rng),
    },
    defaultHead: 'causal-lm',
    architectures: {
      GPT2LMHeadModel: 'causal-lm',
      GPT2Model: 'causal-lm',
      GPT2ForSequenceClassification: 'sequence-classification',
    },
    trunkPrefix: 'transformer.',
    buffers: [/\.attn\.bias$/, /\.attn\.masked_bias$/],
  },
  bert: {
    modelType: 'bert',
    heads: {
      pretraining: (raw, rng) => new BertForPreTraining(parseBertConfig(raw), rng),
      'masked-lm': (raw, rng) => new BertForMaskedLM(parseBertConfig(raw), rng),
      'sequence-classification': (raw, rng) => new BertForSequenceClassification(parseBertConfig(raw), rng),
      embeddings: (raw, rng) => new BertForEmbeddings(parseBertConfig(raw), rng),
    },
    defaultHead: 'pretraining',
    architectures: {
      BertForPreTraining: 'pretraining',
      BertForMaskedLM: 'masked-lm',
      BertForSequenceClassification: 'sequence-classification',
      BertModel: 'embeddings',
    },
    trunkPrefix: 'bert.',
    buffers: [/embeddings\.position_ids$/, /embeddings\.token_type_ids$/, /^cls\.predictions\.decoder\.(weight|bias)$/],
  },
  t5: {
    modelType: 't5',
    heads: { 'seq2seq-lm': (raw, rng) => new T5ForConditionalGeneration(parseT5Config(raw), rng) },
    defaultHead: 'seq2seq-lm',
    architectures: { T5ForConditionalGeneration: 'seq2seq-lm' },
    // Tied copies of `shared`, written by some HF versions.
    buffers: [/^(encoder|decoder)\.embed_tokens\.weight$/],
  },
};

export function familyByModelType(modelType: unknown): [string, Family] {
  const found = Object.entries(FAMILIES).find(([, f]) => f.modelType === modelType);
  if (!found) {
    const known = Object.values(FAMILIES).map((f) => f.modelType);
    throw new TesseraError(`config.json has model_type ${JSON.stringify(modelType)}; supported: ${known.join(', ')}.`);
  }
  return found;
}

/** Builds a family's model with the given head from HF config fields. */
export function createModel(
  family: string,
  head: string | undefined,
  config: Record<string, unknown>,
  rng: Rng,
): PretrainedModel {
  const f = FAMILIES[family];
  if (!f) throw new TesseraError(`Unknown model family "${family}". Known: ${Object.keys(FAMILIES).join(', ')}.`);
  const name = head ?? f.defaultHead;
  const factory = f.heads[name];
  if (!factory)
    throw new TesseraError(`The ${family} family has no head "${name}". Heads: ${Object.keys(f.heads).join(', ')}.`);
  return factory({ ...config, model_type: f.modelType }, rng);
}
