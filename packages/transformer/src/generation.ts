import { Rng, TesseraError, tf } from '@tessera/tensor-core';
import { KVCache } from './layers/attention.js';
import type { GPT2LMHeadModel } from './models/gpt.js';
import type { T5ForConditionalGeneration } from './models/t5.js';

export interface SamplingOptions {
  maxNewTokens: number;
  /** 0 or absent = greedy; otherwise logits are divided by it before sampling. */
  temperature?: number;
  /** Keep the k most likely tokens (0 = all). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 = all). */
  topP?: number;
  seed?: number | string;
  /** A row ends at any of these tokens (the token is kept). */
  stopTokens?: number[];
  /** false recomputes the whole sequence every step instead of using the KV cache. */
  useCache?: boolean;
}

function checkOptions(o: SamplingOptions): void {
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 0) {
    throw new TesseraError(`maxNewTokens must be a non-negative integer; got ${o.maxNewTokens}.`);
  }
  if (o.temperature !== undefined && !(o.temperature >= 0))
    throw new TesseraError(`temperature must be >= 0; got ${o.temperature}.`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) {
    throw new TesseraError(`topK must be an integer >= 0; got ${o.topK}.`);
  }
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1))
    throw new TesseraError(`topP must be in (0, 1]; got ${o.topP}.`);
}

