import { createHash } from 'node:crypto';
import { Rng, TesseraError } from '@tessera/tensor-core';
import { fmix32, fnv1a } from './hash.js';

/** What one step did to the stream: nothing is dropped without being counted. */
export interface StepReport {
  step: string;
  /** Documents that reached this step. */
  seen: number;
  /** Documents this step rewrote. */
  changed: number;
  /** Documents this step dropped, by reason. */
  removed: number;
  reasons: Record<string, number>;
  /** Finer counts a step keeps, e.g. lines a rewriting step removed, by rule. */
  details?: Record<string, number>;
}

/** A streaming text step: returns the (possibly rewritten) document, or null to drop it. */
export abstract class TextStep {
  abstract readonly name: string;
  #seen = 0;
  #changed = 0;
  #reasons: Record<string, number> = {};
  #details: Record<string, number> = {};

  protected abstract transform(doc: string): string | { drop: string };

  /** Loads what the step needs before its first document (a model, a word list); most need nothing. */
  async init(): Promise<void> {}

  /** Counts something finer than a dropped document (shown in the report's `details`). */
  protected note(key: string, n = 1): void {
    this.#details[key] = (this.#details[key] ?? 0) + n;
  }

  /** Why the last document this step dropped was dropped. */
  lastDrop: string | undefined;

  apply(doc: string): string | null {
    this.#seen++;
    const out = this.transform(doc);
    if (typeof out !== 'string') {
      this.#reasons[out.drop] = (this.#reasons[out.drop] ?? 0) + 1;
      this.lastDrop = out.drop;
      return null;
    }
    if (out !== doc) this.#changed++;
    return out;
  }

