import { type PluginMeta, type Rng, registry, TesseraError, z } from '@tessera/tensor-core';
import { generateGpt, generateT5, type Seq2SeqOptions } from './generation.js';
import {
  BertForEmbeddings,
  BertForMaskedLM,
  BertForPreTraining,
  BertForSequenceClassification,
  bertConfigSchema,
  parseBertConfig,
} from './models/bert.js';
import type { PretrainedModel } from './models/common.js';
import { GPT2ForSequenceClassification, GPT2LMHeadModel, gptConfigSchema, parseGptConfig } from './models/gpt.js';
import { parseT5Config, T5ForConditionalGeneration, t5ConfigSchema } from './models/t5.js';

type Factory = (config: Record<string, unknown>, rng: Rng) => PretrainedModel;

/** How a head generates text from prompts of token ids; `run` returns the new ids. */
export interface Generator {
  /** true: the output continues the prompt (decoder-only); false: it answers it (encoder-decoder). */
  continuesPrompt: boolean;
  run(model: PretrainedModel, prompts: number[][], options: Seq2SeqOptions): Promise<number[][]>;
}

/** What a run knows that a new model's config may leave out. */
export interface RunFacts {
  vocabSize: number;
  /** Tokens per example (data.block_size). */
  blockSize: number;
}

/**
 * A model family as the registry holds it (`meta.family` of a `registry.model` entry):
 * everything the trainer and the HF importer need to know, declared by the model, so a
 * family from a plugin package loads, trains, resumes and exports like a built-in one.
 */
export interface ModelFamily {
  /** HF model_type written to and read from config.json. */
  modelType: string;
  /** Head name -> model factory. */
  heads: Record<string, Factory>;
  defaultHead: string;
  /** HF architecture name -> head name. */
  architectures: Record<string, string>;
  /** HF config fields (strict) a run config's model block may set. */
  configSchema?: z.ZodObject;
  /** Fields a new model takes from the run when its config leaves them out (vocabulary, position limit). */
  runFields?(run: RunFacts): Record<string, unknown>;
  /** Heads that generate text, and how. */
  generators?: Record<string, Generator>;
  /** The trunk's prefix in HF checkpoints (`transformer.`, `bert.`), absent in bare-trunk files. */
  trunkPrefix?: string;
  /** Non-parameter buffers that older HF checkpoints carry; skipped on import and reported. */
  buffers?: RegExp[];
}

export interface ModelMeta extends PluginMeta {
  family: ModelFamily;
  heads: string[];
}

/** Registers a family as a model: `model: { name, head?, ...HF fields }` in a config, and config.json import. */
export function registerModelFamily(
  name: string,
  family: ModelFamily,
  meta: { description?: string; package?: string; replace?: boolean } = {},
): void {
  const heads = Object.keys(family.heads) as [string, ...string[]];
  if (!heads.includes(family.defaultHead))
    throw new TesseraError(
      `Model family "${name}": defaultHead "${family.defaultHead}" is not among its heads (${heads.join(', ')}).`,
    );
  registry.model.register(
    name,
    (options: { head?: string } & Record<string, unknown>, rng: Rng) => {
      const { head, ...config } = options;
      return createModel(name, head, config, rng);
    },
    {
      description:
        meta.description ?? `${name} family (HF model_type "${family.modelType}"); heads: ${heads.join(', ')}`,
      ...(meta.package ? { package: meta.package } : {}),
      // The family's own schema validates the HF fields when the model is built.
      options: z.looseObject({ head: z.enum(heads).optional() }),
      heads,
      family,
    } satisfies ModelMeta,
    { replace: meta.replace ?? false },
  );
}

/** The family registered under `name` (a registry.model entry with family metadata). */
export function modelFamily(name: string): ModelFamily {
  const meta = registry.model.get(name).meta as Partial<ModelMeta>;
  if (!meta.family)
    throw new TesseraError(
      `Model "${name}" was registered without family metadata; register it with registerModelFamily() to load or save HF checkpoints.`,
    );
  return meta.family;
}

