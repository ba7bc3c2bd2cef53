import { type Rng, TesseraError } from '@tessera/tensor-core';

export class ObjectiveError extends TesseraError {}

/** A batch as plain arrays, padded to one length; the trainer turns it into tensors. */
export interface Batch {
  inputIds: number[][];
  attentionMask: number[][];
  labels: number[][];
  tokenTypeIds?: number[][];
  /** Decoder targets' mask for encoder-decoder objectives. */
  labelsMask?: number[][];
  nextSentenceLabel?: number[];
}

/**
 * A collator's randomness: one stream for the whole batch, or one per example. Per-example
 * streams (keyed by the example, not its batch) make the masks independent of how examples
 * are batched, so 2 ranks of batch B draw what 1 process of batch 2B draws.
 */
export type CollateRng = Rng | readonly Rng[];

/** The stream example `i` of a batch draws from. */
export function rngFor(rng: CollateRng, i: number): Rng {
  if (!Array.isArray(rng)) return rng as Rng;
  const r = (rng as readonly Rng[])[i];
  if (!r) throw new ObjectiveError(`collate: no random stream for example ${i} (${rng.length} given).`);
  return r;
}

export interface Collator {
  readonly name: string;
  collate(examples: ArrayLike<number>[], rng: CollateRng): Batch;
}

function padRows(rows: number[][], value: number, len?: number): number[][] {
  const n = len ?? Math.max(0, ...rows.map((r) => r.length));
  return rows.map((r) => (r.length >= n ? r : r.concat(new Array<number>(n - r.length).fill(value))));
}

function checkIds(ex: ArrayLike<number>, i: number): number[] {
  const a = Array.from(ex);
  if (a.some((x) => !Number.isInteger(x) || x < 0))
    throw new ObjectiveError(`example ${i} holds a token id that is not a non-negative integer.`);
  return a;
}

// ---------------- causal LM ----------------

export interface CausalLmOptions {
  padId?: number;
  ignoreIndex?: number;
}

/**
 * Next-token prediction, HF's convention: labels are the input ids (the model shifts them
 * by one when it scores), padding is ignored (-100) and masked out.
 */
export class CausalLmCollator implements Collator {
  readonly name = 'causal-lm';
  constructor(readonly o: CausalLmOptions = {}) {}
  collate(examples: ArrayLike<number>[]): Batch {
    const pad = this.o.padId ?? 0;
    const ignore = this.o.ignoreIndex ?? -100;
    const rows = examples.map((e, i) => {
      const ids = checkIds(e, i);
      if (ids.length < 2)
        throw new ObjectiveError(
          `causal-lm: example ${i} has ${ids.length} token(s); it needs at least 2 to predict one.`,
        );
      return ids;
    });
    return {
      inputIds: padRows(rows, pad),
      attentionMask: padRows(
        rows.map((r) => r.map(() => 1)),
        0,
      ),
      labels: padRows(rows, ignore),
    };
  }
}

// ---------------- masked LM ----------------

export interface MlmOptions {
  maskId: number;
  vocabSize: number;
  /** Ids never masked ([CLS], [SEP], [PAD], ...). */
  specialIds?: number[];
  /** Probability of selecting a token (or a whole word). Default 0.15. */
  probability?: number;
  /** Of the selected: fraction replaced by [MASK] (0.8) and by a random token (0.1); the rest stay. */
  maskFraction?: number;
  randomFraction?: number;
  padId?: number;
  ignoreIndex?: number;
}

/**
 * BERT's masking for one sequence. Draw order (what makes it reproducible): for each
 * group (a token, or with `wordIds` a whole word) in order, one uniform draw selects it;
 * then for each token of a selected group, one uniform draw picks mask / random / keep,
 * and a random replacement draws `rng.int(vocabSize)`.
 */
export function maskTokens(
  ids: readonly number[],
  o: MlmOptions,
  rng: Rng,
  wordIds?: ReadonlyArray<number | null>,
): { inputIds: number[]; labels: number[]; masked: number[] } {
  const p = o.probability ?? 0.15;
  const fMask = o.maskFraction ?? 0.8;
  const fRand = o.randomFraction ?? 0.1;
  if (!(p >= 0 && p <= 1) || !(fMask >= 0 && fRand >= 0 && fMask + fRand <= 1)) {
    throw new ObjectiveError('mlm: probability must be in [0, 1] and maskFraction + randomFraction at most 1.');
  }
  if (wordIds && wordIds.length !== ids.length)
    throw new ObjectiveError(`mlm: wordIds has ${wordIds.length} entries for ${ids.length} tokens.`);
  const special = new Set(o.specialIds ?? []);
  const ignore = o.ignoreIndex ?? -100;
  const groups: number[][] = [];
  for (let i = 0; i < ids.length; i++) {
    if (special.has(ids[i]!)) continue;
    const w = wordIds?.[i];
    const last = groups[groups.length - 1];
    if (
      wordIds &&
      w !== null &&
      w !== undefined &&
      last &&
      wordIds[last[last.length - 1]!] === w &&
      last[last.length - 1] === i - 1
    )
      last.push(i);
    else groups.push([i]);
  }
  const inputIds = ids.slice();
  const labels = new Array<number>(ids.length).fill(ignore);
  const masked: number[] = [];
  for (const g of groups) {
    if (rng.uniform() >= p) continue;
    for (const i of g) {
      labels[i] = ids[i]!;
      masked.push(i);
      const r = rng.uniform();
      if (r < fMask) inputIds[i] = o.maskId;
      else if (r < fMask + fRand) inputIds[i] = rng.int(o.vocabSize);
    }
  }
  return { inputIds, labels, masked };
}

