import { registry, z } from '@tessera/tensor-core';
import type { TextRecord } from '../datasets/text.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import {
  type Batch,
  CausalLmCollator,
  type CollateRng,
  ClassificationCollator,
  MlmCollator,
  nextSentencePairs,
  ObjectiveError,
  Seq2SeqCollator,
  SpanCorruptionCollator,
  sentinelIdsOf,
} from './objectives.js';
import {
  type Example,
  firstTokenId,
  type ModelBatch,
  type Objective,
  type ObjectiveContext,
  type PreparedObjective,
  padId,
  type ScoredRows,
  scoreTokens,
  sentences,
  tokenId,
  tokenWindows,
} from './tasks.js';

const PKG = '@tessera/data';

/** Shared bookkeeping of the built-in objectives: truncation counts and the default scoring. */
abstract class Prepared implements PreparedObjective {
  truncatedTokens = 0;
  readonly modelConfig: Record<string, unknown> = {};
  abstract examples(records: readonly TextRecord[]): Example[];
  abstract collate(examples: readonly Example[], rng: CollateRng): ModelBatch;
  /** Label entries the loss scores: every one that is not -100 (per token, or one per example). */
  lossItems(batch: ModelBatch): number {
    return countScored(batch.labels);
  }
  score(predictions: number[][] | number[], batch: ModelBatch): ScoredRows {
    return scoreTokens(predictions, batch);
  }
  protected truncate(ids: number[], max: number): number[] {
    if (ids.length > max) this.truncatedTokens += ids.length - max;
    return ids.slice(0, max);
  }
}

function countScored(labels: ModelBatch['labels']): number {
  let n = 0;
  for (const row of labels as (number[] | number)[]) {
    if (Array.isArray(row)) for (const v of row) n += v === -100 ? 0 : 1;
    else n += row === -100 ? 0 : 1;
  }
  return n;
}

/**
 * Targets end in padding the loss ignores, and the decoder is causal, so padded target
 * positions cannot change the scored ones: the model gets no decoder mask (as HF with labels only).
 */
function withoutLabelsMask(batch: Batch): ModelBatch {
  const { labelsMask, ...rest } = batch;
  void labelsMask;
  return modelBatch(rest);
}

/** A collator's batch as the model takes it: the fields that are present. */
function modelBatch(batch: Omit<Batch, 'labels'> & { labels: number[][] | number[] }): ModelBatch {
  const out: Record<string, number[] | number[][]> = {};
  for (const [key, value] of Object.entries(batch)) if (value !== undefined) out[key] = value;
  return out as ModelBatch;
}

function byTruncation(tokenizer: Tokenizer, blockSize: number): void {
  tokenizer.truncation = { max_length: blockSize, strategy: 'LongestFirst', stride: 0, direction: 'Right' };
}

// ---------------- causal LM ----------------

