import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  type DatasetContext,
  type DatasetReport,
  type Example,
  isPretokenized,
  isValidation,
  type Objective,
  type PreparedObjective,
  type PretokenizedDataset,
  type TextRecord,
  TextPipeline,
  type TextStep,
  Tokenizer,
  type TokenizerContext,
} from '@tessera/data';
import { type Rng, registry, TesseraError } from '@tessera/tensor-core';
import { loadPretrained, type ModelMeta, type PretrainedModel } from '@tessera/transformer';
import type { RunConfig } from './config.js';
import { modelFields } from './validate.js';

export class TaskError extends TesseraError {}

export interface DataReport {
  trainRecords: number;
  validationRecords: number;
  trainExamples: number;
  validationExamples: number;
  /** Bad records skipped, by reason (when on_bad_input is "skip"), and records dropped by preprocess steps. */
  skipped: Record<string, number>;
  /** Tokens dropped because a record was longer than block_size (truncation), counted, never silent. */
  truncatedTokens: number;
  /** Tokens in the training examples. */
  trainTokens: number;
}

export interface Splits {
  train: TextRecord[];
  validation: TextRecord[];
  skipped: Record<string, number>;
  /** Pre-tokenized data (token shards) instead of records: windows are read on demand. */
  tokens?: { train: PretokenizedDataset; validation?: PretokenizedDataset };
}

/** Examples by index: an array in memory, or windows read from token shards on demand. */
export interface ExampleSet {
  readonly length: number;
  get(i: number): Example;
}

export function exampleArray(examples: readonly Example[]): ExampleSet {
  return { length: examples.length, get: (i) => examples[i]! };
}

export function seedNumber(seed: number | string): number {
  return typeof seed === 'number' ? seed : [...seed].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7);
}

/** The objective named in the config, from the registry. */
export function createObjective(config: RunConfig): Objective {
  const { name, ...options } = config.objective;
  return registry.objective.create(name, options) as Objective;
}

async function readDataset(
  dataset: AsyncIterable<TextRecord> & { report?: DatasetReport },
  pipeline: TextPipeline,
): Promise<{ records: TextRecord[]; skipped: Record<string, number> }> {
  const records: TextRecord[] = [];
  for await (const r of dataset) {
    const text = pipeline.apply(r.text);
    if (text !== null) records.push(text === r.text ? r : { ...r, text });
  }
  return { records, skipped: { ...dataset.report?.skipped } };
}

/** What the preprocess steps dropped, over every split they cleaned. */
function droppedBySteps(pipeline: TextPipeline): Record<string, number> {
  return Object.fromEntries(pipeline.report().flatMap((r) => (r.removed ? [[`dropped by ${r.step}`, r.removed]] : [])));
}

function createDataset(block: RunConfig['data']['train'], context: DatasetContext): unknown {
  const { name, ...options } = block;
  return registry.dataset.create(name, options, context);
}

/** Training and validation records: a validation set when given, else a seeded held-out share. */
export async function loadSplits(config: RunConfig, objective: Objective): Promise<Splits> {
  const context: DatasetContext = objective.recordLabel ? { recordLabel: objective.recordLabel } : {};
  const trainSet = createDataset(config.data.train, context);
  if (isPretokenized(trainSet)) {
    const validation = config.data.validation ? createDataset(config.data.validation, context) : undefined;
    if (validation !== undefined && !isPretokenized(validation))
      throw new TaskError('data.train is pre-tokenized, so data.validation must be too (e.g. token-shards).');
    if (config.data.preprocess.length)
      throw new TaskError(
        'data.preprocess cleans text; data.train is already tokens. Clean the text before writing the shards.',
      );
    return {
      train: [],
      validation: [],
      skipped: {},
      tokens: { train: trainSet, ...(validation ? { validation } : {}) },
    };
  }
  // One pipeline for both splits: a dedup step also drops validation records seen in training.
  const pipeline = new TextPipeline(
    config.data.preprocess.map(({ name, ...o }) => registry.preprocess.create(name, o) as TextStep),
  );
  await pipeline.init();
  const train = await readDataset(trainSet as AsyncIterable<TextRecord>, pipeline);
  const skipped = { ...train.skipped };
  if (config.data.validation) {
    const validation = await readDataset(
      createDataset(config.data.validation, context) as AsyncIterable<TextRecord>,
      pipeline,
    );
    for (const [k, v] of Object.entries({ ...validation.skipped, ...droppedBySteps(pipeline) }))
      skipped[k] = (skipped[k] ?? 0) + v;
    return { train: train.records, validation: validation.records, skipped };
  }
  Object.assign(skipped, droppedBySteps(pipeline));
  const seed =
    typeof config.seed === 'number' ? config.seed : [...config.seed].reduce((a, c) => a + c.charCodeAt(0), 0);
  const fraction = config.data.validation_fraction;
  const out: Splits = { train: [], validation: [], skipped };
  train.records.forEach((r, i) => {
    (fraction > 0 && isValidation(i, fraction, seed) ? out.validation : out.train).push(r);
  });
  return out;
}

/** The run's tokenizer: the checkpoint's when resuming, else the registered one named in the config. */
export async function createTokenizer(config: RunConfig, splits: Splits, checkpoint?: string): Promise<Tokenizer> {
  if (checkpoint && existsSync(join(checkpoint, 'tokenizer.json')))
    return Tokenizer.fromFile(join(checkpoint, 'tokenizer.json'));
  const { name, ...options } = config.tokenizer;
  const context: TokenizerContext = {
    corpus: () => {
      if (splits.tokens)
        throw new TaskError(
          `tokenizer "${name}" would be trained on text, but data.train is already tokens: name the tokenizer.json the shards were written with ({ name: hf-json, path }).`,
        );
      return splits.train.map((r) => r.text);
    },
  };
  return (await registry.tokenizer.create(name, options, context)) as Tokenizer;
}

