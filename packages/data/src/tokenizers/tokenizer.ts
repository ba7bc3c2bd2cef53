import { readFile, writeFile } from 'node:fs/promises';
import { TokenizerError } from './errors.js';
import { type Model, createModel } from './models.js';
import { type Normalizer, createNormalizer } from './normalizers.js';
import { type PreTokenizer, createPreTokenizer } from './pretokenizers.js';
import {
  type Decoder,
  type Encoding,
  type PostProcessor,
  createDecoder,
  createPostProcessor,
  emptyEncoding,
  pushToken,
} from './processors.js';
import { Aligned, isWhitespace } from './text.js';

type Json = Record<string, unknown>;

export interface AddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

export interface TruncationParams {
  max_length: number;
  strategy: 'LongestFirst' | 'OnlyFirst' | 'OnlySecond';
  stride: number;
  direction: 'Right' | 'Left';
}

export interface PaddingParams {
  strategy: 'BatchLongest' | { Fixed: number };
  direction: 'Right' | 'Left';
  pad_to_multiple_of: number | null;
  pad_id: number;
  pad_type_id: number;
  pad_token: string;
}

export interface EncodeOptions {
  /** Apply the post-processor's template ([CLS] ... [SEP] etc.). Default true. */
  addSpecialTokens?: boolean;
}

export type EncodeInput = string | [string, string];

export interface TokenizerParts {
  model: Model;
  normalizer?: Normalizer | null;
  preTokenizer?: PreTokenizer | null;
  postProcessor?: PostProcessor | null;
  decoder?: Decoder | null;
  addedTokens?: AddedToken[];
  truncation?: TruncationParams | null;
  padding?: PaddingParams | null;
}

/**
 * An HF-compatible tokenizer pipeline: added tokens -> normalizer -> pre-tokenizer
 * -> model -> truncation -> post-processor -> padding; and decoding back.
 */
export class Tokenizer {
  model: Model;
  normalizer: Normalizer | null;
  preTokenizer: PreTokenizer | null;
  postProcessor: PostProcessor | null;
  decoder: Decoder | null;
  truncation: TruncationParams | null;
  padding: PaddingParams | null;
  #added: AddedToken[] = [];
  #addedByContent = new Map<string, AddedToken>();
  #addedById = new Map<number, AddedToken>();
  /** Added tokens by first character: their contents by length, longest first (leftmost-longest matching). */
  #addedByFirstChar = new Map<string, { lengths: number[]; byContent: Map<string, AddedToken> }>();
  #maxAddedId = -1;

  constructor(parts: TokenizerParts) {
    this.model = parts.model;
    this.normalizer = parts.normalizer ?? null;
    this.preTokenizer = parts.preTokenizer ?? null;
    this.postProcessor = parts.postProcessor ?? null;
    this.decoder = parts.decoder ?? null;
    this.truncation = parts.truncation ?? null;
    this.padding = parts.padding ?? null;
    for (const t of parts.addedTokens ?? []) this.#register(t);
  }

  // ---------------- loading and saving ----------------

  static fromJSON(json: string | Json): Tokenizer {
    let j: Json;
    if (typeof json === 'string') {
      try {
        j = JSON.parse(json) as Json;
      } catch (err) {
        throw new TokenizerError(`tokenizer.json is not valid JSON: ${(err as Error).message}`);
      }
    } else j = json;
    if (!j || typeof j !== 'object') throw new TokenizerError('tokenizer.json must hold a JSON object.');
    const added = ((j.added_tokens as Json[] | undefined) ?? []).map((t, i): AddedToken => {
      if (typeof t.content !== 'string' || !Number.isInteger(t.id)) {
        throw new TokenizerError(`tokenizer.json: added_tokens[${i}] needs "id" (integer) and "content" (string).`);
      }
      return {
        id: t.id as number,
        content: t.content,
        single_word: Boolean(t.single_word),
        lstrip: Boolean(t.lstrip),
        rstrip: Boolean(t.rstrip),
        normalized: (t.normalized as boolean | undefined) ?? !t.special,
        special: Boolean(t.special),
      };
    });
    return new Tokenizer({
      model: createModel(j.model as Json),
      normalizer: createNormalizer(j.normalizer as Json | null),
      preTokenizer: createPreTokenizer(j.pre_tokenizer as Json | null),
      postProcessor: createPostProcessor(j.post_processor as Json | null),
      decoder: createDecoder(j.decoder as Json | null),
      addedTokens: added,
      truncation: (j.truncation as TruncationParams | null) ?? null,
      padding: (j.padding as PaddingParams | null) ?? null,
    });
  }

