import {
  type Batch,
  ClassificationCollator,
  CausalLmCollator,
  MlmCollator,
  nextSentencePairs,
  Seq2SeqCollator,
  SpanCorruptionCollator,
  sentinelIdsOf,
  TextDataset,
  type TextRecord,
  type Tokenizer,
  isValidation,
} from '@tessera/data';
import { type Rng, TesseraError } from '@tessera/tensor-core';
import type { RunConfig } from './config.js';

/** One training example, already tokenized. */
export interface Example {
  ids: number[];
  typeIds?: number[];
  /** classification: the label name. */
  label?: string;
  /** seq2seq: target ids. */
  target?: number[];
  /** mlm with next-sentence prediction: 0 = B follows A, 1 = random B. */
  nsp?: 0 | 1;
}

/** A collated batch plus what the loss needs beyond HF model inputs. */
export interface TaskBatch extends Batch {
  classLabels?: number[];
}

export interface DataReport {
  trainRecords: number;
  validationRecords: number;
  trainExamples: number;
  validationExamples: number;
  /** Bad records skipped, by reason (when on_bad_input is "skip"). */
  skipped: Record<string, number>;
  /** Tokens dropped because a record was longer than block_size (truncation), counted, never silent. */
  truncatedTokens: number;
}

/**
 * An objective adapted to the trainer: it turns records into examples, and examples into
 * batches with the registered collators of @tessera/data.
 */
export interface Task {
  readonly objective: string;
  /** causal-lm: the trainer computes the loss from logits against already-shifted labels. */
  readonly lossFromLogits: boolean;
  /** Labels are per example (classification) rather than per token. */
  readonly labelsPerExample: boolean;
  readonly labelNames?: string[];
  collate(examples: Example[], rng: Rng): TaskBatch;
}

export class TaskError extends TesseraError {}

async function readRecords(
  spec: RunConfig['data']['train'],
  objective: string,
): Promise<{ records: TextRecord[]; skipped: Record<string, number> }> {
  const dataset = new TextDataset({
    path: spec.path,
    format: spec.format,
    mode: spec.mode,
    field: spec.text_field,
    // seq2seq keeps its target text where classification keeps its label.
    labelField: objective === 'seq2seq' ? spec.target_field : spec.label_field,
    onBadInput: spec.on_bad_input,
  });
  const records: TextRecord[] = [];
  for await (const r of dataset) records.push(r);
  const report = dataset.report;
  return { records, skipped: { ...report.skipped } };
}

/** Training and validation records: a validation set when given, else a seeded held-out share. */
export async function loadSplits(
  config: RunConfig,
): Promise<{ train: TextRecord[]; validation: TextRecord[]; skipped: Record<string, number> }> {
  const train = await readRecords(config.data.train, config.objective.name);
  const skipped = { ...train.skipped };
  if (config.data.validation) {
    const validation = await readRecords(config.data.validation, config.objective.name);
    for (const [k, v] of Object.entries(validation.skipped)) skipped[k] = (skipped[k] ?? 0) + v;
    return { train: train.records, validation: validation.records, skipped };
  }
  const seed =
    typeof config.seed === 'number' ? config.seed : [...config.seed].reduce((a, c) => a + c.charCodeAt(0), 0);
  const fraction = config.data.validation_fraction;
  const out = { train: [] as TextRecord[], validation: [] as TextRecord[], skipped };
  train.records.forEach((r, i) => {
    (fraction > 0 && isValidation(i, fraction, seed) ? out.validation : out.train).push(r);
  });
  return out;
}

function idOf(tokenizer: Tokenizer, token: string, why: string): number {
  const id = tokenizer.tokenToId(token);
  if (id === undefined)
    throw new TaskError(`The tokenizer has no ${token} token, which ${why} needs. Use a tokenizer that defines it.`);
  return id;
}

function firstId(tokenizer: Tokenizer, tokens: string[], why: string): number {
  for (const t of tokens) {
    const id = tokenizer.tokenToId(t);
    if (id !== undefined) return id;
  }
  throw new TaskError(`The tokenizer has none of ${tokens.join(', ')}, which ${why} needs.`);
}

