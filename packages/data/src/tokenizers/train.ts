import { TokenizerError } from './errors.js';
import { UnigramModel } from './models.js';
import { BERT_SPECIALS, bertWordPieceTokenizer, byteLevelBpeTokenizer, t5UnigramTokenizer } from './presets.js';
import { BYTE_TO_CHAR, Aligned } from './text.js';
import type { Tokenizer } from './tokenizer.js';
import { Heap } from './heap.js';

export type Corpus = Iterable<string> | AsyncIterable<string>;

/** Counts the pre-tokenized words of a corpus, streamed: only the word table is held in memory. */
export async function countWords(
  corpus: Corpus,
  shape: Pick<Tokenizer, 'normalizer' | 'preTokenizer'>,
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let n = 0;
  for await (const text of corpus as AsyncIterable<string>) {
    if (typeof text !== 'string')
      throw new TokenizerError(`training corpus item ${n} is ${typeof text}, not a string.`);
    n++;
    let s = Aligned.of(text);
    if (shape.normalizer) s = shape.normalizer.normalize(s);
    const words = shape.preTokenizer ? shape.preTokenizer.split([s], { first: true }) : [s];
    for (const w of words) if (w.length) counts.set(w.text, (counts.get(w.text) ?? 0) + 1);
  }
  return counts;
}

function checkVocabSize(v: unknown, min: number): number {
  if (!Number.isInteger(v) || (v as number) < min) {
    throw new TokenizerError(
      `vocabSize must be an integer of at least ${min} (the special tokens and the alphabet); got ${JSON.stringify(v)}.`,
    );
  }
  return v as number;
}

// ---------------- BPE ----------------

export interface BpeTrainOptions {
  vocabSize: number;
  /** Pairs seen fewer times than this are never merged. Default 2. */
  minFrequency?: number;
  specialTokens?: string[];
  /** Characters always in the vocabulary (byte-level BPE passes all 256 byte characters). */
  initialAlphabet?: string[];
  /** Keep at most this many of the most frequent characters. */
  limitAlphabet?: number;
  continuingSubwordPrefix?: string;
}

/** Max-heap entry for the merge queue, ordered as HF orders merges: count, then smallest pair. */
type Entry = [count: number, a: number, b: number];
function better(x: Entry, y: Entry): boolean {
  return x[0] !== y[0] ? x[0] > y[0] : x[1] !== y[1] ? x[1] < y[1] : x[2] < y[2];
}
const KEY = 2 ** 21;