  static async fromFile(path: string): Promise<Tokenizer> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new TokenizerError(`Could not read tokenizer file ${path}: ${(err as Error).message}`);
    }
    return Tokenizer.fromJSON(text);
  }

  toJSON(): Json {
    return {
      version: '1.0',
      truncation: this.truncation,
      padding: this.padding,
      added_tokens: [...this.#added].sort((a, b) => a.id - b.id),
      normalizer: this.normalizer?.toJSON() ?? null,
      pre_tokenizer: this.preTokenizer?.toJSON() ?? null,
      post_processor: this.postProcessor?.toJSON() ?? null,
      decoder: this.decoder?.toJSON() ?? null,
      model: this.model.toJSON(),
    };
  }

  async save(path: string, pretty = true): Promise<void> {
    await writeFile(path, JSON.stringify(this.toJSON(), null, pretty ? 2 : undefined));
  }

  // ---------------- vocabulary ----------------

  // Incremental: files of current models carry thousands of added tokens (Gemma 3: 6,415).
  #register(t: AddedToken): void {
    const old = this.#addedByContent.get(t.content);
    if (old) {
      this.#added = this.#added.filter((x) => x !== old);
      if (this.#addedById.get(old.id) === old) this.#addedById.delete(old.id);
    }
    this.#added.push(t);
    this.#addedByContent.set(t.content, t);
    this.#addedById.set(t.id, t);
    this.#maxAddedId = old ? this.#added.reduce((m, x) => Math.max(m, x.id), -1) : Math.max(this.#maxAddedId, t.id);
    if (!t.content) return;
    const k = t.content[0]!;
    let entry = this.#addedByFirstChar.get(k);
    if (!entry) this.#addedByFirstChar.set(k, (entry = { lengths: [], byContent: new Map() }));
    entry.byContent.set(t.content, t);
    if (!entry.lengths.includes(t.content.length)) {
      entry.lengths.push(t.content.length);
      // Longest first, so "<extra_id_10>" wins over a shorter token with the same start.
      entry.lengths.sort((x, y) => y - x);
    }
  }

  /** Adds tokens (special ones are never split and can be skipped when decoding); returns how many are new. */
  addTokens(tokens: Array<string | (Partial<AddedToken> & { content: string })>, special = false): number {
    let added = 0;
    for (const raw of tokens) {
      const t = typeof raw === 'string' ? { content: raw } : raw;
      if (!t.content) throw new TokenizerError('addTokens: a token needs non-empty content.');
      if (this.#addedByContent.has(t.content)) continue;
      const id = this.model.tokenToId(t.content) ?? this.getVocabSize(true);
      this.#register({
        id,
        content: t.content,
        single_word: t.single_word ?? false,
        lstrip: t.lstrip ?? false,
        rstrip: t.rstrip ?? false,
        normalized: t.normalized ?? !(t.special ?? special),
        special: t.special ?? special,
      });
      added++;
    }
    return added;
  }

  addSpecialTokens(tokens: string[]): number {
    return this.addTokens(tokens, true);
  }

  get addedTokens(): readonly AddedToken[] {
    return this.#added;
  }

  tokenToId(token: string): number | undefined {
    return this.#addedByContent.get(token)?.id ?? this.model.tokenToId(token);
  }

  idToToken(id: number): string | undefined {
    return this.#addedById.get(id)?.content ?? this.model.idToToken(id);
  }

  getVocabSize(withAdded = true): number {
    if (!withAdded) return this.model.vocabSize;
    return Math.max(this.model.vocabSize - 1, this.#maxAddedId) + 1;
  }

  // ---------------- encoding ----------------

  /** Splits raw text into [start, end, addedToken | null] sections, leftmost-longest on added tokens. */
  #sections(text: string): Array<[number, number, AddedToken | null]> {
    const out: Array<[number, number, AddedToken | null]> = [];
    if (this.#added.length === 0) return text.length ? [[0, text.length, null]] : [];
    let last = 0;
    for (let i = 0; i < text.length; i++) {
      const entry = this.#addedByFirstChar.get(text[i]!);
      if (!entry) continue;
      let hit: AddedToken | undefined;
      for (const n of entry.lengths) {
        const t = entry.byContent.get(text.slice(i, i + n));
        if (t && (!t.single_word || this.#isSingleWord(text, i, i + n))) {
          hit = t;
          break;
        }
      }
      if (!hit) continue;
      let a = i;
      let b = i + hit.content.length;
      if (hit.lstrip) while (a > last && isWhitespace(text[a - 1]!)) a--;
      if (hit.rstrip) while (b < text.length && isWhitespace(text[b]!)) b++;
      if (a > last) out.push([last, a, null]);
      out.push([a, b, hit]);
      last = b;
      i = b - 1;
    }
    if (last < text.length) out.push([last, text.length, null]);
    return out;
  }

  #isSingleWord(text: string, a: number, b: number): boolean {
    const word = /[\p{L}\p{N}_]/u;
    return (a === 0 || !word.test(text[a - 1]!)) && (b >= text.length || !word.test(text[b]!));
  }

  /** Model tokens for one sequence, before truncation and special tokens. */
  #encodeSequence(text: string): Encoding {
    if (typeof text !== 'string') throw new TokenizerError(`encode: input must be a string; got ${typeof text}.`);
    const e = emptyEncoding();
    let word = 0;
    for (const [a, b, added] of this.#sections(text)) {
      if (added) {
        pushToken(e, added.id, added.content, [a, b], 0, added.special, word++, 0);
        continue;
      }
      let s = Aligned.of(text.slice(a, b), a);
      if (this.normalizer) s = this.normalizer.normalize(s);
      const words = this.preTokenizer ? this.preTokenizer.split([s], { first: a === 0 }) : [s];
      for (const w of words) {
        if (!w.length) continue;
        for (const t of this.model.tokenize(w.text))
          pushToken(e, t.id, t.value, w.span(t.start, t.end), 0, false, word, 0);
        word++;
      }
    }
    return e;
  }

  encode(input: string, pair?: string | null, options: EncodeOptions = {}): Encoding {
    const addSpecial = options.addSpecialTokens ?? true;
    let a = this.#encodeSequence(input);
    let b = pair === undefined || pair === null ? null : this.#encodeSequence(pair);
    if (this.truncation) [a, b] = this.#truncate(a, b, addSpecial);
    let out = this.postProcessor ? this.postProcessor.process(a, b, addSpecial) : defaultProcess(a, b);
    if (this.padding) out = padTo(out, this.#padLength([out.ids.length]), this.padding);
    return out;
  }

  /** Encodes many inputs (strings or [first, second] pairs), padded together when padding is on. */
  encodeBatch(inputs: EncodeInput[], options: EncodeOptions = {}): Encoding[] {
    if (!Array.isArray(inputs))
      throw new TokenizerError('encodeBatch: inputs must be an array of strings or [string, string] pairs.');
    const saved = this.padding;
    this.padding = null;
    let out: Encoding[];
    try {
      out = inputs.map((x) => (Array.isArray(x) ? this.encode(x[0], x[1], options) : this.encode(x, null, options)));
    } finally {
      this.padding = saved;
    }
    if (!this.padding) return out;
    const len = this.#padLength(out.map((e) => e.ids.length));
    return out.map((e) => padTo(e, len, this.padding!));
  }

  #padLength(lengths: number[]): number {
    const p = this.padding!;
    let len = typeof p.strategy === 'object' ? p.strategy.Fixed : Math.max(0, ...lengths);
    if (p.pad_to_multiple_of && len % p.pad_to_multiple_of) len += p.pad_to_multiple_of - (len % p.pad_to_multiple_of);
    return len;
  }

  #truncate(a: Encoding, b: Encoding | null, addSpecial: boolean): [Encoding, Encoding | null] {
    const t = this.truncation!;
    const room = t.max_length - (addSpecial && this.postProcessor ? this.postProcessor.addedTokens(b !== null) : 0);
    if (room < 0)
      throw new TokenizerError(
        `truncation.max_length ${t.max_length} leaves no room for the special tokens this tokenizer adds.`,
      );
    let n1 = a.ids.length;
    let n2 = b ? b.ids.length : 0;
    let over = n1 + n2 - room;
    if (over <= 0) return [a, b];
    if (!b || t.strategy === 'OnlyFirst') {
      if (over > n1)
        throw new TokenizerError(
          `truncation: the first sequence is too short to remove ${over} tokens (strategy ${t.strategy}); raise max_length or use LongestFirst.`,
        );
      n1 -= over;
    } else if (t.strategy === 'OnlySecond') {
      if (over > n2)
        throw new TokenizerError(
          `truncation: the second sequence is too short to remove ${over} tokens (OnlySecond); raise max_length or use LongestFirst.`,
        );
      n2 -= over;
    } else {
      while (over-- > 0) {
        if (n1 > n2) n1--;
        else n2--;
      }
    }
    const left = t.direction === 'Left';
    return [cut(a, n1, left), b ? cut(b, n2, left) : null];
  }

  // ---------------- decoding ----------------

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    const skip = options.skipSpecialTokens ?? true;
    const tokens: string[] = [];
    for (const id of ids) {
      const added = this.#addedById.get(id);
      if (added) {
        if (!(skip && added.special)) tokens.push(added.content);
        continue;
      }
      const t = this.model.idToToken(id);
      if (t === undefined)
        throw new TokenizerError(`decode: id ${id} is not in the vocabulary (size ${this.getVocabSize()}).`);
      tokens.push(t);
    }
    return this.decoder ? this.decoder.decodeChain(tokens).join('') : tokens.join(' ');
  }

  decodeBatch(batch: readonly (readonly number[])[], options: { skipSpecialTokens?: boolean } = {}): string[] {
    return batch.map((ids) => this.decode(ids, options));
  }
}

