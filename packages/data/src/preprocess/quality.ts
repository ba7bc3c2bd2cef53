import { TextStep } from './steps.js';

/**
 * Web-text quality filters with their published thresholds: Gopher (Rae et al. 2021,
 * table A1), C4 (Raffel et al. 2020, section 2.2) and FineWeb's additions (Penedo et al.
 * 2024). Option names and defaults follow HF datatrove's implementations, so a threshold
 * tuned there means the same here. Each drop is counted under a reason named after the rule.
 */

/**
 * Words and punctuation marks, the way NLTK's Treebank tokenizer (which the reference
 * filters use) splits English: a word keeps inner apostrophes, hyphens and dots ("don't",
 * "e-mail", "3.5"); every other non-space character is a token of its own.
 */
const WORD_RE = /[\p{L}\p{M}\p{N}]+(?:['’.-][\p{L}\p{M}\p{N}]+)*|\.\.\.|[^\s\p{L}\p{M}\p{N}]/gu;

export function splitWords(text: string): string[] {
  return text.match(WORD_RE) ?? [];
}

const PUNCTUATION = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'.split(''));
const ALPHA = /\p{L}/u;

/** Lines (or paragraphs) seen before, and the characters they hold: datatrove's `find_duplicates`. */
function duplicates(items: readonly string[]): { elements: number; chars: number } {
  const seen = new Set<string>();
  let elements = 0;
  let chars = 0;
  for (const item of items) {
    if (seen.has(item)) {
      elements++;
      chars += item.length;
    } else seen.add(item);
  }
  return { elements, chars };
}

/**
 * The document's n-grams as pairs of 32-bit hashes of their word ids (collisions ~2^-64
 * per pair), so counting them needs no strings; `chars` is each n-gram's length as
 * " ".join would write it.
 */
class NGrams {
  readonly ids: Int32Array;
  readonly lengths: Int32Array;
  constructor(words: readonly string[]) {
    const intern = new Map<string, number>();
    this.ids = new Int32Array(words.length);
    this.lengths = new Int32Array(words.length);
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      let id = intern.get(w);
      if (id === undefined) intern.set(w, (id = intern.size));
      this.ids[i] = id;
      this.lengths[i] = w.length;
    }
  }
  of(n: number): Grams {
    const count = Math.max(0, this.ids.length - n + 1);
    const g: Grams = { h1: new Uint32Array(count), h2: new Uint32Array(count), chars: new Int32Array(count) };
    for (let i = 0; i < count; i++) {
      let h1 = 0x2545f491;
      let h2 = 0x1b873593;
      let c = n - 1;
      for (let j = i; j < i + n; j++) {
        const id = this.ids[j]!;
        h1 = Math.imul(h1 ^ id, 0x01000193);
        h2 = Math.imul(h2 + id, 0x85ebca6b) ^ (h2 >>> 13);
        c += this.lengths[j]!;
      }
      g.h1[i] = h1;
      g.h2[i] = h2;
      g.chars[i] = c;
    }
    return g;
  }
}
interface Grams {
  h1: Uint32Array;
  h2: Uint32Array;
  chars: Int32Array;
}

/**
 * Counts of hash pairs in an open-addressed table (linear probing): JS Maps keyed by
 * numbers made this filter 4x slower than all the others together.
 */
class PairCounts {
  #k1 = new Uint32Array(0);
  #k2 = new Uint32Array(0);
  #count = new Int32Array(0);
  #mask = 0;
  reset(items: number): void {
    let cap = 16;
    while (cap < items * 2) cap *= 2;
    if (cap > this.#count.length) {
      this.#k1 = new Uint32Array(cap);
      this.#k2 = new Uint32Array(cap);
      this.#count = new Int32Array(cap);
    } else this.#count.fill(0, 0, cap);
    this.#mask = cap - 1;
  }
  /** Adds one occurrence; returns the count after adding. */
  add(a: number, b: number): number {
    let i = (a ^ Math.imul(b, 0x9e3779b1)) & this.#mask;
    while (this.#count[i]! > 0) {
      if (this.#k1[i] === a && this.#k2[i] === b) return ++this.#count[i]!;
      i = (i + 1) & this.#mask;
    }
    this.#k1[i] = a;
    this.#k2[i] = b;
    this.#count[i] = 1;
    return 1;
  }
}

/** Characters covered by the most frequent n-gram, counted once per occurrence. */
function topNGramChars(g: Grams, table: PairCounts): number {
  table.reset(g.h1.length);
  let best = 0;
  for (let i = 0; i < g.h1.length; i++) best = Math.max(best, table.add(g.h1[i]!, g.h2[i]!) * g.chars[i]!);
  return best;
}

/** Characters in n-grams that repeat an earlier one; a repeat skips its n words so no word counts twice. */
function repeatedNGramChars(g: Grams, n: number, table: PairCounts): number {
  table.reset(g.h1.length);
  let chars = 0;
  for (let i = 0; i < g.h1.length; ) {
    // A repeat is not added again: only first sightings enter the table, as in a set.
    if (table.add(g.h1[i]!, g.h2[i]!) > 1) {
      chars += g.chars[i]!;
      i += n;
    } else i++;
  }
  return chars;
}

export interface GopherRepetitionOptions {
  dup_line_frac?: number;
  dup_para_frac?: number;
  dup_line_char_frac?: number;
  dup_para_char_frac?: number;
  /** [n, max fraction of characters in the most frequent n-gram]. */
  top_n_grams?: Array<[number, number]>;
  /** [n, max fraction of characters in repeated n-grams]. */
  dup_n_grams?: Array<[number, number]>;
}

export const GOPHER_REPETITION_DEFAULTS: Required<GopherRepetitionOptions> = {
  dup_line_frac: 0.3,
  dup_para_frac: 0.3,
  dup_line_char_frac: 0.2,
  dup_para_char_frac: 0.2,
  top_n_grams: [
    [2, 0.2],
    [3, 0.18],
    [4, 0.16],
  ],
  dup_n_grams: [
    [5, 0.15],
    [6, 0.14],
    [7, 0.13],
    [8, 0.12],
    [9, 0.11],
    [10, 0.1],
  ],
};

/** Gopher's repetition rules: repeated lines, paragraphs and n-grams mark boilerplate and spam. */
export class GopherRepetitionStep extends TextStep {
  readonly name = 'gopher-repetition';
  readonly o: Required<GopherRepetitionOptions>;
  readonly #table = new PairCounts();
  constructor(o: GopherRepetitionOptions = {}) {
    super();
    this.o = { ...GOPHER_REPETITION_DEFAULTS, ...o };
  }
  protected transform(doc: string): string | { drop: string } {
    const o = this.o;
    const length = doc.length;
    if (length === 0) return { drop: 'empty' };
    const paragraphs = doc.trim().split(/\n{2,}/);
    const para = duplicates(paragraphs);
    if (para.elements / paragraphs.length > o.dup_para_frac) return { drop: 'dup_para_frac' };
    if (para.chars / length > o.dup_para_char_frac) return { drop: 'dup_para_char_frac' };
    // Blank lines separate paragraphs; as "lines" they would all count as one repeated line.
    const lines = doc.trim().split(/\s*\n\s*/);
    const line = duplicates(lines);
    if (line.elements / lines.length > o.dup_line_frac) return { drop: 'dup_line_frac' };
    if (line.chars / length > o.dup_line_char_frac) return { drop: 'dup_line_char_frac' };
    const grams = new NGrams(splitWords(doc));
    for (const [n, frac] of o.top_n_grams) {
      const g = grams.of(n);
      if (g.h1.length && topNGramChars(g, this.#table) / length > frac) return { drop: `top_${n}_gram` };
    }
    for (const [n, frac] of o.dup_n_grams) {
      const g = grams.of(n);
      if (g.h1.length && repeatedNGramChars(g, n, this.#table) / length > frac)
        return { drop: `duplicated_${n}_n_grams` };
    }
    return doc;
  }
}

export interface GopherQualityOptions {
  min_doc_words?: number;
  max_doc_words?: number;
  min_avg_word_length?: number;
  max_avg_word_length?: number;
  /** Max ratio of "#" (and separately of ellipses) to words. */
  max_symbol_word_ratio?: number;
  max_bullet_lines_ratio?: number;
  max_ellipsis_lines_ratio?: number;
  /** At least this share of words must hold a letter. */
  max_non_alpha_words_ratio?: number;
  min_stop_words?: number;
  stop_words?: string[];
}

export const GOPHER_QUALITY_DEFAULTS: Required<GopherQualityOptions> = {
  min_doc_words: 50,
  max_doc_words: 100_000,
  min_avg_word_length: 3,
  max_avg_word_length: 10,
  max_symbol_word_ratio: 0.1,
  max_bullet_lines_ratio: 0.9,
  max_ellipsis_lines_ratio: 0.3,
  max_non_alpha_words_ratio: 0.8,
  min_stop_words: 2,
  stop_words: ['the', 'be', 'to', 'of', 'and', 'that', 'have', 'with'],
};

const count = (s: string, sub: string): number => {
  let n = 0;
  for (let i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + sub.length)) n++;
  return n;
};

/** Gopher's quality rules: length, word shape, symbols, bullets and stop words. */
export class GopherQualityStep extends TextStep {
  readonly name = 'gopher-quality';
  readonly o: Required<GopherQualityOptions>;
  readonly #stopWords: Set<string>;
  constructor(o: GopherQualityOptions = {}) {
    super();
    this.o = { ...GOPHER_QUALITY_DEFAULTS, ...o };
    this.#stopWords = new Set(this.o.stop_words);
  }
  protected transform(doc: string): string | { drop: string } {
    const o = this.o;
    const words = splitWords(doc);
    const nonSymbol = words.filter((w) => !PUNCTUATION.has(w));
    const nWords = nonSymbol.length;
    if (nWords < o.min_doc_words) return { drop: 'gopher_short_doc' };
    if (nWords > o.max_doc_words) return { drop: 'gopher_long_doc' };
    const avg = nonSymbol.reduce((s, w) => s + w.length, 0) / nWords;
    if (avg < o.min_avg_word_length) return { drop: 'gopher_below_avg_threshold' };
    if (avg > o.max_avg_word_length) return { drop: 'gopher_above_avg_threshold' };
    if (count(doc, '#') / nWords > o.max_symbol_word_ratio) return { drop: 'gopher_too_many_hashes' };
    if ((count(doc, '...') + count(doc, '…')) / nWords > o.max_symbol_word_ratio)
      return { drop: 'gopher_too_many_ellipsis' };
    const lines = doc.split(/\r?\n/);
    if (lines.filter((l) => /^\s*[•\-*‣◦⁃]/.test(l)).length / lines.length > o.max_bullet_lines_ratio)
      return { drop: 'gopher_too_many_bullets' };
    if (lines.filter((l) => /(\.\.\.|…)\s*$/.test(l)).length / lines.length > o.max_ellipsis_lines_ratio)
      return { drop: 'gopher_too_many_end_ellipsis' };
    if (words.filter((w) => ALPHA.test(w)).length / nWords < o.max_non_alpha_words_ratio)
      return { drop: 'gopher_below_alpha_threshold' };
    let stops = 0;
    for (const w of words) if (this.#stopWords.has(w.toLowerCase())) stops++;
    if (stops < o.min_stop_words) return { drop: 'gopher_enough_stop_words' };
    return doc;
  }
}

/** Marks that end a sentence, in the scripts the filters are used on (datatrove's set, abridged). */
export const TERMINAL_PUNCTUATION = [
  '.',
  '!',
  '?',
  '"',
  "'",
  '”',
  '’',
  '»',
  '。',
  '！',
  '？',
  '؟',
  '।',
  '॥',
  '።',
  '։',
  '…',
];
const endsWithAny = (s: string, ends: readonly string[]) => ends.some((e) => s.endsWith(e));

export interface C4Options {
  remove_citations?: boolean;
  filter_no_terminal_punct?: boolean;
  /** Pages with fewer sentences (after line filtering) are dropped; -1 disables. */
  min_num_sentences?: number;
  /** Lines with fewer words are removed; -1 disables. */
  min_words_per_line?: number;
  /** Lines holding a longer word are removed; -1 disables. */
  max_word_length?: number;
  filter_lorem_ipsum?: boolean;
  filter_javascript?: boolean;
  filter_curly_bracket?: boolean;
  filter_policy?: boolean;
}

export const C4_DEFAULTS: Required<C4Options> = {
  remove_citations: true,
  filter_no_terminal_punct: true,
  min_num_sentences: 5,
  min_words_per_line: 3,
  max_word_length: 1000,
  filter_lorem_ipsum: true,
  filter_javascript: true,
  filter_curly_bracket: true,
  filter_policy: true,
};

const C4_END = ['.', '?', '!', '"', "'"];
const CITATION = /\[\d*]|\[edit]|\[citation needed]/g;
const POLICY = ['terms of use', 'privacy policy', 'cookie policy', 'uses cookies', 'use of cookies', 'use cookies'];
/** A sentence ends at terminal punctuation followed by a space or the end (NLTK's punkt, simplified). */
const SENTENCE_END = /[.!?。！？]+["'”’)]*(?=\s|$)/g;

/** C4's rules: keep lines that read as sentences, drop pages that look like code or placeholders. */
export class C4Step extends TextStep {
  readonly name = 'c4';
  readonly o: Required<C4Options>;
  constructor(o: C4Options = {}) {
    super();
    this.o = { ...C4_DEFAULTS, ...o };
  }
  /** C4 rewrites pages as well as dropping them: removed lines are counted by rule. */
  #removeLine(why: string): void {
    this.note(`line_${why}`);
  }
  protected transform(doc: string): string | { drop: string } {
    const o = this.o;
    const kept: string[] = [];
    let sentences = 0;
    let rewritten = false;
    const removeLine = (why: string) => {
      this.#removeLine(why);
      rewritten = true;
    };
    for (const raw of doc.split(/\r?\n/)) {
      let line = raw.trim();
      // A blank line is a paragraph break, not a line that failed a rule.
      if (line === '') continue;
      const words = line.split(/\s+/).filter(Boolean);
      if (o.max_word_length !== -1 && words.some((w) => w.length > o.max_word_length)) {
        removeLine('too_long_word');
        continue;
      }
      if (o.remove_citations) {
        // Trimmed again so that "end. [1]" still ends in its full stop.
        const cleaned = line.replace(CITATION, '').trim();
        if (cleaned !== line) rewritten = true;
        line = cleaned;
      }
      if (o.filter_no_terminal_punct && (!endsWithAny(line, C4_END) || line.endsWith('...'))) {
        removeLine('no_terminal_punct');
        continue;
      }
      if (words.length < o.min_words_per_line) {
        removeLine('too_few_words');
        continue;
      }
      const lower = line.toLowerCase();
      if (o.filter_lorem_ipsum && lower.includes('lorem ipsum')) return { drop: 'lorem_ipsum' };
      if (o.filter_javascript && lower.includes('javascript')) {
        removeLine('javascript');
        continue;
      }
      if (o.filter_curly_bracket && line.includes('{')) return { drop: 'curly_bracket' };
      if (o.filter_policy && POLICY.some((p) => lower.includes(p))) {
        removeLine('policy');
        continue;
      }
      sentences += Math.max(1, line.match(SENTENCE_END)?.length ?? 0);
      kept.push(line);
    }
    if (sentences < o.min_num_sentences) return { drop: 'too_few_sentences' };
    // A page that lost nothing keeps its own layout (paragraph breaks included); one that lost
    // lines is rebuilt from the kept lines, one per line, as C4 does.
    return rewritten ? kept.join('\n').trim() : doc;
  }
}

export interface FineWebOptions {
  /** Drop when fewer lines than this share end in terminal punctuation. */
  line_punct_thr?: number;
  line_punct_exclude_zero?: boolean;
  /** Drop when more lines than this share are `short_line_length` characters or shorter. */
  short_line_thr?: number;
  short_line_length?: number;
  /** Drop when more characters than this share sit in duplicated lines. */
  char_duplicates_ratio?: number;
  /** Drop when newlines per word exceed this (list-like pages). */
  new_line_ratio?: number;
  stop_chars?: string[];
}

export const FINEWEB_DEFAULTS: Required<FineWebOptions> = {
  line_punct_thr: 0.12,
  line_punct_exclude_zero: false,
  short_line_thr: 0.67,
  short_line_length: 30,
  char_duplicates_ratio: 0.01,
  new_line_ratio: 0.3,
  stop_chars: TERMINAL_PUNCTUATION,
};

/** FineWeb's extra rules, aimed at what passes Gopher and C4: lists, menus and repeated lines. */
export class FineWebStep extends TextStep {
  readonly name = 'fineweb';
  readonly o: Required<FineWebOptions>;
  constructor(o: FineWebOptions = {}) {
    super();
    this.o = { ...FINEWEB_DEFAULTS, ...o };
  }
  protected transform(doc: string): string | { drop: string } {
    const o = this.o;
    const lines = doc.split('\n').filter((l) => l.trim() !== '');
    if (lines.length === 0) return { drop: 'empty' };
    const punct = lines.filter((l) => endsWithAny(l, o.stop_chars)).length / lines.length;
    if (punct < o.line_punct_thr && !(punct === 0 && o.line_punct_exclude_zero)) return { drop: 'line_punct_ratio' };
    if (lines.filter((l) => l.length <= o.short_line_length).length / lines.length > o.short_line_thr)
      return { drop: 'short_line_ratio' };
    const textChars = doc.length - count(doc, '\n');
    if (textChars > 0 && duplicates(lines).chars / textChars > o.char_duplicates_ratio)
      return { drop: 'char_dup_ratio' };
    const words = splitWords(doc).length;
    if (words === 0 || count(doc, '\n') / words > o.new_line_ratio) return { drop: 'list_ratio' };
    return doc;
  }
}

export interface LanguageOptions {
  /** ISO 639-1 codes to keep (eld's labels), e.g. ["en"]. */
  languages: string[];
  /** Keep only documents eld calls reliable. Default true. */
  require_reliable?: boolean;
  /** Characters read from the start of a document; language is stable well before the end. Default 2000. */
  max_chars?: number;
}

interface LanguageResult {
  language: string;
  isReliable(): boolean;
}
interface Detector {
  detect(text: string): LanguageResult;
}

let detector: Detector | undefined;
/** eld's medium database is loaded on first use, so pipelines without a language step never pay for it. */
export async function loadLanguageDetector(): Promise<void> {
  if (detector) return;
  const mod = (await import('eld/medium')) as { eld: Detector };
  detector = mod.eld;
}

/**
 * Language identification with eld (Efficient Language Detector, n-gram based, 60
 * languages, Apache-2.0, on npm). FineWeb used fastText's lid.176 at score 0.65; that model
 * comes from a model hub, which this project does not download from, so eld stands in.
 */
export class LanguageStep extends TextStep {
  readonly name = 'language';
  readonly #keep: Set<string>;
  constructor(readonly o: LanguageOptions) {
    super();
    this.#keep = new Set(o.languages);
  }
  override async init(): Promise<void> {
    await loadLanguageDetector();
  }
  protected transform(doc: string): string | { drop: string } {
    if (!detector) throw new Error('language step: await init() (or TextPipeline.init()) before the first document.');
    const r = detector.detect(doc.slice(0, this.o.max_chars ?? 2000));
    if (!r.language) return { drop: 'language_unknown' };
    if ((this.o.require_reliable ?? true) && !r.isReliable()) return { drop: 'language_unreliable' };
    if (!this.#keep.has(r.language)) return { drop: `language_${r.language}` };
    return doc;
  }
}
