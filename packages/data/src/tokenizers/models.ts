import { TokenizerError, need, unknownType } from './errors.js';
import { utf8 } from './text.js';
import { Heap } from './heap.js';

type Json = Record<string, unknown>;

/** A model token; start/end are code-unit positions in the word it came from. */
export interface Token {
  id: number;
  value: string;
  start: number;
  end: number;
}

export interface Model {
  readonly type: 'BPE' | 'WordPiece' | 'Unigram';
  tokenize(word: string): Token[];
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  readonly vocabSize: number;
  toJSON(): Json;
}

function codePoints(word: string): Array<[string, number, number]> {
  const out: Array<[string, number, number]> = [];
  for (let i = 0; i < word.length; ) {
    const w = word.codePointAt(i)! > 0xffff ? 2 : 1;
    out.push([word.slice(i, i + w), i, i + w]);
    i += w;
  }
  return out;
}

function byteToken(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
}

function vocabMap(v: unknown, what: string): Map<string, number> {
  if (!v || typeof v !== 'object' || Array.isArray(v))
    throw new TokenizerError(`tokenizer.json: ${what} must be an object of token -> id.`);
  const m = new Map<string, number>();
  for (const [k, id] of Object.entries(v as Record<string, unknown>)) {
    if (!Number.isInteger(id) || (id as number) < 0)
      throw new TokenizerError(
        `tokenizer.json: ${what}[${JSON.stringify(k)}] must be a non-negative integer id; got ${JSON.stringify(id)}.`,
      );
    m.set(k, id as number);
  }
  return m;
}

function invert(m: Map<string, number>): string[] {
  const inv: string[] = [];
  for (const [k, id] of m) inv[id] = k;
  return inv;
}

/** Words of up to this many symbols merge by linear scan; longer ones through a heap. */
const SHORT_WORD = 24;

/** Pair keys: left id * PAIR + right id (vocabularies up to 2^21 tokens). */
const PAIR = 2 ** 21;

export interface BpeOptions {
  vocab: Map<string, number>;
  merges: Array<[string, string]>;
  unkToken?: string | null;
  continuingSubwordPrefix?: string | null;
  endOfWordSuffix?: string | null;
  fuseUnk?: boolean;
  byteFallback?: boolean;
  ignoreMerges?: boolean;
}

export class BpeModel implements Model {
  readonly type = 'BPE' as const;
  readonly vocab: Map<string, number>;
  readonly merges: Array<[string, string]>;
  /** (left id, right id) -> [rank, merged id or -1 when the merged token is missing]. */
  readonly #pairs = new Map<number, [number, number]>();
  readonly #inv: string[];
  readonly #cache = new Map<string, Token[]>();
  readonly unkToken: string | null;
  readonly prefix: string | null;
  readonly suffix: string | null;
  readonly fuseUnk: boolean;
  readonly byteFallback: boolean;
  readonly ignoreMerges: boolean;
  // Kept as given ("" or null) so a saved file equals the loaded one.
  readonly #rawPrefix: string | null;
  readonly #rawSuffix: string | null;