function defaultProcess(a: Encoding, b: Encoding | null): Encoding {
  if (!b) return a;
  const out = emptyEncoding();
  for (const [e, seq] of [
    [a, 0],
    [b, 1],
  ] as const) {
    for (let i = 0; i < e.ids.length; i++)
      pushToken(out, e.ids[i]!, e.tokens[i]!, e.offsets[i]!, seq, e.specialTokensMask[i] === 1, e.wordIds[i]!, seq);
  }
  return out;
}

function cut(e: Encoding, n: number, left: boolean): Encoding {
  const [a, b] = left ? [e.ids.length - n, e.ids.length] : [0, n];
  return {
    ids: e.ids.slice(a, b),
    tokens: e.tokens.slice(a, b),
    offsets: e.offsets.slice(a, b),
    typeIds: e.typeIds.slice(a, b),
    attentionMask: e.attentionMask.slice(a, b),
    specialTokensMask: e.specialTokensMask.slice(a, b),
    wordIds: e.wordIds.slice(a, b),
    sequenceIds: e.sequenceIds.slice(a, b),
  };
}

function padTo(e: Encoding, len: number, p: PaddingParams): Encoding {
  const n = len - e.ids.length;
  if (n <= 0) return e;
  const fill = <T>(v: T): T[] => new Array<T>(n).fill(v);
  const join = <T>(xs: T[], pad: T[]): T[] => (p.direction === 'Left' ? pad.concat(xs) : xs.concat(pad));
  return {
    ids: join(e.ids, fill(p.pad_id)),
    tokens: join(e.tokens, fill(p.pad_token)),
    offsets: join(
      e.offsets,
      Array.from({ length: n }, (): [number, number] => [0, 0]),
    ),
    typeIds: join(e.typeIds, fill(p.pad_type_id)),
    attentionMask: join(e.attentionMask, fill(0)),
    specialTokensMask: join(e.specialTokensMask, fill(1)),
    wordIds: join(e.wordIds, fill<number | null>(null)),
    sequenceIds: join(e.sequenceIds, fill<number | null>(null)),
  };
}