  report(): StepReport {
    const removed = Object.values(this.#reasons).reduce((a, b) => a + b, 0);
    const out: StepReport = {
      step: this.name,
      seen: this.#seen,
      changed: this.#changed,
      removed,
      reasons: { ...this.#reasons },
    };
    if (Object.keys(this.#details).length) out.details = { ...this.#details };
    return out;
  }
}

export class NormalizeStep extends TextStep {
  readonly name: string;
  constructor(readonly form: 'NFC' | 'NFD' | 'NFKC' | 'NFKD' = 'NFC') {
    super();
    this.name = `normalize(${form})`;
  }
  protected transform(doc: string): string {
    return doc.normalize(this.form);
  }
}

export class LowercaseStep extends TextStep {
  readonly name = 'lowercase';
  protected transform(doc: string): string {
    return doc.toLowerCase();
  }
}

export class StripAccentsStep extends TextStep {
  readonly name = 'strip-accents';
  protected transform(doc: string): string {
    // Decompose, drop the combining marks, recompose what is left.
    return doc
      .normalize('NFD')
      .replace(/\p{Mn}/gu, '')
      .normalize('NFC');
  }
}

export interface WhitespaceOptions {
  /** Collapse runs of spaces and tabs to one space. Default true. */
  collapseSpaces?: boolean;
  /** At most this many consecutive newlines survive. Default 2 (one blank line). */
  maxNewlines?: number;
  trim?: boolean;
}

export class CleanWhitespaceStep extends TextStep {
  readonly name = 'clean-whitespace';
  constructor(readonly o: WhitespaceOptions = {}) {
    super();
  }
  protected transform(doc: string): string {
    // Control and format characters (except tab/newline) and U+FFFD are debris from bad decoding.
    let s = doc.replace(/\r\n?/g, '\n').replace(/[^\P{C}\t\n]|\uFFFD/gu, '');
    s = s.replace(/[\p{Zs}\t]/gu, ' ');
    if (this.o.collapseSpaces ?? true) s = s.replace(/ {2,}/g, ' ').replace(/ *\n */g, '\n');
    const maxNl = this.o.maxNewlines ?? 2;
    s = s.replace(new RegExp(`\\n{${maxNl + 1},}`, 'g'), '\n'.repeat(maxNl));
    return (this.o.trim ?? true) ? s.trim() : s;
  }
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

export class StripHtmlStep extends TextStep {
  readonly name = 'strip-html';
  protected transform(doc: string): string {
    if (!/[<&]/.test(doc)) return doc;
    return doc
      .replace(/<(script|style)\b[^>]*>[\s\S]*?<\/\1\s*>/gi, ' ')
      .replace(/<!--[\s\S]*?-->/g, ' ')
      .replace(/<\/?(p|div|br|li|tr|h[1-6]|section|article|blockquote)\b[^>]*>/gi, '\n')
      .replace(/<\/?[a-zA-Z][^>]*>/g, '')
      .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
        if (e[0] === '#') {
          const cp = e[1] === 'x' || e[1] === 'X' ? Number.parseInt(e.slice(2), 16) : Number.parseInt(e.slice(1), 10);
          return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
        }
        return ENTITIES[e.toLowerCase()] ?? m;
      });
  }
}

export interface LengthOptions {
  minChars?: number;
  maxChars?: number;
  minWords?: number;
  maxWords?: number;
}

export class LengthFilterStep extends TextStep {
  readonly name = 'length-filter';
  constructor(readonly o: LengthOptions) {
    super();
  }
  protected transform(doc: string): string | { drop: string } {
    const chars = [...doc].length;
    if (this.o.minChars !== undefined && chars < this.o.minChars) return { drop: 'too-few-chars' };
    if (this.o.maxChars !== undefined && chars > this.o.maxChars) return { drop: 'too-many-chars' };
    if (this.o.minWords !== undefined || this.o.maxWords !== undefined) {
      const words = doc.split(/\s+/u).filter(Boolean).length;
      if (this.o.minWords !== undefined && words < this.o.minWords) return { drop: 'too-few-words' };
      if (this.o.maxWords !== undefined && words > this.o.maxWords) return { drop: 'too-many-words' };
    }
    return doc;
  }
}

/** A short English stopword list for keyword/retrieval uses; pass your own for other languages. */
export const ENGLISH_STOPWORDS =
  'a an and are as at be but by for if in into is it no not of on or such that the their then there these they this to was will with'.split(
    ' ',
  );

export class StopwordStep extends TextStep {
  readonly name = 'stopwords';
  readonly #words: Set<string>;
  constructor(words: readonly string[] = ENGLISH_STOPWORDS) {
    super();
    this.#words = new Set(words.map((w) => w.toLowerCase()));
  }
  protected transform(doc: string): string {
    return doc
      .split(/(\s+)/u)
      .filter((w, i) => i % 2 === 1 || !this.#words.has(w.toLowerCase()))
      .join('')
      .replace(/\s{2,}/gu, ' ')
      .trim();
  }
}

export class ExactDedupStep extends TextStep {
  readonly name = 'exact-dedup';
  readonly #seenHashes = new Set<string>();
  constructor(readonly o: { normalize?: boolean } = {}) {
    super();
  }
  protected transform(doc: string): string | { drop: string } {
    // With normalize, documents differing only in case or spacing count as duplicates.
    const key = this.o.normalize ? doc.toLowerCase().replace(/\s+/gu, ' ').trim() : doc;
    const h = createHash('sha256').update(key).digest('base64');
    if (this.#seenHashes.has(h)) return { drop: 'duplicate' };
    this.#seenHashes.add(h);
    return doc;
  }
}

export interface NearDedupOptions {
  /** Estimated Jaccard similarity at or above which a document is a near duplicate. Default 0.8. */
  threshold?: number;
  /** MinHash permutations. Default 128. */
  numPerm?: number;
  /** Shingle size in words (or characters when `shingleUnit` is "char"). Default 5. */
  shingleSize?: number;
  shingleUnit?: 'word' | 'char';
  seed?: number;
}

/** LSH bands and rows minimising false positives plus false negatives around `t` (as datasketch does). */
export function lshParams(threshold: number, numPerm: number): { bands: number; rows: number } {
  const integrate = (f: (s: number) => number, a: number, b: number) => {
    const n = 200;
    const h = (b - a) / n;
    let s = 0;
    for (let i = 0; i < n; i++) s += f(a + (i + 0.5) * h) * h;
    return s;
  };
  let best = { bands: 1, rows: numPerm, err: Number.POSITIVE_INFINITY };
  for (let bands = 1; bands <= numPerm; bands++) {
    const maxRows = Math.floor(numPerm / bands);
    for (let rows = 1; rows <= maxRows; rows++) {
      const p = (s: number) => 1 - (1 - s ** rows) ** bands;
      const fp = integrate(p, 0, threshold);
      const fn = integrate((s) => 1 - p(s), threshold, 1);
      const err = 0.5 * fp + 0.5 * fn;
      if (err < best.err) best = { bands, rows, err };
    }
  }
  return { bands: best.bands, rows: best.rows };
}

export class NearDedupStep extends TextStep {
  readonly name = 'near-dedup';
  readonly threshold: number;
  readonly numPerm: number;
  readonly bands: number;
  readonly rows: number;
  readonly #seeds: Uint32Array;
  readonly #buckets: Array<Map<string, number[]>>;
  readonly #signatures: Uint32Array[] = [];
  constructor(readonly o: NearDedupOptions = {}) {
    super();
    this.threshold = o.threshold ?? 0.8;
    this.numPerm = o.numPerm ?? 128;
    if (!(this.threshold > 0 && this.threshold <= 1))
      throw new TesseraError(`near-dedup threshold must be in (0, 1]; got ${this.threshold}.`);
    if (!Number.isInteger(this.numPerm) || this.numPerm < 2)
      throw new TesseraError(`near-dedup numPerm must be an integer >= 2; got ${this.numPerm}.`);
    ({ bands: this.bands, rows: this.rows } = lshParams(this.threshold, this.numPerm));
    const rng = new Rng(o.seed ?? 0);
    this.#seeds = Uint32Array.from({ length: this.numPerm }, () => rng.nextUint32());
    this.#buckets = Array.from({ length: this.bands }, () => new Map());
  }

  signature(doc: string): Uint32Array {
    const k = this.o.shingleSize ?? 5;
    const unit = this.o.shingleUnit ?? 'word';
    const parts = unit === 'word' ? doc.toLowerCase().split(/\s+/u).filter(Boolean) : [...doc.toLowerCase()];
    const shingles = new Set<number>();
    const sep = unit === 'word' ? ' ' : '';
    if (parts.length <= k) shingles.add(fnv1a(parts.join(sep)));
    else for (let i = 0; i + k <= parts.length; i++) shingles.add(fnv1a(parts.slice(i, i + k).join(sep)));
    const sig = new Uint32Array(this.numPerm).fill(0xffffffff);
    for (const h of shingles) {
      for (let p = 0; p < this.numPerm; p++) {
        // Each permutation is the shingle hash re-mixed with its own seed.
        const v = fmix32(h ^ this.#seeds[p]!);
        if (v < sig[p]!) sig[p] = v;
      }
    }
    return sig;
  }

  protected transform(doc: string): string | { drop: string } {
    const sig = this.signature(doc);
    const keys: string[] = [];
    const candidates = new Set<number>();
    for (let b = 0; b < this.bands; b++) {
      const key = Array.from(sig.subarray(b * this.rows, (b + 1) * this.rows)).join(',');
      keys.push(key);
      for (const c of this.#buckets[b]!.get(key) ?? []) candidates.add(c);
    }
    for (const c of candidates) {
      const other = this.#signatures[c]!;
      let same = 0;
      for (let p = 0; p < this.numPerm; p++) if (other[p] === sig[p]) same++;
      if (same / this.numPerm >= this.threshold) return { drop: 'near-duplicate' };
    }
    const id = this.#signatures.push(sig) - 1;
    keys.forEach((key, b) => {
      const list = this.#buckets[b]!.get(key);
      if (list) list.push(id);
      else this.#buckets[b]!.set(key, [id]);
    });
    return doc;
  }
}

/** Runs steps in order over a stream of documents, one document in memory at a time. */
export class TextPipeline {
  constructor(readonly steps: TextStep[]) {}

  async init(): Promise<void> {
    for (const s of this.steps) await s.init();
  }

  apply(doc: string): string | null {
    let d: string | null = doc;
    for (const s of this.steps) {
      d = s.apply(d);
      if (d === null) return null;
    }
    return d;
  }

  *runSync(docs: Iterable<string>): Generator<string> {
    for (const doc of docs) {
      const out = this.apply(doc);
      if (out !== null) yield out;
    }
  }

  async *run(docs: Iterable<string> | AsyncIterable<string>): AsyncGenerator<string> {
    await this.init();
    let i = 0;
    for await (const doc of docs as AsyncIterable<string>) {
      if (typeof doc !== 'string')
        throw new TesseraError(`TextPipeline: document ${i} is ${typeof doc}, not a string.`);
      i++;
      const out = this.apply(doc);
      if (out !== null) yield out;
    }
  }

  report(): StepReport[] {
    return this.steps.map((s) => s.report());
  }
}