/** Learns BPE merges from word counts; returns the vocabulary (specials first) and merges in order. */
export function trainBpeModel(
  words: Map<string, number>,
  o: BpeTrainOptions,
): { vocab: Map<string, number>; merges: Array<[string, string]> } {
  const specials = o.specialTokens ?? [];
  const minFreq = o.minFrequency ?? 2;
  const prefix = o.continuingSubwordPrefix ?? '';
  const vocab = new Map<string, number>();
  const tokens: string[] = [];
  const add = (t: string) => {
    if (!vocab.has(t)) {
      vocab.set(t, tokens.length);
      tokens.push(t);
    }
    return vocab.get(t)!;
  };
  for (const s of specials) add(s);

  // Alphabet: every character seen (or given), the most frequent ones if limited, sorted for determinism.
  const charCount = new Map<string, number>();
  for (const [w, c] of words) for (const ch of w) charCount.set(ch, (charCount.get(ch) ?? 0) + c);
  for (const ch of o.initialAlphabet ?? []) charCount.set(ch, Number.MAX_SAFE_INTEGER);
  let alphabet = [...charCount.entries()];
  if (o.limitAlphabet !== undefined && alphabet.length > o.limitAlphabet) {
    alphabet.sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1));
    alphabet = alphabet.slice(0, o.limitAlphabet);
  }
  const kept = new Set(alphabet.map(([ch]) => ch));
  for (const ch of [...kept].sort()) add(ch);
  checkVocabSize(o.vocabSize, vocab.size);

  // Words as symbol-id arrays; characters outside the alphabet are dropped, as in HF.
  const wordSyms: number[][] = [];
  const wordCount: number[] = [];
  for (const [w, c] of [...words.entries()].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))) {
    const syms: number[] = [];
    let first = true;
    for (const ch of w) {
      if (!kept.has(ch)) continue;
      syms.push(add(first || !prefix ? ch : prefix + ch));
      first = false;
    }
    wordSyms.push(syms);
    wordCount.push(c);
  }

  const pairCount = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const bump = (a: number, b: number, w: number, delta: number) => {
    const k = a * KEY + b;
    pairCount.set(k, (pairCount.get(k) ?? 0) + delta);
    if (delta > 0) {
      let s = where.get(k);
      if (!s) where.set(k, (s = new Set()));
      s.add(w);
    }
  };
  wordSyms.forEach((syms, w) => {
    for (let i = 0; i + 1 < syms.length; i++) bump(syms[i]!, syms[i + 1]!, w, wordCount[w]!);
  });
  const heap = new Heap<Entry>(better);
  for (const [k, c] of pairCount) if (c > 0) heap.push([c, Math.floor(k / KEY), k % KEY]);

  const merges: Array<[string, string]> = [];
  while (tokens.length < o.vocabSize) {
    const top = heap.pop();
    if (!top) break;
    const [count, a, b] = top;
    const k = a * KEY + b;
    const current = pairCount.get(k) ?? 0;
    if (current !== count) {
      // Stale entry: its count changed since it was queued.
      if (current > 0) heap.push([current, a, b]);
      continue;
    }
    if (count < minFreq) break;
    const right = tokens[b]!;
    const merged = tokens[a]! + (prefix && right.startsWith(prefix) ? right.slice(prefix.length) : right);
    const id = add(merged);
    merges.push([tokens[a]!, right]);
    const touched = new Map<number, number>();
    for (const w of [...(where.get(k) ?? [])].sort((x, y) => x - y)) {
      const syms = wordSyms[w]!;
      const c = wordCount[w]!;
      for (let i = 0; i + 1 < syms.length; i++) {
        if (syms[i] !== a || syms[i + 1] !== b) continue;
        if (i > 0) {
          bump(syms[i - 1]!, a, w, -c);
          bump(syms[i - 1]!, id, w, c);
          touched.set(syms[i - 1]! * KEY + id, 1);
        }
        if (i + 2 < syms.length) {
          bump(b, syms[i + 2]!, w, -c);
          bump(id, syms[i + 2]!, w, c);
          touched.set(id * KEY + syms[i + 2]!, 1);
        }
        syms.splice(i, 2, id);
      }
    }
    pairCount.set(k, 0);
    for (const t of touched.keys()) {
      const c = pairCount.get(t) ?? 0;
      if (c > 0) heap.push([c, Math.floor(t / KEY), t % KEY]);
    }
  }
  return { vocab, merges };
}

export interface TrainOptions {
  vocabSize: number;
  minFrequency?: number;
  specialTokens?: string[];
  /** Accepted for a uniform interface; BPE and WordPiece training have no random choices. */
  seed?: number;
}

/** Trains a GPT-2-style byte-level BPE tokenizer (every byte is in the vocabulary, so nothing is unknown). */
export async function trainByteLevelBpe(corpus: Corpus, o: TrainOptions): Promise<Tokenizer> {
  const shape = byteLevelBpeTokenizer(new Map([['<|endoftext|>', 0]]), []);
  const words = await countWords(corpus, shape);
  const { vocab, merges } = trainBpeModel(words, {
    vocabSize: o.vocabSize,
    minFrequency: o.minFrequency ?? 2,
    specialTokens: o.specialTokens ?? ['<|endoftext|>'],
    initialAlphabet: BYTE_TO_CHAR,
  });
  return byteLevelBpeTokenizer(vocab, merges, o.specialTokens ?? ['<|endoftext|>']);
}