/** Fixed windows of blockSize tokens over the concatenated records (nanoGPT's way), end-of-text between records. */
function windows(records: TextRecord[], tokenizer: Tokenizer, size: number, separator: number | undefined): number[][] {
  const stream: number[] = [];
  for (const r of records) {
    stream.push(...tokenizer.encode(r.text, null, { addSpecialTokens: false }).ids);
    if (separator !== undefined) stream.push(separator);
  }
  const out: number[][] = [];
  for (let start = 0; start + size <= stream.length; start += size - 1) out.push(stream.slice(start, start + size));
  return out;
}

/** Splits a document into sentences for next-sentence prediction. */
function sentences(text: string): string[] {
  return text
    .split(/(?<=[.!?;:])\s+|\n+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export interface PreparedTask {
  task: Task;
  train: Example[];
  validation: Example[];
  report: DataReport;
}

/** Splits as loadSplits returns them. */
export type Splits = Awaited<ReturnType<typeof loadSplits>>;

/**
 * Examples and the collating task for the run. `splits` are the records when the caller
 * already read them (to train the tokenizer on the same text), else they are read here.
 */
export async function prepareTask(
  config: RunConfig,
  tokenizer: Tokenizer,
  rng: Rng,
  splits?: Splits,
): Promise<PreparedTask> {
  const { train, validation, skipped } = splits ?? (await loadSplits(config));
  if (!train.length) throw new TaskError(`No training records in ${config.data.train.path}.`);
  const block = config.data.block_size;
  const objective = config.objective;
  const report: DataReport = {
    trainRecords: train.length,
    validationRecords: validation.length,
    trainExamples: 0,
    validationExamples: 0,
    skipped,
    truncatedTokens: 0,
  };
  const opt = objective as Record<string, unknown>;
  const pad = tokenizer.tokenToId('[PAD]') ?? tokenizer.tokenToId('<pad>') ?? 0;
  const truncate = (ids: number[], max: number) => {
    if (ids.length > max) report.truncatedTokens += ids.length - max;
    return ids.slice(0, max);
  };

  let task: Task;
  let make: (records: TextRecord[]) => Example[];
  switch (objective.name) {
    case 'causal-lm': {
      const eos = tokenizer.tokenToId('<|endoftext|>') ?? tokenizer.tokenToId('</s>');
      // Windows hold block_size + 1 tokens: inputs are the first block_size, labels the last block_size.
      make = (records) => windows(records, tokenizer, block + 1, eos).map((ids) => ({ ids }));
      const collator = new CausalLmCollator({ padId: eos ?? 0 });
      task = {
        objective: 'causal-lm',
        lossFromLogits: true,
        labelsPerExample: false,
        collate: (ex) => collator.collate(ex.map((e) => e.ids)),
      };
      break;
    }
    case 'mlm': {
      const nsp = opt.next_sentence !== false;
      const mask = idOf(tokenizer, '[MASK]', 'masked language modelling');
      const specials = ['[CLS]', '[SEP]', '[PAD]', '[UNK]']
        .map((t) => tokenizer.tokenToId(t))
        .filter((x): x is number => x !== undefined);
      const collator = new MlmCollator({
        maskId: mask,
        vocabSize: tokenizer.getVocabSize(),
        specialIds: specials,
        probability: typeof opt.probability === 'number' ? opt.probability : 0.15,
        padId: pad,
      });
      tokenizer.truncation = { max_length: block, strategy: 'LongestFirst', stride: 0, direction: 'Right' };
      make = (records) => {
        if (!nsp) {
          return records.map((r) => {
            const e = tokenizer.encode(r.text);
            return { ids: e.ids, typeIds: e.typeIds };
          });
        }
        const docs = records.map((r) => sentences(r.text)).filter((d) => d.length > 1);
        if (!docs.length)
          throw new TaskError(
            'mlm with next_sentence needs documents of two or more sentences (use data mode: document).',
          );
        return nextSentencePairs(docs, rng.fork('nsp')).map(({ a, b, label }) => {
          const e = tokenizer.encode(a, b);
          return { ids: e.ids, typeIds: e.typeIds, nsp: label };
        });
      };
      task = {
        objective: 'mlm',
        lossFromLogits: false,
        labelsPerExample: false,
        collate: (ex, r) => {
          const batch: TaskBatch = collator.collate(
            ex.map((e) => e.ids),
            r,
            undefined,
            ex.map((e) => e.typeIds ?? e.ids.map(() => 0)),
          );
          if (nsp) batch.nextSentenceLabel = ex.map((e) => e.nsp ?? 0);
          return batch;
        },
      };
      break;
    }
    case 'span-corruption': {
      const sentinelIds = sentinelIdsOf((t) => tokenizer.tokenToId(t));
      if (!sentinelIds.length)
        throw new TaskError(
          'span-corruption needs <extra_id_N> sentinel tokens in the tokenizer (train a unigram tokenizer).',
        );
      const eos = firstId(tokenizer, ['</s>', '<|endoftext|>', '[SEP]'], 'span corruption');
      const collator = new SpanCorruptionCollator({
        sentinelIds,
        eosId: eos,
        padId: pad,
        noiseDensity: typeof opt.noise_density === 'number' ? opt.noise_density : 0.15,
        meanSpanLength: typeof opt.mean_span_length === 'number' ? opt.mean_span_length : 3,
      });
      make = (records) => windows(records, tokenizer, block - 1, undefined).map((ids) => ({ ids }));
      task = {
        objective: 'span-corruption',
        lossFromLogits: false,
        labelsPerExample: false,
        collate: (ex, r) =>
          collator.collate(
            ex.map((e) => e.ids),
            r,
          ),
      };
      break;
    }
    case 'classification': {
      const labels = Array.isArray(opt.labels)
        ? (opt.labels as string[])
        : ClassificationCollator.labelsFrom(
            train.map((r) => {
              if (r.label === undefined)
                throw new TaskError(
                  `classification: record ${r.source} has no "${config.data.train.label_field}" field.`,
                );
              return r.label;
            }),
          );
      const collator = new ClassificationCollator({ labels, padId: pad });
      tokenizer.truncation = { max_length: block, strategy: 'LongestFirst', stride: 0, direction: 'Right' };
      make = (records) =>
        records.map((r) => {
          if (r.label === undefined) throw new TaskError(`classification: record ${r.source} has no label.`);
          collator.labelId(r.label);
          return { ids: tokenizer.encode(r.text).ids, label: r.label };
        });
      task = {
        objective: 'classification',
        lossFromLogits: false,
        labelsPerExample: true,
        labelNames: labels,
        collate: (ex) => collator.collate(ex.map((e) => ({ ids: e.ids, label: e.label! }))),
      };
      break;
    }
    case 'seq2seq': {
      const collator = new Seq2SeqCollator({ padId: pad });
      const eos = firstId(tokenizer, ['</s>', '<|endoftext|>', '[SEP]'], 'seq2seq targets');
      make = (records) =>
        records.map((r) => {
          if (r.label === undefined)
            throw new TaskError(`seq2seq: record ${r.source} has no target field "${config.data.train.target_field}".`);
          const source = truncate(tokenizer.encode(r.text, null, { addSpecialTokens: false }).ids, block - 1);
          const target = truncate(
            tokenizer.encode(r.label, null, { addSpecialTokens: false }).ids,
            config.data.target_block_size - 1,
          );
          return { ids: [...source, eos], target: [...target, eos] };
        });
      task = {
        objective: 'seq2seq',
        lossFromLogits: false,
        labelsPerExample: false,
        collate: (ex) => collator.collate(ex.map((e) => ({ source: e.ids, target: e.target! }))),
      };
      break;
    }
    default:
      throw new TaskError(
        `Unknown objective "${objective.name}". Objectives the trainer runs: causal-lm, mlm, span-corruption, classification, seq2seq.`,
      );
  }
  const trainExamples = make(train);
  const validationExamples = validation.length ? make(validation) : [];
  if (!trainExamples.length) {
    throw new TaskError(
      `The training data gave no ${objective.name} examples (too little text for block_size ${block}?).`,
    );
  }
  report.trainExamples = trainExamples.length;
  report.validationExamples = validationExamples.length;
  return { task, train: trainExamples, validation: validationExamples, report };
}