class CausalLm extends Prepared {
  readonly #collator: CausalLmCollator;
  readonly #eos: number | undefined;
  constructor(private readonly context: ObjectiveContext) {
    super();
    const { tokenizer } = context;
    this.#eos = tokenizer.tokenToId('<|endoftext|>') ?? tokenizer.tokenToId('</s>');
    this.#collator = new CausalLmCollator({ padId: this.#eos ?? 0 });
  }
  // Windows overlap by one token, so the pair across a window boundary is still predicted.
  get fromTokens() {
    return { size: this.context.blockSize, overlap: 1, example: (ids: number[]) => ({ ids }) };
  }
  examples(records: readonly TextRecord[]): Example[] {
    return tokenWindows(records, this.context.tokenizer, this.context.blockSize, this.#eos, 1).map((ids) => ({ ids }));
  }
  collate(examples: readonly Example[]): ModelBatch {
    return modelBatch(this.#collator.collate(examples.map((e) => e.ids)));
  }
  /** The model scores position t against label t + 1, so each row's first label is never scored. */
  override lossItems(batch: ModelBatch): number {
    return countScored((batch.labels as number[][]).map((row) => row.slice(1)));
  }
  /** Position t predicts token t + 1 (the model shifts labels the same way). */
  override score(predictions: number[][] | number[], batch: ModelBatch): ScoredRows {
    return {
      predictions: (predictions as number[][]).map((row) => row.slice(0, -1)),
      labels: (batch.labels as number[][]).map((row) => row.slice(1)),
    };
  }
}

// ---------------- masked LM (+ next-sentence prediction) ----------------

const mlmOptions = z
  .object({
    /** Add BERT's next-sentence prediction (documents of two or more sentences). */
    next_sentence: z.boolean().default(true),
    /** Share of tokens selected for masking. */
    probability: z.number().min(0).max(1).default(0.15),
  })
  .strict();

class Mlm extends Prepared {
  readonly #collator: MlmCollator;
  constructor(
    private readonly context: ObjectiveContext,
    private readonly o: z.output<typeof mlmOptions>,
  ) {
    super();
    const { tokenizer } = context;
    const specials = ['[CLS]', '[SEP]', '[PAD]', '[UNK]']
      .map((t) => tokenizer.tokenToId(t))
      .filter((x): x is number => x !== undefined);
    this.#collator = new MlmCollator({
      maskId: tokenId(tokenizer, '[MASK]', 'masked language modelling'),
      vocabSize: tokenizer.getVocabSize(),
      specialIds: specials,
      probability: o.probability,
      padId: padId(tokenizer),
    });
    byTruncation(tokenizer, context.blockSize);
  }
  examples(records: readonly TextRecord[]): Example[] {
    const { tokenizer } = this.context;
    if (!this.o.next_sentence) {
      return records.map((r) => {
        const e = tokenizer.encode(r.text);
        return { ids: e.ids, typeIds: e.typeIds };
      });
    }
    const docs = records.map((r) => sentences(r.text)).filter((d) => d.length > 1);
    if (!docs.length)
      throw new ObjectiveError(
        'mlm with next_sentence needs documents of two or more sentences (use data mode: document).',
      );
    return nextSentencePairs(docs, this.context.rng.fork('nsp')).map(({ a, b, label }) => {
      const e = tokenizer.encode(a, b);
      return { ids: e.ids, typeIds: e.typeIds, nsp: label };
    });
  }
  collate(examples: readonly Example[], rng: CollateRng): ModelBatch {
    const batch = modelBatch(
      this.#collator.collate(
        examples.map((e) => e.ids),
        rng,
        undefined,
        examples.map((e) => e.typeIds ?? e.ids.map(() => 0)),
      ),
    );
    if (this.o.next_sentence) batch.nextSentenceLabel = examples.map((e) => e.nsp ?? 0);
    return batch;
  }
  /**
   * With next-sentence prediction the loss is a token mean plus an example mean, which no
   * single count weights exactly; the example count is the closer of the two.
   */
  override lossItems(batch: ModelBatch): number {
    return this.o.next_sentence ? batch.inputIds.length : super.lossItems(batch);
  }
}

// ---------------- T5 span corruption ----------------

const spanOptions = z
  .object({
    noise_density: z.number().gt(0).lt(1).default(0.15),
    mean_span_length: z.number().min(1).default(3),
  })
  .strict();

class SpanCorruption extends Prepared {
  readonly #collator: SpanCorruptionCollator;
  constructor(
    private readonly context: ObjectiveContext,
    o: z.output<typeof spanOptions>,
  ) {
    super();
    const { tokenizer } = context;
    const sentinelIds = sentinelIdsOf((t) => tokenizer.tokenToId(t));
    if (!sentinelIds.length)
      throw new ObjectiveError(
        'span-corruption needs <extra_id_N> sentinel tokens in the tokenizer (train a unigram tokenizer).',
      );
    this.#collator = new SpanCorruptionCollator({
      sentinelIds,
      eosId: firstTokenId(tokenizer, ['</s>', '<|endoftext|>', '[SEP]'], 'span corruption'),
      padId: padId(tokenizer),
      noiseDensity: o.noise_density,
      meanSpanLength: o.mean_span_length,
    });
  }
  get fromTokens() {
    return { size: this.context.blockSize - 1, overlap: 0, example: (ids: number[]) => ({ ids }) };
  }
  examples(records: readonly TextRecord[]): Example[] {
    return tokenWindows(records, this.context.tokenizer, this.context.blockSize - 1, undefined).map((ids) => ({ ids }));
  }
  collate(examples: readonly Example[], rng: CollateRng): ModelBatch {
    return withoutLabelsMask(
      this.#collator.collate(
        examples.map((e) => e.ids),
        rng,
      ),
    );
  }
}

// ---------------- sequence classification ----------------

const classificationOptions = z
  .object({
    /** Label names in id order; default: the sorted set of labels in the training data. */
    labels: z.array(z.string().min(1)).min(1).optional(),
  })
  .strict();