  constructor(o: BpeOptions) {
    this.#rawPrefix = o.continuingSubwordPrefix ?? null;
    this.#rawSuffix = o.endOfWordSuffix ?? null;
    this.vocab = o.vocab;
    this.merges = o.merges;
    this.#inv = invert(o.vocab);
    this.unkToken = o.unkToken ?? null;
    this.prefix = o.continuingSubwordPrefix || null;
    this.suffix = o.endOfWordSuffix || null;
    this.fuseUnk = o.fuseUnk ?? false;
    this.byteFallback = o.byteFallback ?? false;
    this.ignoreMerges = o.ignoreMerges ?? false;
    if (this.#inv.length > PAIR)
      throw new TokenizerError(
        `BPE: vocabularies over ${PAIR} tokens are not supported; this one has ids up to ${this.#inv.length - 1}.`,
      );
    const prefixLen = this.prefix?.length ?? 0;
    o.merges.forEach(([a, b], rank) => {
      const ia = o.vocab.get(a);
      const ib = o.vocab.get(b);
      // A merge of tokens outside the vocabulary can never apply.
      if (ia === undefined || ib === undefined) return;
      const key = ia * PAIR + ib;
      if (this.#pairs.has(key)) return;
      const merged = a + (prefixLen && b.startsWith(this.prefix!) ? b.slice(prefixLen) : b);
      this.#pairs.set(key, [rank, o.vocab.get(merged) ?? -1]);
    });
  }

  static fromJSON(j: Json): BpeModel {
    if (j.dropout !== null && j.dropout !== undefined && j.dropout !== 0) {
      throw new TokenizerError('tokenizer.json: BPE dropout is not supported at encode time; set "dropout": null.');
    }
    const vocab = vocabMap(j.vocab, 'model.vocab');
    const merges = ((j.merges as unknown[] | undefined) ?? []).map((m, i): [string, string] => {
      if (typeof m === 'string') {
        const k = m.indexOf(' ', 1);
        if (k < 0)
          throw new TokenizerError(`tokenizer.json: model.merges[${i}] must be "a b"; got ${JSON.stringify(m)}.`);
        return [m.slice(0, k), m.slice(k + 1)];
      }
      if (Array.isArray(m) && m.length === 2) return [String(m[0]), String(m[1])];
      throw new TokenizerError(
        `tokenizer.json: model.merges[${i}] must be "a b" or ["a","b"]; got ${JSON.stringify(m)}.`,
      );
    });
    return new BpeModel({
      vocab,
      merges,
      unkToken: j.unk_token as string | null,
      continuingSubwordPrefix: j.continuing_subword_prefix as string | null,
      endOfWordSuffix: j.end_of_word_suffix as string | null,
      fuseUnk: j.fuse_unk as boolean,
      byteFallback: j.byte_fallback as boolean,
      ignoreMerges: j.ignore_merges as boolean,
    });
  }

  get vocabSize(): number {
    return this.vocab.size;
  }
  tokenToId(t: string): number | undefined {
    return this.vocab.get(t);
  }
  idToToken(id: number): string | undefined {
    return this.#inv[id];
  }

  tokenize(word: string): Token[] {
    const hit = this.#cache.get(word);
    if (hit) return hit;
    const out = this.#tokenize(word);
    if (this.#cache.size > 50_000) this.#cache.clear();
    this.#cache.set(word, out);
    return out;
  }

  #tokenize(word: string): Token[] {
    if (this.ignoreMerges) {
      const id = this.vocab.get(word);
      if (id !== undefined) return [{ id, value: word, start: 0, end: word.length }];
    }
    const cps = codePoints(word);
    type Sym = { id: number; a: number; b: number; unk?: boolean };
    const syms: Sym[] = [];
    const unkId = this.unkToken === null ? undefined : this.vocab.get(this.unkToken);
    cps.forEach(([c, a, b], i) => {
      let s = c;
      if (i > 0 && this.prefix) s = this.prefix + s;
      if (i === cps.length - 1 && this.suffix) s += this.suffix;
      const id = this.vocab.get(s);
      if (id !== undefined) {
        syms.push({ id, a, b });
        return;
      }
      if (this.byteFallback) {
        const bytes = [...utf8(c)].map((x) => this.vocab.get(byteToken(x)));
        if (bytes.every((t) => t !== undefined)) {
          for (const t of bytes) syms.push({ id: t!, a, b, unk: true });
          return;
        }
      }
      // HF drops characters it cannot represent when no unk token is set.
      if (this.unkToken === null) return;
      if (unkId === undefined) {
        throw new TokenizerError(
          `BPE: unk_token ${JSON.stringify(this.unkToken)} is not in the vocabulary; add it or set model.unk_token to null.`,
        );
      }
      const last = syms[syms.length - 1];
      if (this.fuseUnk && last?.unk && last.id === unkId) last.b = b;
      else syms.push({ id: unkId, a, b, unk: true });
    });
    return this.#merge(syms);
  }

  /**
   * Merges the lowest-ranked adjacent pair, leftmost first, one at a time (a pair that uses
   * a merged token always ranks after the merge that made it, so this equals GPT-2's
   * merge-every-occurrence loop). Symbols form a linked list and candidate pairs a min-heap
   * keyed by (rank, position): O(n log n) per word, which matters for SentencePiece-style
   * files with no pre-tokenizer, where a whole line is one word.
   */
  #merge(syms: Array<{ id: number; a: number; b: number }>): Token[] {
    const n = syms.length;
    if (n <= SHORT_WORD) return this.#mergeShort(syms);
    const id = Int32Array.from(syms, (x) => x.id);
    const end = Int32Array.from(syms, (x) => x.b);
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    // Heap entries: [rank, left symbol index, left id, right id] (the ids detect stale entries).
    type Candidate = [number, number, number, number];
    const heap = new Heap<Candidate>((x, y) => x[0] < y[0] || (x[0] === y[0] && x[1] < y[1]));
    const push = (left: number) => {
      const right = next[left]!;
      if (right < 0) return;
      const pair = this.#pairs.get(id[left]! * PAIR + id[right]!);
      if (pair) heap.push([pair[0], left, id[left]!, id[right]!]);
    };
    for (let i = 0; i + 1 < n; i++) push(i);
    while (heap.size) {
      const [, left, leftId, rightId] = heap.pop()!;
      const right = next[left]!;
      // Stale: the left symbol was merged away (id -1) or changed, or its neighbour did.
      if (right < 0 || id[left] !== leftId || id[right] !== rightId) continue;
      const merged = this.#pairs.get(leftId * PAIR + rightId)![1];
      if (merged < 0) {
        throw new TokenizerError(
          `BPE: merging "${this.#inv[leftId]}" + "${this.#inv[rightId]}" gives a token missing from the vocabulary; the merges and vocab of this tokenizer.json disagree.`,
        );
      }
      id[left] = merged;
      end[left] = end[right]!;
      id[right] = -1;
      next[left] = next[right]!;
      if (next[right]! >= 0) prev[next[right]!] = left;
      if (prev[left]! >= 0) push(prev[left]!);
      push(left);
    }
    const out: Token[] = [];
    for (let i = 0; i >= 0; i = next[i]!)
      out.push({ id: id[i]!, value: this.#inv[id[i]!]!, start: syms[i]!.a, end: end[i]! });
    return out;
  }

  /** The same merge order by a linear scan: faster than the heap for the short words of byte-level files. */
  #mergeShort(syms: Array<{ id: number; a: number; b: number }>): Token[] {
    const INF = Number.POSITIVE_INFINITY;
    const rankOf = (i: number) => this.#pairs.get(syms[i]!.id * PAIR + syms[i + 1]!.id)?.[0] ?? INF;
    const ranks: number[] = [];
    for (let i = 0; i + 1 < syms.length; i++) ranks.push(rankOf(i));
    while (ranks.length) {
      let best = 0;
      for (let i = 1; i < ranks.length; i++) if (ranks[i]! < ranks[best]!) best = i;
      if (ranks[best] === INF) break;
      const x = syms[best]!;
      const y = syms[best + 1]!;
      const merged = this.#pairs.get(x.id * PAIR + y.id)![1];
      if (merged < 0) {
        throw new TokenizerError(
          `BPE: merging "${this.#inv[x.id]}" + "${this.#inv[y.id]}" gives a token missing from the vocabulary; the merges and vocab of this tokenizer.json disagree.`,
        );
      }
      syms.splice(best, 2, { id: merged, a: x.a, b: y.b });
      ranks.splice(best, 1);
      if (best < ranks.length) ranks[best] = rankOf(best);
      if (best > 0) ranks[best - 1] = rankOf(best - 1);
    }
    return syms.map((x) => ({ id: x.id, value: this.#inv[x.id]!, start: x.a, end: x.b }));
  }

  toJSON(): Json {
    const spaced = this.merges.some(([a, b]) => a.includes(' ') || b.includes(' '));
    return {
      type: 'BPE',
      dropout: null,
      unk_token: this.unkToken,
      continuing_subword_prefix: this.#rawPrefix,
      end_of_word_suffix: this.#rawSuffix,
      fuse_unk: this.fuseUnk,
      byte_fallback: this.byteFallback,
      ignore_merges: this.ignoreMerges,
      vocab: Object.fromEntries([...this.vocab].sort((x, y) => x[1] - y[1])),
      // Tokens with spaces cannot be written as "a b"; HF's newer array form handles them.
      merges: spaced ? this.merges.map(([a, b]) => [a, b]) : this.merges.map(([a, b]) => `${a} ${b}`),
    };
  }
}

export class WordPieceModel implements Model {
  readonly type = 'WordPiece' as const;
  readonly #inv: string[];
  constructor(
    readonly vocab: Map<string, number>,
    readonly unkToken = '[UNK]',
    readonly prefix = '##',
    readonly maxInputCharsPerWord = 100,
  ) {
    this.#inv = invert(vocab);
    if (!vocab.has(unkToken)) {
      throw new TokenizerError(
        `WordPiece: the unk token ${JSON.stringify(unkToken)} is not in the vocabulary; add it or set model.unk_token to a token that is.`,
      );
    }
  }

  static fromJSON(j: Json): WordPieceModel {
    return new WordPieceModel(
      vocabMap(j.vocab, 'model.vocab'),
      (j.unk_token as string | undefined) ?? '[UNK]',
      (j.continuing_subword_prefix as string | undefined) ?? '##',
      (j.max_input_chars_per_word as number | undefined) ?? 100,
    );
  }

  get vocabSize(): number {
    return this.vocab.size;
  }
  tokenToId(t: string): number | undefined {
    return this.vocab.get(t);
  }
  idToToken(id: number): string | undefined {
    return this.#inv[id];
  }

  tokenize(word: string): Token[] {
    const cps = codePoints(word);
    const unk = [{ id: this.vocab.get(this.unkToken)!, value: this.unkToken, start: 0, end: word.length }];
    if (cps.length > this.maxInputCharsPerWord) return unk;
    const out: Token[] = [];
    let i = 0;
    while (i < cps.length) {
      let j = cps.length;
      let found: Token | undefined;
      while (j > i) {
        let sub = word.slice(cps[i]![1], cps[j - 1]![2]);
        if (i > 0) sub = this.prefix + sub;
        const id = this.vocab.get(sub);
        if (id !== undefined) {
          found = { id, value: sub, start: cps[i]![1], end: cps[j - 1]![2] };
          break;
        }
        j--;
      }
      if (!found) return unk;
      out.push(found);
      i = j;
    }
    return out;
  }

  toJSON(): Json {
    return {
      type: 'WordPiece',
      unk_token: this.unkToken,
      continuing_subword_prefix: this.prefix,
      max_input_chars_per_word: this.maxInputCharsPerWord,
      vocab: Object.fromEntries([...this.vocab].sort((x, y) => x[1] - y[1])),
    };
  }
}

/** HF's penalty below the lowest piece score for an unknown character. */
const UNK_PENALTY = 10;

export class UnigramModel implements Model {
  readonly type = 'Unigram' as const;
  readonly vocab: Map<string, number>;
  readonly #maxLen: number;
  readonly #minScore: number;
  constructor(
    readonly pieces: Array<[string, number]>,
    readonly unkId: number | null,
    readonly byteFallback = false,
  ) {
    this.vocab = new Map();
    pieces.forEach(([p], i) => {
      if (!this.vocab.has(p)) this.vocab.set(p, i);
    });
    this.#maxLen = pieces.reduce((m, [p]) => Math.max(m, p.length), 1);
    this.#minScore = pieces.reduce((m, [, s]) => Math.min(m, s), Number.POSITIVE_INFINITY);
    if (unkId !== null && (unkId < 0 || unkId >= pieces.length)) {
      throw new TokenizerError(`Unigram: unk_id ${unkId} is outside the vocabulary (size ${pieces.length}).`);
    }
  }

  static fromJSON(j: Json): UnigramModel {
    const vocab = need(j.vocab as unknown[], 'model.vocab (a list of [piece, score])');
    const pieces = vocab.map((e, i): [string, number] => {
      if (!Array.isArray(e) || typeof e[0] !== 'string' || typeof e[1] !== 'number') {
        throw new TokenizerError(`tokenizer.json: model.vocab[${i}] must be [piece, score]; got ${JSON.stringify(e)}.`);
      }
      return [e[0], e[1]];
    });
    return new UnigramModel(pieces, (j.unk_id as number | null | undefined) ?? null, Boolean(j.byte_fallback));
  }

  get vocabSize(): number {
    return this.pieces.length;
  }
  tokenToId(t: string): number | undefined {
    return this.vocab.get(t);
  }
  idToToken(id: number): string | undefined {
    return this.pieces[id]?.[0];
  }
  score(id: number): number {
    return this.pieces[id]![1];
  }

  /** Best segmentation as [start, end, id] (id -1 = unknown), by Viterbi over code points. */
  viterbi(word: string, exclude = -1): Array<[number, number, number]> {
    const n = word.length;
    const best = new Float64Array(n + 1).fill(Number.NEGATIVE_INFINITY);
    const from = new Int32Array(n + 1).fill(-1);
    const via = new Int32Array(n + 1).fill(-2);
    best[0] = 0;
    const unkScore = this.#minScore - UNK_PENALTY;
    for (let i = 0; i < n; ) {
      const w = word.codePointAt(i)! > 0xffff ? 2 : 1;
      if (best[i] !== Number.NEGATIVE_INFINITY) {
        let single = false;
        for (let len = 1; len <= this.#maxLen && i + len <= n; len++) {
          const id = this.vocab.get(word.slice(i, i + len));
          if (id === undefined || id === exclude) continue;
          if (len === w) single = true;
          const s = best[i]! + this.pieces[id]![1];
          if (s > best[i + len]!) {
            best[i + len] = s;
            from[i + len] = i;
            via[i + len] = id;
          }
        }
        if (!single) {
          const s = best[i]! + unkScore;
          if (s > best[i + w]!) {
            best[i + w] = s;
            from[i + w] = i;
            via[i + w] = -1;
          }
        }
      }
      i += w;
    }
    const path: Array<[number, number, number]> = [];
    for (let e = n; e > 0; e = from[e]!) path.push([from[e]!, e, via[e]!]);
    return path.reverse();
  }

  tokenize(word: string): Token[] {
    const out: Token[] = [];
    let prevUnk = false;
    for (const [a, b, id] of this.viterbi(word)) {
      if (id === -1 || id === this.unkId) {
        if (this.unkId === null) {
          throw new TokenizerError(
            `Unigram: "${word.slice(a, b)}" is not in the vocabulary and the model has no unk_id; set model.unk_id.`,
          );
        }
        // Consecutive unknown characters become one unknown token, as in HF and SentencePiece;
        // its token string is the text it covers (HF's), its id the unk id.
        if (prevUnk) {
          const last = out[out.length - 1]!;
          last.end = b;
          last.value = word.slice(last.start, b);
        } else out.push({ id: this.unkId, value: word.slice(a, b), start: a, end: b });
        prevUnk = true;
      } else {
        out.push({ id, value: this.pieces[id]![0], start: a, end: b });
        prevUnk = false;
      }
    }
    if (!this.byteFallback) return out;
    return out.flatMap((t) => {
      if (t.id !== this.unkId) return [t];
      const bytes = [...utf8(word.slice(t.start, t.end))].map(byteToken);
      if (!bytes.every((b) => this.vocab.has(b))) return [t];
      return bytes.map((b) => ({ id: this.vocab.get(b)!, value: b, start: t.start, end: t.end }));
    });
  }

  toJSON(): Json {
    return {
      type: 'Unigram',
      unk_id: this.unkId,
      vocab: this.pieces.map(([p, s]) => [p, s]),
      byte_fallback: this.byteFallback,
    };
  }
}

export function createModel(j: Json | null | undefined): Model {
  if (!j) throw new TokenizerError('tokenizer.json: missing "model".');
  // Files written by old HF versions omit model.type; infer it from the fields.
  const type = j.type ?? (j.merges ? 'BPE' : Array.isArray(j.vocab) ? 'Unigram' : j.vocab ? 'WordPiece' : undefined);
  switch (type) {
    case 'BPE':
      return BpeModel.fromJSON(j);
    case 'WordPiece':
      return WordPieceModel.fromJSON(j);
    case 'Unigram':
      return UnigramModel.fromJSON(j);
    default:
      return unknownType('model', j.type, ['BPE', 'WordPiece', 'Unigram']);
  }
}