export class MlmCollator implements Collator {
  readonly name = 'mlm';
  constructor(readonly o: MlmOptions) {}
  collate(
    examples: ArrayLike<number>[],
    rng: CollateRng,
    wordIds?: ReadonlyArray<ReadonlyArray<number | null>>,
    tokenTypeIds?: number[][],
  ): Batch {
    const out = examples.map((e, i) => maskTokens(checkIds(e, i), this.o, rngFor(rng, i), wordIds?.[i]));
    const pad = this.o.padId ?? 0;
    const batch: Batch = {
      inputIds: padRows(
        out.map((x) => x.inputIds),
        pad,
      ),
      attentionMask: padRows(
        out.map((x) => x.inputIds.map(() => 1)),
        0,
      ),
      labels: padRows(
        out.map((x) => x.labels),
        this.o.ignoreIndex ?? -100,
      ),
    };
    if (tokenTypeIds) batch.tokenTypeIds = padRows(tokenTypeIds, 0);
    return batch;
  }
}

/**
 * Next-sentence pairs: for each consecutive sentence pair of a document, with probability
 * 0.5 keep the true next sentence (label 0, HF's "is next"), else take a random sentence
 * from another document (label 1). Documents with one sentence give no pairs.
 */
export function nextSentencePairs<T>(docs: readonly (readonly T[])[], rng: Rng): Array<{ a: T; b: T; label: 0 | 1 }> {
  if (docs.filter((d) => d.length > 0).length < 2)
    throw new ObjectiveError('nsp: needs at least two non-empty documents to draw random sentences from.');
  const out: Array<{ a: T; b: T; label: 0 | 1 }> = [];
  docs.forEach((doc, d) => {
    for (let i = 0; i + 1 < doc.length; i++) {
      if (rng.uniform() < 0.5) {
        out.push({ a: doc[i]!, b: doc[i + 1]!, label: 0 });
        continue;
      }
      let other = rng.int(docs.length);
      while (other === d || docs[other]!.length === 0) other = rng.int(docs.length);
      const od = docs[other]!;
      out.push({ a: doc[i]!, b: od[rng.int(od.length)]!, label: 1 });
    }
  });
  return out;
}

// ---------------- T5 span corruption ----------------

/** Splits n items into k non-empty runs at random: returns the k run lengths. */
function randomSegmentation(n: number, k: number, rng: Rng): number[] {
  const marks = new Array<number>(n - 1).fill(0);
  for (let i = 0; i < k - 1; i++) marks[i] = 1;
  rng.shuffle(marks);
  const lens: number[] = [];
  let run = 1;
  for (const m of marks) {
    if (m) {
      lens.push(run);
      run = 1;
    } else run++;
  }
  lens.push(run);
  return lens;
}

/**
 * T5's random_spans_noise_mask: round(length * density) noise tokens in
 * round(noise / meanSpan) spans, alternating with non-noise runs and starting with one.
 */
export function spanNoiseMask(length: number, density: number, meanSpan: number, rng: Rng): boolean[] {
  if (!(density > 0 && density < 1))
    throw new ObjectiveError(`span corruption: noiseDensity must be in (0, 1); got ${density}.`);
  if (!(meanSpan >= 1)) throw new ObjectiveError(`span corruption: meanSpanLength must be >= 1; got ${meanSpan}.`);
  if (length < 2) throw new ObjectiveError(`span corruption: a sequence needs at least 2 tokens; got ${length}.`);
  const noise = Math.min(Math.max(Math.round(length * density), 1), length - 1);
  const spans = Math.max(1, Math.min(Math.round(noise / meanSpan), noise, length - noise));
  const noiseLens = randomSegmentation(noise, spans, rng);
  const keepLens = randomSegmentation(length - noise, spans, rng);
  const mask: boolean[] = [];
  for (let s = 0; s < spans; s++) {
    for (let i = 0; i < keepLens[s]!; i++) mask.push(false);
    for (let i = 0; i < noiseLens[s]!; i++) mask.push(true);
  }
  return mask;
}

export interface SpanCorruptionOptions {
  /** Sentinel ids in order: sentinelIds[0] is <extra_id_0>. */
  sentinelIds: number[];
  eosId: number;
  noiseDensity?: number;
  meanSpanLength?: number;
  padId?: number;
  ignoreIndex?: number;
}