/** [registry name, family] for an HF model_type, from every registered family. */
export function familyByModelType(modelType: unknown): [string, ModelFamily] {
  const families = registry.model
    .entries()
    .flatMap((e) => ((e.meta as Partial<ModelMeta>).family ? [[e.name, (e.meta as ModelMeta).family] as const] : []));
  const found = families.find(([, f]) => f.modelType === modelType);
  if (!found) {
    throw new TesseraError(
      `config.json has model_type ${JSON.stringify(modelType)}; supported: ${families.map(([, f]) => f.modelType).join(', ')}. ` +
        'A model from another package must be imported (plugins:) before its checkpoints load.',
    );
  }
  return [found[0], found[1]];
}

/** The head a built model is, from its HF architecture name. */
export function headOf(model: PretrainedModel): { family: string; head: string } {
  const [name, family] = familyByModelType(model.config.model_type);
  const head = family.architectures[model.architecture];
  if (!head) throw new TesseraError(`${model.architecture} is not an architecture of the ${name} family.`);
  return { family: name, head };
}

/** How `model` generates text, or undefined when its head does not. */
export function generatorFor(model: PretrainedModel): Generator | undefined {
  const { family, head } = headOf(model);
  return modelFamily(family).generators?.[head];
}

/** Builds a family's model with the given head from HF config fields. */
export function createModel(
  family: string,
  head: string | undefined,
  config: Record<string, unknown>,
  rng: Rng,
): PretrainedModel {
  const f = modelFamily(family);
  const name = head ?? f.defaultHead;
  const factory = f.heads[name];
  if (!factory)
    throw new TesseraError(`The ${family} family has no head "${name}". Heads: ${Object.keys(f.heads).join(', ')}.`);
  return factory({ ...config, model_type: f.modelType }, rng);
}

/** The built-in families: GPT-2, BERT, T5. */
export function registerBuiltinFamilies(pkg: string): void {
  const families: Record<string, ModelFamily> = {
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
      configSchema: gptConfigSchema,
      runFields: (run) => ({ vocab_size: run.vocabSize, n_positions: run.blockSize }),
      generators: {
        'causal-lm': {
          continuesPrompt: true,
          run: (model, prompts, options) => generateGpt(model as GPT2LMHeadModel, prompts, options),
        },
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
      configSchema: bertConfigSchema,
      runFields: (run) => ({ vocab_size: run.vocabSize, max_position_embeddings: run.blockSize }),
      trunkPrefix: 'bert.',
      buffers: [
        /embeddings\.position_ids$/,
        /embeddings\.token_type_ids$/,
        /^cls\.predictions\.decoder\.(weight|bias)$/,
      ],
    },
    t5: {
      modelType: 't5',
      heads: { 'seq2seq-lm': (raw, rng) => new T5ForConditionalGeneration(parseT5Config(raw), rng) },
      defaultHead: 'seq2seq-lm',
      architectures: { T5ForConditionalGeneration: 'seq2seq-lm' },
      configSchema: t5ConfigSchema,
      generators: {
        'seq2seq-lm': {
          continuesPrompt: false,
          run: (model, prompts, options) => generateT5(model as T5ForConditionalGeneration, prompts, options),
        },
      },
      // Relative position buckets: T5 has no position limit to derive.
      runFields: (run) => ({ vocab_size: run.vocabSize }),
      // Tied copies of `shared`, written by some HF versions.
      buffers: [/^(encoder|decoder)\.embed_tokens\.weight$/],
    },
  };
  for (const [name, family] of Object.entries(families)) {
    if (!registry.model.has(name))
      registerModelFamily(name, family, {
        package: pkg,
        description: `${name.toUpperCase()} family (HF model_type "${family.modelType}"); heads: ${Object.keys(family.heads).join(', ')}`,
      });
  }
}
