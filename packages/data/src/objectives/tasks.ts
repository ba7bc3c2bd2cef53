import type { Rng } from '@tessera/tensor-core';
import type { TextRecord } from '../datasets/text.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import { type CollateRng, ObjectiveError } from './objectives.js';

/** One training example, already tokenized; what an objective keeps between records and batches. */
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

/**
 * A batch as the model takes it: HF input names in camelCase (`inputIds`, `attentionMask`,
 * `labels`, `tokenTypeIds`, `nextSentenceLabel`, `decoderInputIds`, ...), integer arrays.
 * HF's label convention: causal-LM labels are the input ids (the model shifts them).
 */
export type ModelBatch = { inputIds: number[][]; attentionMask: number[][] } & Record<string, number[] | number[][]>;

/** What an objective learns about the run once the tokenizer exists. */
export interface ObjectiveContext {
  tokenizer: Tokenizer;
  /** Tokens per example (data.block_size). */
  blockSize: number;
  /** seq2seq: tokens per target (data.target_block_size). */
  targetBlockSize: number;
  /** For the objective's own draws while building examples (NSP pairs). */
  rng: Rng;
  /** The training records, e.g. to collect the label set. */
  trainRecords: readonly TextRecord[];
}

/** Rows the metrics score: predictions aligned with their labels (-100 = not scored). */
export interface ScoredRows {
  predictions: number[][];
  labels: number[][];
}

/** An objective bound to a run: records -> examples -> batches, and how its predictions are scored. */
export interface PreparedObjective {
  /** classification: label names in id order. */
  readonly labelNames?: readonly string[];
  /** HF config fields the objective implies for a new model (e.g. `num_labels`). */
  readonly modelConfig: Readonly<Record<string, unknown>>;
  /** Tokens dropped so far because an example was longer than its block (counted, never silent). */
  readonly truncatedTokens: number;
  examples(records: readonly TextRecord[]): Example[];
  collate(examples: readonly Example[], rng: CollateRng): ModelBatch;
  /**
   * How many items the model's loss on this batch averages over (scored label tokens, or
   * examples). The trainer weights micro-batches and ranks by it, so an accumulated or
   * data-parallel update equals one large batch. Absent: weighted by example count.
   */
  lossItems?(batch: ModelBatch): number;
  /** Aligns argmax predictions (per token [B][T], or per example [B]) with the batch's labels. */
  score(predictions: number[][] | number[], batch: ModelBatch): ScoredRows;
  /**
   * How the objective trains from pre-tokenized data (token shards): windows of `size`
   * tokens sharing `overlap`, each made an example. Absent: it needs text records.
   */
  readonly fromTokens?: { size: number; overlap: number; example(ids: number[]): Example };
}

/** A dataset that is already tokens (e.g. TokenShards): windows read on demand. */
export interface PretokenizedDataset {
  readonly length: number;
  windows(
    size: number,
    overlap?: number,
  ): { readonly length: number; readonly dropped: number; get(i: number): number[] };
}

export function isPretokenized(dataset: unknown): dataset is PretokenizedDataset {
  return typeof (dataset as Partial<PretokenizedDataset> | null)?.windows === 'function';
}

/**
 * What `registry.objective.create(name, options)` returns. `recordLabel` says which
 * dataset field becomes `TextRecord.label`: a class label, a seq2seq target, or none.
 */
export interface Objective {
  readonly name: string;
  readonly recordLabel?: 'label' | 'target';
  prepare(context: ObjectiveContext): PreparedObjective;
}

export function tokenId(tokenizer: Tokenizer, token: string, why: string): number {
  const id = tokenizer.tokenToId(token);
  if (id === undefined)
    throw new ObjectiveError(
      `The tokenizer has no ${token} token, which ${why} needs. Use a tokenizer that defines it.`,
    );
  return id;
}

export function firstTokenId(tokenizer: Tokenizer, tokens: readonly string[], why: string): number {
  for (const t of tokens) {
    const id = tokenizer.tokenToId(t);
    if (id !== undefined) return id;
  }
  throw new ObjectiveError(`The tokenizer has none of ${tokens.join(', ')}, which ${why} needs.`);
}

/** The tokenizer's padding id: [PAD], <pad>, else 0. */
export function padId(tokenizer: Tokenizer): number {
  return tokenizer.tokenToId('[PAD]') ?? tokenizer.tokenToId('<pad>') ?? 0;
}

/**
 * Windows of `size` tokens over the concatenated records (nanoGPT's way), `separator`
 * between records. Consecutive windows share `overlap` tokens.
 */
export function tokenWindows(
  records: readonly TextRecord[],
  tokenizer: Tokenizer,
  size: number,
  separator: number | undefined,
  overlap = 0,
): number[][] {
  const stream: number[] = [];
  for (const r of records) {
    stream.push(...tokenizer.encode(r.text, null, { addSpecialTokens: false }).ids);
    if (separator !== undefined) stream.push(separator);
  }
  const out: number[][] = [];
  for (let start = 0; start + size <= stream.length; start += size - overlap)
    out.push(stream.slice(start, start + size));
  return out;
}

/** Splits a document into sentences for next-sentence prediction. */
export function sentences(text: string): string[] {
  return text
    .split(/(?<=[.!?;:])\s+|\n+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Per-token predictions scored against the batch's labels as they stand. */
export function scoreTokens(predictions: number[][] | number[], batch: ModelBatch): ScoredRows {
  return { predictions: predictions as number[][], labels: batch.labels as number[][] };
}
