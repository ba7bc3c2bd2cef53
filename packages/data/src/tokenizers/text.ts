/**
 * A string that remembers, for each UTF-16 code unit, which span of the original
 * input it came from. Normalizers and pre-tokenizers transform it, so every token
 * can report offsets into the text the user passed in (HF's NormalizedString idea).
 */
export class Aligned {
  constructor(
    readonly text: string,
    /** Original start offset for each code unit of `text`. */
    readonly starts: number[],
    /** Original end offset for each code unit of `text`. */
    readonly ends: number[],
  ) {}

  static of(original: string, base = 0): Aligned {
    const starts = new Array<number>(original.length);
    const ends = new Array<number>(original.length);
    for (let i = 0; i < original.length; i++) {
      const c = original.charCodeAt(i);
      // A surrogate pair is one character: both halves cover the whole pair.
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < original.length) {
        const d = original.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          starts[i] = starts[i + 1] = base + i;
          ends[i] = ends[i + 1] = base + i + 2;
          i++;
          continue;
        }
      }
      starts[i] = base + i;
      ends[i] = base + i + 1;
    }
    return new Aligned(original, starts, ends);
  }

  get length(): number {
    return this.text.length;
  }

  /** Original span of code units [a, b); an empty range maps to a point. */
  span(a: number, b: number): [number, number] {
    if (this.text.length === 0) return [0, 0];
    if (a >= b) {
      const at = a < this.text.length ? this.starts[a]! : this.ends[this.text.length - 1]!;
      return [at, at];
    }
    return [this.starts[a]!, this.ends[b - 1]!];
  }

  slice(a: number, b: number): Aligned {
    return new Aligned(this.text.slice(a, b), this.starts.slice(a, b), this.ends.slice(a, b));
  }

  /** Replaces each code point by fn(codePoint) (possibly '' to delete it), keeping alignment. */
  mapChars(fn: (ch: string) => string): Aligned {
    let text = '';
    const starts: number[] = [];
    const ends: number[] = [];
    let changed = false;
    for (let i = 0; i < this.text.length; ) {
      const cp = this.text.codePointAt(i)!;
      const w = cp > 0xffff ? 2 : 1;
      const ch = this.text.slice(i, i + w);
      const out = fn(ch);
      if (out !== ch) changed = true;
      const s = this.starts[i]!;
      const e = this.ends[i + w - 1]!;
      text += out;
      for (let k = 0; k < out.length; k++) {
        starts.push(s);
        ends.push(e);
      }
      i += w;
    }
    return changed ? new Aligned(text, starts, ends) : this;
  }

  /**
   * Appends to `starts` / `ends` the spans of `out`, which replaces this[a, b): output
   * character k takes the span of input character k (the last one when the output is
   * longer), as HF aligns a replacement: a composed "é" from "e" + U+0301 spans the "e",
   * a decomposed ligature's letters all span the ligature.
   */
  pushReplacementSpans(a: number, b: number, out: string, starts: number[], ends: number[]): void {
    const inputs: Array<[number, number]> = [];
    for (let i = a; i < b; ) {
      const w = this.text.codePointAt(i)! > 0xffff ? 2 : 1;
      inputs.push([i, i + w - 1]);
      i += w;
    }
    for (let j = 0, k = 0; j < out.length; k++) {
      const w = out.codePointAt(j)! > 0xffff ? 2 : 1;
      const [first, last] = inputs[Math.min(k, inputs.length - 1)]!;
      for (let u = 0; u < w; u++) {
        starts.push(this.starts[first]!);
        ends.push(this.ends[last]!);
      }
      j += w;
    }
  }

  /**
   * Applies a whole-string transform that works character cluster by cluster (Unicode
   * normalisation); each cluster's output is aligned by pushReplacementSpans. If clusters
   * do not normalise independently, the result maps to the whole span.
   */
  mapClusters(fn: (s: string) => string): Aligned {
    const whole = fn(this.text);
    if (whole === this.text) return this;
    let text = '';
    const starts: number[] = [];
    const ends: number[] = [];
    const re = /\P{M}\p{M}*|\p{M}+/gsu;
    for (const m of this.text.matchAll(re)) {
      const a = m.index!;
      const b = a + m[0].length;
      const out = fn(m[0]);
      text += out;
      if (out === m[0]) {
        for (let i = a; i < b; i++) {
          starts.push(this.starts[i]!);
          ends.push(this.ends[i]!);
        }
        continue;
      }
      this.pushReplacementSpans(a, b, out, starts, ends);
    }
    if (text !== whole) {
      const [s, e] = this.span(0, this.text.length);
      return new Aligned(whole, new Array(whole.length).fill(s), new Array(whole.length).fill(e));
    }
    return new Aligned(text, starts, ends);
  }

  concat(other: Aligned): Aligned {
    return new Aligned(this.text + other.text, this.starts.concat(other.starts), this.ends.concat(other.ends));
  }

  /** Prepended characters take the span of the first character (as HF's NormalizedString.prepend). */
  prepend(s: string): Aligned {
    const start = this.length ? this.starts[0]! : 0;
    const end = this.length ? this.ends[0]! : 0;
    return new Aligned(
      s + this.text,
      new Array(s.length).fill(start).concat(this.starts),
      new Array(s.length).fill(end).concat(this.ends),
    );
  }
}

// ---- character classes, as the HF Rust implementation defines them ----

const WHITE = /^\p{White_Space}$/u;
const CONTROL = /^\p{C}$/u;
const PUNCT = /^\p{P}$/u;
const MARK_NONSPACING = /^\p{Mn}$/u;

/** BERT's whitespace: space, tab, newline, CR, and Unicode separators (Zs). */
export function isBertWhitespace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || /^\p{Zs}$/u.test(ch);
}

/** BERT's control: any "C*" category except tab, newline and carriage return. */
export function isBertControl(ch: string): boolean {
  if (ch === '\t' || ch === '\n' || ch === '\r') return false;
  return CONTROL.test(ch);
}

/** BERT's punctuation: all non-alphanumeric ASCII plus Unicode P*. */
export function isBertPunctuation(ch: string): boolean {
  const c = ch.codePointAt(0)!;
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  return PUNCT.test(ch);
}

/** The CJK Unified Ideograph blocks BERT pads with spaces (not Hiragana/Katakana/Hangul). */
export function isCjk(ch: string): boolean {
  const c = ch.codePointAt(0)!;
  return (
    (c >= 0x4e00 && c <= 0x9fff) ||
    (c >= 0x3400 && c <= 0x4dbf) ||
    (c >= 0x20000 && c <= 0x2a6df) ||
    (c >= 0x2a700 && c <= 0x2b73f) ||
    (c >= 0x2b740 && c <= 0x2b81f) ||
    (c >= 0x2b820 && c <= 0x2ceaf) ||
    (c >= 0xf900 && c <= 0xfaff) ||
    (c >= 0x2f800 && c <= 0x2fa1f)
  );
}

/** Rust's char::is_whitespace (the White_Space property). */
export function isWhitespace(ch: string): boolean {
  return WHITE.test(ch);
}

export function isNonspacingMark(ch: string): boolean {
  return MARK_NONSPACING.test(ch);
}

/** GPT-2's byte <-> printable character table: printable Latin-1 bytes map to themselves. */
export const BYTE_TO_CHAR: string[] = (() => {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const table = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = keep.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + n++);
  }
  return table;
})();

export const CHAR_TO_BYTE: Map<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

const encoder = new TextEncoder();
export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}