/** Replaces each noise span by the next sentinel in the input; the target lists sentinel + span, then EOS. */
export function spanCorrupt(
  ids: readonly number[],
  o: SpanCorruptionOptions,
  rng: Rng,
): { inputIds: number[]; targets: number[]; mask: boolean[] } {
  const mask = spanNoiseMask(ids.length, o.noiseDensity ?? 0.15, o.meanSpanLength ?? 3, rng);
  const inputIds: number[] = [];
  const targets: number[] = [];
  let span = -1;
  for (let i = 0; i < ids.length; i++) {
    if (mask[i]) {
      if (i === 0 || !mask[i - 1]) {
        span++;
        const s = o.sentinelIds[span];
        if (s === undefined)
          throw new ObjectiveError(
            `span corruption: needs more than ${o.sentinelIds.length} sentinel ids for this sequence; add sentinels or shorten it.`,
          );
        inputIds.push(s);
        targets.push(s);
      }
      targets.push(ids[i]!);
    } else inputIds.push(ids[i]!);
  }
  inputIds.push(o.eosId);
  targets.push(o.eosId);
  return { inputIds, targets, mask };
}

export class SpanCorruptionCollator implements Collator {
  readonly name = 'span-corruption';
  constructor(readonly o: SpanCorruptionOptions) {}
  collate(examples: ArrayLike<number>[], rng: CollateRng): Batch {
    const out = examples.map((e, i) => spanCorrupt(checkIds(e, i), this.o, rngFor(rng, i)));
    const pad = this.o.padId ?? 0;
    return {
      inputIds: padRows(
        out.map((x) => x.inputIds),
        pad,
      ),
      attentionMask: padRows(
        out.map((x) => x.inputIds.map(() => 1)),
        0,
      ),
      labels: padRows(
        out.map((x) => x.targets),
        this.o.ignoreIndex ?? -100,
      ),
      labelsMask: padRows(
        out.map((x) => x.targets.map(() => 1)),
        0,
      ),
    };
  }
}

/** T5 sentinel ids of a tokenizer: <extra_id_0>, <extra_id_1>, ... as long as they exist. */
export function sentinelIdsOf(tokenToId: (t: string) => number | undefined): number[] {
  const out: number[] = [];
  for (let i = 0; ; i++) {
    const id = tokenToId(`<extra_id_${i}>`);
    if (id === undefined) return out;
    out.push(id);
  }
}

// ---------------- classification and seq2seq ----------------

export interface ClassificationOptions {
  /** Label names in id order; a label outside them is an error naming the known ones. */
  labels: string[];
  padId?: number;
}

/** Sequence classification: token ids padded, one label id per example. */
export class ClassificationCollator {
  readonly name = 'classification';
  readonly labelIds: Map<string, number>;
  constructor(readonly o: ClassificationOptions) {
    if (!o.labels.length || new Set(o.labels).size !== o.labels.length) {
      throw new ObjectiveError('classification: labels must be a non-empty list of distinct names.');
    }
    this.labelIds = new Map(o.labels.map((l, i) => [l, i]));
  }

  /** Builds the label list from the labels seen in data, sorted, for configs that do not name them. */
  static labelsFrom(values: Iterable<string>): string[] {
    return [...new Set(values)].sort();
  }

  labelId(label: string): number {
    const id = this.labelIds.get(label);
    if (id === undefined) {
      throw new ObjectiveError(
        `classification: label ${JSON.stringify(label)} is not in the label map (${this.o.labels.join(', ')}); add it to labels or fix the data.`,
      );
    }
    return id;
  }

  collate(examples: Array<{ ids: ArrayLike<number>; label: string }>): Batch & { classLabels: number[] } {
    const rows = examples.map((e, i) => checkIds(e.ids, i));
    return {
      inputIds: padRows(rows, this.o.padId ?? 0),
      attentionMask: padRows(
        rows.map((r) => r.map(() => 1)),
        0,
      ),
      labels: [],
      classLabels: examples.map((e) => this.labelId(e.label)),
    };
  }
}

/** Source -> target: encoder inputs padded with padId, targets padded with ignoreIndex (EOS already in the ids). */
export class Seq2SeqCollator {
  readonly name = 'seq2seq';
  constructor(readonly o: { padId?: number; ignoreIndex?: number } = {}) {}
  collate(examples: Array<{ source: ArrayLike<number>; target: ArrayLike<number> }>): Batch {
    const src = examples.map((e, i) => checkIds(e.source, i));
    const tgt = examples.map((e, i) => checkIds(e.target, i));
    return {
      inputIds: padRows(src, this.o.padId ?? 0),
      attentionMask: padRows(
        src.map((r) => r.map(() => 1)),
        0,
      ),
      labels: padRows(tgt, this.o.ignoreIndex ?? -100),
      labelsMask: padRows(
        tgt.map((r) => r.map(() => 1)),
        0,
      ),
    };
  }
}