export interface PreparedData {
  objective: PreparedObjective;
  train: ExampleSet;
  validation: ExampleSet;
  report: DataReport;
}

/** Records -> examples through the objective (or token windows, for pre-tokenized data), every drop and truncation counted. */
export function prepareData(
  config: RunConfig,
  objective: Objective,
  tokenizer: Tokenizer,
  splits: Splits,
  rng: Rng,
): PreparedData {
  if (!splits.tokens && !splits.train.length)
    throw new TaskError(`No training records in ${String(config.data.train.path ?? config.data.train.name)}.`);
  const prepared = objective.prepare({
    tokenizer,
    blockSize: config.data.block_size,
    targetBlockSize: config.data.target_block_size,
    rng,
    trainRecords: splits.train,
  });
  if (splits.tokens) return tokenData(config, objective, prepared, splits.tokens);
  const train = prepared.examples(splits.train);
  const validation = splits.validation.length ? prepared.examples(splits.validation) : [];
  if (!train.length) {
    throw new TaskError(
      `The training data gave no ${objective.name} examples (too little text for block_size ${config.data.block_size}?).`,
    );
  }
  return {
    objective: prepared,
    train: exampleArray(train),
    validation: exampleArray(validation),
    report: {
      trainRecords: splits.train.length,
      validationRecords: splits.validation.length,
      trainExamples: train.length,
      validationExamples: validation.length,
      trainTokens: train.reduce((n, e) => n + e.ids.length, 0),
      skipped: splits.skipped,
      truncatedTokens: prepared.truncatedTokens,
    },
  };
}

/**
 * Token windows as examples, read on demand. Without separate validation shards, a seeded
 * share of the windows is held out (validation_fraction), as for records.
 */
function tokenData(
  config: RunConfig,
  objective: Objective,
  prepared: PreparedObjective,
  tokens: NonNullable<Splits['tokens']>,
): PreparedData {
  const spec = prepared.fromTokens;
  if (!spec)
    throw new TaskError(
      `objective "${objective.name}" builds its examples from text records; token shards train causal-lm or span-corruption.`,
    );
  const windowsOf = (d: PretokenizedDataset) => d.windows(spec.size, spec.overlap);
  const all = windowsOf(tokens.train);
  const asSet = (w: ReturnType<typeof windowsOf>, index?: Uint32Array): ExampleSet =>
    index
      ? { length: index.length, get: (i) => spec.example(w.get(index[i]!)) }
      : { length: w.length, get: (i) => spec.example(w.get(i)) };
  let train: ExampleSet;
  let validation: ExampleSet;
  if (tokens.validation) {
    train = asSet(all);
    validation = asSet(windowsOf(tokens.validation));
  } else {
    const fraction = config.data.validation_fraction;
    const seed = seedNumber(config.seed);
    // Window indices in 4 bytes each: a corpus of billions of tokens keeps its index small.
    const isHeld = (i: number) => fraction > 0 && isValidation(i, fraction, seed);
    let heldCount = 0;
    for (let i = 0; i < all.length; i++) if (isHeld(i)) heldCount++;
    const held = new Uint32Array(heldCount);
    const kept = new Uint32Array(all.length - heldCount);
    for (let i = 0, h = 0, k = 0; i < all.length; i++) {
      if (isHeld(i)) held[h++] = i;
      else kept[k++] = i;
    }
    train = asSet(all, kept);
    validation = asSet(all, held);
  }
  if (!train.length)
    throw new TaskError(`The token shards hold ${tokens.train.length} tokens: not one window of ${spec.size}.`);
  return {
    objective: prepared,
    train,
    validation,
    report: {
      trainRecords: 0,
      validationRecords: 0,
      trainExamples: train.length,
      validationExamples: validation.length,
      trainTokens: train.length * spec.size,
      skipped: all.dropped ? { 'tokens after the last full window': all.dropped } : {},
      truncatedTokens: 0,
    },
  };
}

/**
 * The model config fields of a run: the config's own, then what the objective implies
 * (num_labels), then what the model family takes from the run (vocabulary, position limit).
 */
function runModelConfig(
  config: RunConfig,
  tokenizer: Tokenizer,
  objective: PreparedObjective,
): Record<string, unknown> {
  const meta = registry.model.get(config.model.name).meta as Partial<ModelMeta>;
  const derived = meta.family?.runFields?.({ vocabSize: tokenizer.getVocabSize(), blockSize: config.data.block_size });
  return { ...derived, ...objective.modelConfig, ...modelFields(config.model) };
}

/** A new model, one started `from` an HF directory, or the checkpoint's being resumed. */
export function createRunModel(
  config: RunConfig,
  tokenizer: Tokenizer,
  objective: PreparedObjective,
  rng: Rng,
  checkpoint: string | undefined,
  resolveFrom: (path: string) => string,
): PretrainedModel {
  const seed = seedNumber(config.seed);
  const head = config.model.head;
  if (checkpoint) return loadPretrained(checkpoint, { ...(head ? { head } : {}), seed }).model;
  if (config.model.from) {
    return loadPretrained(resolveFrom(config.model.from), {
      ...(head ? { head } : {}),
      ...(config.model.allow_missing ? { allowMissing: config.model.allow_missing } : {}),
      ...(config.model.ignore_unexpected ? { ignoreUnexpected: config.model.ignore_unexpected } : {}),
      configOverrides: runModelConfig(config, tokenizer, objective),
      seed,
    }).model;
  }
  const options = { ...runModelConfig(config, tokenizer, objective), ...(head ? { head } : {}) };
  return registry.model.create(config.model.name, options, rng) as PretrainedModel;
}