class Classification extends Prepared {
  readonly #collator: ClassificationCollator;
  readonly labelNames: readonly string[];
  constructor(
    private readonly context: ObjectiveContext,
    o: z.output<typeof classificationOptions>,
  ) {
    super();
    const labels =
      o.labels ??
      ClassificationCollator.labelsFrom(
        context.trainRecords.map((r) => {
          if (r.label === undefined) throw new ObjectiveError(`classification: record ${r.source} has no label field.`);
          return r.label;
        }),
      );
    this.labelNames = labels;
    this.modelConfig.num_labels = labels.length;
    this.#collator = new ClassificationCollator({ labels, padId: padId(context.tokenizer) });
    byTruncation(context.tokenizer, context.blockSize);
  }
  examples(records: readonly TextRecord[]): Example[] {
    return records.map((r) => {
      if (r.label === undefined) throw new ObjectiveError(`classification: record ${r.source} has no label.`);
      this.#collator.labelId(r.label);
      return { ids: this.context.tokenizer.encode(r.text).ids, label: r.label };
    });
  }
  collate(examples: readonly Example[]): ModelBatch {
    const { classLabels, labels, ...batch } = this.#collator.collate(
      examples.map((e) => ({ ids: e.ids, label: e.label! })),
    );
    void labels;
    return modelBatch({ ...batch, labels: classLabels });
  }
  /** One prediction per example, scored as a row of one. */
  override score(predictions: number[][] | number[], batch: ModelBatch): ScoredRows {
    return {
      predictions: (predictions as number[]).map((p) => [p]),
      labels: (batch.labels as number[]).map((l) => [l]),
    };
  }
}

// ---------------- seq2seq ----------------

class Seq2Seq extends Prepared {
  readonly #collator: Seq2SeqCollator;
  readonly #eos: number;
  constructor(private readonly context: ObjectiveContext) {
    super();
    this.#collator = new Seq2SeqCollator({ padId: padId(context.tokenizer) });
    this.#eos = firstTokenId(context.tokenizer, ['</s>', '<|endoftext|>', '[SEP]'], 'seq2seq targets');
  }
  examples(records: readonly TextRecord[]): Example[] {
    const { tokenizer, blockSize, targetBlockSize } = this.context;
    return records.map((r) => {
      if (r.label === undefined) throw new ObjectiveError(`seq2seq: record ${r.source} has no target field.`);
      const source = this.truncate(tokenizer.encode(r.text, null, { addSpecialTokens: false }).ids, blockSize - 1);
      const target = this.truncate(
        tokenizer.encode(r.label, null, { addSpecialTokens: false }).ids,
        targetBlockSize - 1,
      );
      return { ids: [...source, this.#eos], target: [...target, this.#eos] };
    });
  }
  collate(examples: readonly Example[]): ModelBatch {
    return withoutLabelsMask(this.#collator.collate(examples.map((e) => ({ source: e.ids, target: e.target! }))));
  }
}

/** Registers an objective whose config options (the block minus `name`) are validated by `options`. */
function objective<S extends z.ZodType>(
  name: string,
  description: string,
  options: S,
  prepare: (context: ObjectiveContext, o: z.output<S>) => PreparedObjective,
  recordLabel?: Objective['recordLabel'],
): void {
  if (registry.objective.has(name)) return;
  registry.objective.register(
    name,
    (o: z.output<S>): Objective => ({
      name,
      ...(recordLabel ? { recordLabel } : {}),
      prepare: (context) => prepare(context, o),
    }),
    { description, package: PKG, options },
  );
}

const none = z.object({}).strict();

export function registerObjectives(): void {
  objective(
    'causal-lm',
    'next-token prediction over fixed token windows (labels = input ids)',
    none,
    (c) => new CausalLm(c),
  );
  objective(
    'mlm',
    'BERT masked LM (15%, 80/10/10) with optional next-sentence prediction',
    mlmOptions,
    (c, o) => new Mlm(c, o),
  );
  objective(
    'span-corruption',
    'T5 span corruption (noise density 0.15, mean span 3, sentinels)',
    spanOptions,
    (c, o) => new SpanCorruption(c, o),
  );
  objective(
    'classification',
    'sequence classification with a label map',
    classificationOptions,
    (c, o) => new Classification(c, o),
    'label',
  );
  objective('seq2seq', 'source -> target pairs (the dataset target field)', none, (c) => new Seq2Seq(c), 'target');
}