/** Trains a BERT-style WordPiece tokenizer (HF's method: BPE with a "##" continuation prefix). */
export async function trainWordPiece(
  corpus: Corpus,
  o: TrainOptions & { lowercase?: boolean; limitAlphabet?: number },
): Promise<Tokenizer> {
  const shape = bertWordPieceTokenizer(new Map([['[UNK]', 0]]), { lowercase: o.lowercase ?? true });
  const words = await countWords(corpus, shape);
  const { vocab } = trainBpeModel(words, {
    vocabSize: o.vocabSize,
    minFrequency: o.minFrequency ?? 2,
    specialTokens: o.specialTokens ?? BERT_SPECIALS,
    continuingSubwordPrefix: '##',
    limitAlphabet: o.limitAlphabet ?? 1000,
  });
  if (!vocab.has('[UNK]')) throw new TokenizerError('trainWordPiece: specialTokens must include "[UNK]".');
  return bertWordPieceTokenizer(vocab, { lowercase: o.lowercase ?? true });
}

// ---------------- Unigram ----------------

export interface UnigramTrainOptions extends TrainOptions {
  /** Number of <extra_id_N> sentinels appended after training (T5: 100). Counted outside vocabSize. */
  extraIds?: number;
  maxPieceLength?: number;
  seedSize?: number;
  shrinkingFactor?: number;
  emIterations?: number;
}

function digamma(x: number): number {
  let r = 0;
  while (x < 7) {
    r -= 1 / x;
    x += 1;
  }
  x -= 0.5;
  const xx = 1 / x;
  const xx2 = xx * xx;
  const xx4 = xx2 * xx2;
  return r + Math.log(x) + xx2 / 24 - (7 / 960) * xx4 + (31 / 8064) * xx4 * xx2 - (127 / 30720) * xx4 * xx4;
}

function logAdd(a: number, b: number): number {
  if (a === Number.NEGATIVE_INFINITY) return b;
  if (b === Number.NEGATIVE_INFINITY) return a;
  return a > b ? a + Math.log1p(Math.exp(b - a)) : b + Math.log1p(Math.exp(a - b));
}

/**
 * Trains a T5-style Unigram tokenizer as SentencePiece does: seed pieces from frequent
 * substrings, EM re-estimation of piece log-probabilities, then pruning the pieces whose
 * removal costs least likelihood, until the target size. Deterministic: ties break by piece.
 */