/** Picks the next token from one row of logits: greedy, or temperature / top-k / top-p sampling. */
export function chooseToken(logits: ArrayLike<number>, options: SamplingOptions, rng: Rng): number {
  const temperature = options.temperature ?? 0;
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  const order = Array.from({ length: logits.length }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
  const kept = order.slice(0, options.topK ? Math.min(options.topK, order.length) : order.length);
  const max = logits[kept[0]!]! / temperature;
  const weights = kept.map((i) => Math.exp(logits[i]! / temperature - max));
  const total = weights.reduce((a, b) => a + b, 0);
  const topP = options.topP ?? 1;
  let cut = kept.length;
  let cumulative = 0;
  for (let i = 0; i < kept.length; i++) {
    cumulative += weights[i]! / total;
    if (cumulative >= topP) {
      cut = i + 1;
      break;
    }
  }
  let u = rng.uniform() * weights.slice(0, cut).reduce((a, b) => a + b, 0);
  for (let i = 0; i < cut; i++) {
    u -= weights[i]!;
    if (u <= 0) return kept[i]!;
  }
  return kept[cut - 1]!;
}

/** Last-position logits of each row, read asynchronously (GPU backends cannot read synchronously in Node). */
async function lastLogits(logits: tf.Tensor): Promise<Float32Array[]> {
  const [B, T, V] = logits.shape as [number, number, number];
  const last = tf.tidy(() => tf.reshape(tf.slice(logits, [0, T - 1, 0], [B, 1, V]), [B, V]));
  const values = (await last.data()) as Float32Array;
  last.dispose();
  return Array.from({ length: B }, (_, b) => values.slice(b * V, (b + 1) * V));
}

/**
 * Continues prompts of equal length with a GPT model. With the KV cache (default), each
 * step feeds only the newest token.
 */
export async function generateGpt(
  model: GPT2LMHeadModel,
  prompts: number[][],
  options: SamplingOptions,
): Promise<number[][]> {
  checkOptions(options);
  if (!prompts.length || prompts.some((p) => p.length === 0 || p.length !== prompts[0]!.length)) {
    throw new TesseraError('generateGpt needs one or more non-empty prompts of equal length.');
  }
  const rng = new Rng(options.seed ?? 0);
  const stop = new Set(options.stopTokens ?? []);
  const sequences = prompts.map((p) => [...p]);
  const done = prompts.map(() => false);
  const useCache = options.useCache ?? true;
  const cache = useCache ? new KVCache() : undefined;
  const wasTraining = model.training;
  model.eval();
  try {
    let feed = sequences.map((s) => [...s]);
    for (let step = 0; step < options.maxNewTokens && !done.every(Boolean); step++) {
      const logits = tf.tidy(
        () => model.forward({ inputIds: tf.tensor2d(feed, [feed.length, feed[0]!.length], 'int32'), cache }).logits,
      );
      const rows = await lastLogits(logits);
      logits.dispose();
      rows.forEach((row, b) => {
        // A finished row keeps its length in step with the batch by repeating its last token; it is trimmed below.
        const token = done[b] ? sequences[b]![sequences[b]!.length - 1]! : chooseToken(row, options, rng);
        sequences[b]!.push(token);
        if (stop.has(token)) done[b] = true;
      });
      feed = useCache ? sequences.map((s) => [s[s.length - 1]!]) : sequences.map((s) => [...s]);
    }
  } finally {
    cache?.dispose();
    if (wasTraining) model.train();
  }
  return sequences.map((s, b) => {
    const generated = s.slice(prompts[b]!.length);
    const end = generated.findIndex((t) => stop.has(t));
    return end >= 0 ? generated.slice(0, end + 1) : generated;
  });
}

export interface Seq2SeqOptions extends SamplingOptions {
  /** Beam search width (1 = greedy or sampling). */
  numBeams?: number;
}

/** T5 generation: the encoder runs once, the decoder token by token from the decoder start token. */
export async function generateT5(
  model: T5ForConditionalGeneration,
  inputIds: number[][],
  options: Seq2SeqOptions,
  attentionMask?: number[][],
): Promise<number[][]> {
  checkOptions(options);
  const numBeams = options.numBeams ?? 1;
  if (!Number.isInteger(numBeams) || numBeams < 1)
    throw new TesseraError(`numBeams must be an integer >= 1; got ${numBeams}.`);
  const stop = new Set(options.stopTokens ?? [model.config.eos_token_id]);
  const wasTraining = model.training;
  model.eval();
  try {
    const results: number[][] = [];
    // One input row at a time keeps beam bookkeeping simple; generation batches are small.
    for (let b = 0; b < inputIds.length; b++) {
      const ids = tf.tensor2d([inputIds[b]!], [1, inputIds[b]!.length], 'int32');
      const mask = attentionMask ? tf.tensor2d([attentionMask[b]!], [1, attentionMask[b]!.length], 'int32') : undefined;
      const encoded = tf.tidy(() => model.encode(ids, mask));
      try {
        results.push(
          numBeams === 1
            ? await decodeSampling(model, encoded, mask, options, stop)
            : await decodeBeams(model, encoded, mask, options, stop, numBeams),
        );
      } finally {
        tf.dispose([ids, encoded, ...(mask ? [mask] : [])]);
      }
    }
    return results;
  } finally {
    if (wasTraining) model.train();
  }
}

async function decodeSampling(
  model: T5ForConditionalGeneration,
  encoded: tf.Tensor,
  mask: tf.Tensor | undefined,
  options: SamplingOptions,
  stop: Set<number>,
): Promise<number[]> {
  const rng = new Rng(options.seed ?? 0);
  const useCache = options.useCache ?? true;
  const cache = useCache ? new KVCache() : undefined;
  const sequence = [model.config.decoder_start_token_id];
  try {
    for (let step = 0; step < options.maxNewTokens; step++) {
      const feed = useCache ? [sequence[sequence.length - 1]!] : sequence;
      const logits = tf.tidy(() => model.decode(tf.tensor2d([feed], [1, feed.length], 'int32'), encoded, mask, cache));
      const [row] = await lastLogits(logits);
      logits.dispose();
      const token = chooseToken(row!, options, rng);
      sequence.push(token);
      if (stop.has(token)) break;
    }
  } finally {
    cache?.dispose();
  }
  return sequence.slice(1);
}

/** Beam search on summed log-probabilities; finished hypotheses compete by length-normalised score. */
async function decodeBeams(
  model: T5ForConditionalGeneration,
  encoded: tf.Tensor,
  mask: tf.Tensor | undefined,
  options: SamplingOptions,
  stop: Set<number>,
  numBeams: number,
): Promise<number[]> {
  let beams = [{ tokens: [model.config.decoder_start_token_id], score: 0 }];
  const finished: { tokens: number[]; score: number }[] = [];
  for (let step = 0; step < options.maxNewTokens && beams.length; step++) {
    const width = beams.length;
    const T = beams[0]!.tokens.length;
    const logProbs = tf.tidy(() => {
      const ids = tf.tensor2d(
        beams.map((b) => b.tokens),
        [width, T],
        'int32',
      );
      const m = mask ? tf.tile(mask, [width, 1]) : undefined;
      return tf.logSoftmax(model.decode(ids, tf.tile(encoded, [width, 1, 1]), m));
    });
    const rows = await lastLogits(logProbs);
    logProbs.dispose();
    const candidates: { tokens: number[]; score: number }[] = [];
    rows.forEach((row, i) => {
      const best = Array.from({ length: row.length }, (_, t) => t)
        .sort((a, c) => row[c]! - row[a]! || a - c)
        .slice(0, numBeams);
      for (const token of best)
        candidates.push({ tokens: [...beams[i]!.tokens, token], score: beams[i]!.score + row[token]! });
    });
    candidates.sort((a, c) => c.score - a.score);
    beams = [];
    for (const c of candidates) {
      if (stop.has(c.tokens[c.tokens.length - 1]!)) finished.push(c);
      else beams.push(c);
      if (beams.length === numBeams) break;
    }
    if (finished.length >= numBeams) break;
  }
  const pool = finished.length ? finished : beams;
  const best = pool.reduce((a, c) => (c.score / c.tokens.length > a.score / a.tokens.length ? c : a));
  return best.tokens.slice(1);
}