export async function trainUnigram(corpus: Corpus, o: UnigramTrainOptions): Promise<Tokenizer> {
  const specials = o.specialTokens ?? ['<pad>', '</s>', '<unk>'];
  const maxLen = o.maxPieceLength ?? 16;
  const shrink = o.shrinkingFactor ?? 0.75;
  const emIters = o.emIterations ?? 2;
  const shape = t5UnigramTokenizer([['<unk>', 0]], { extraIds: 0, unkId: 0 });
  const wordMap = await countWords(corpus, shape);
  const words = [...wordMap.entries()].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));

  const chars = new Map<string, number>();
  const subs = new Map<string, number>();
  for (const [w, c] of words) {
    const cps = [...w];
    for (const ch of cps) chars.set(ch, (chars.get(ch) ?? 0) + c);
    for (let i = 0; i < cps.length; i++) {
      let s = cps[i]!;
      for (let j = i + 1; j < cps.length && j - i < maxLen; j++) {
        s += cps[j]!;
        subs.set(s, (subs.get(s) ?? 0) + c);
      }
    }
  }
  const target = checkVocabSize(o.vocabSize, specials.length + chars.size) - specials.length;
  const seedSize = o.seedSize ?? 1_000_000;
  const seed = [...subs.entries()]
    .filter(([, f]) => f > 1)
    .map(([s, f]): [string, number] => [s, f * [...s].length])
    .sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1))
    .slice(0, seedSize);
  let pieces: Array<[string, number]> = [...[...chars.entries()].map(([ch, f]): [string, number] => [ch, f]), ...seed];
  const required = new Set(chars.keys());
  const norm = (ps: Array<[string, number]>) => {
    const total = Math.log(ps.reduce((t, [, f]) => t + f, 0));
    return ps.map(([p, f]): [string, number] => [p, Math.log(f) - total]);
  };
  pieces = norm(pieces);

  const em = () => {
    const model = new UnigramModel(pieces, null);
    const expected = new Float64Array(pieces.length);
    for (const [w, c] of words) {
      // Forward-backward over the lattice of every piece occurrence in the word.
      const n = w.length;
      const edges: Array<[number, number, number]> = [];
      for (let i = 0; i < n; i++) {
        for (let len = 1; len <= maxLen * 2 && i + len <= n; len++) {
          const id = model.vocab.get(w.slice(i, i + len));
          if (id !== undefined) edges.push([i, i + len, id]);
        }
      }
      const alpha = new Float64Array(n + 1).fill(Number.NEGATIVE_INFINITY);
      const beta = new Float64Array(n + 1).fill(Number.NEGATIVE_INFINITY);
      alpha[0] = 0;
      beta[n] = 0;
      for (const [a, b, id] of edges) alpha[b] = logAdd(alpha[b]!, alpha[a]! + pieces[id]![1]);
      for (let k = edges.length - 1; k >= 0; k--) {
        const [a, b, id] = edges[k]!;
        beta[a] = logAdd(beta[a]!, beta[b]! + pieces[id]![1]);
      }
      const z = alpha[n]!;
      for (const [a, b, id] of edges) expected[id]! += c * Math.exp(alpha[a]! + pieces[id]![1] + beta[b]! - z);
    }
    // M-step with SentencePiece's Bayesian smoothing (digamma) and its 0.5 expected-count floor.
    const kept: Array<[string, number]> = [];
    pieces.forEach(([p], i) => {
      if (expected[i]! >= 0.5 || required.has(p)) kept.push([p, Math.max(expected[i]!, 1e-3)]);
    });
    const total = digamma(kept.reduce((t, [, f]) => t + f, 0));
    pieces = kept.map(([p, f]) => [p, digamma(f) - total]);
  };

  const prune = (desired: number) => {
    const model = new UnigramModel(pieces, null);
    const freq = new Float64Array(pieces.length);
    for (const [w, c] of words) for (const [, , id] of model.viterbi(w)) if (id >= 0) freq[id]! += c;
    const total = freq.reduce((t, f) => t + f, 0);
    const logTotal = Math.log(total);
    const scored: Array<[number, number]> = [];
    pieces.forEach(([p], i) => {
      if (required.has(p)) return;
      if (freq[i] === 0) return; // never on a best path: removing it costs nothing.
      const alt = model.viterbi(p, i).map(([, , id]) => id);
      const logAlt = Math.log(total + freq[i]! * (alt.length - 1));
      let altLogProb = 0;
      for (const j of alt) altLogProb += Math.log(Math.max(freq[j]! + freq[i]!, 1e-10)) - logAlt;
      const loss = freq[i]! * (Math.log(freq[i]!) - logTotal - altLogProb);
      scored.push([i, loss]);
    });
    scored.sort((x, y) => y[1] - x[1] || x[0] - y[0]);
    const keepN = Math.max(desired - required.size, 0);
    const keep = new Set(scored.slice(0, keepN).map(([i]) => i));
    pieces = pieces.filter(([p], i) => required.has(p) || keep.has(i));
  };

  // SentencePiece overshoots by 10% while pruning and trims to the exact size at the end.
  const desired = Math.floor(target * 1.1);
  for (let round = 0; round < 100; round++) {
    for (let k = 0; k < emIters; k++) em();
    if (pieces.length <= desired) break;
    prune(Math.max(desired, Math.floor(pieces.length * shrink)));
  }
  const sorted = pieces
    .map((p, i): [string, number, number] => [p[0], p[1], i])
    .sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1));
  const final: Array<[string, number]> = [];
  for (const [p, s] of sorted) if (required.has(p)) final.push([p, s]);
  for (const [p, s] of sorted) if (!required.has(p) && final.length < target) final.push([p, s]);
  final.sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1));
  const out: Array<[string, number]> = [...specials.map((s): [string, number] => [s, 0]), ...final];
  return t5UnigramTokenizer(out, {
    extraIds: o.extraIds ?? 100,
    unkId: specials.indexOf('<unk>') >= 0 ? specials.indexOf('<unk>') : 0,
  });
}
