import { TokenizerError, unknownType } from './errors.js';
import { compilePattern } from './regex.js';
import { type Aligned, BYTE_TO_CHAR, isBertPunctuation, isWhitespace, utf8 } from './text.js';

type Json = Record<string, unknown>;

export interface PreTokenizer {
  /** Splits one section of input (text between added tokens) into words. */
  split(pieces: Aligned[], ctx: { first: boolean }): Aligned[];
  toJSON(): Json;
}

export type SplitBehavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';
const BEHAVIORS: SplitBehavior[] = ['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'];

/**
 * Splits `s` at the given delimiter ranges, handling the delimiters as `behavior` says (HF
 * semantics). With `invert` the matches are the words and the gaps between them the
 * delimiters; two matches that touch stay two words.
 */
export function splitBy(
  s: Aligned,
  matches: Array<[number, number]>,
  behavior: SplitBehavior,
  invert = false,
): Aligned[] {
  // Build alternating (range, isDelimiter) segments covering the whole string.
  const segs: Array<[number, number, boolean]> = [];
  let last = 0;
  for (const [a, b] of matches) {
    if (a > last) segs.push([last, a, invert]);
    segs.push([a, b, !invert]);
    last = b;
  }
  if (last < s.length) segs.push([last, s.length, invert]);
  const out: Array<[number, number]> = [];
  switch (behavior) {
    case 'Removed':
      for (const [a, b, m] of segs) if (!m) out.push([a, b]);
      break;
    case 'Isolated':
      for (const [a, b] of segs) out.push([a, b]);
      break;
    case 'Contiguous': {
      let prevMatch = false;
      for (const [a, b, m] of segs) {
        const prev = out[out.length - 1];
        if (m && prevMatch && prev && prev[1] === a) prev[1] = b;
        else out.push([a, b]);
        prevMatch = m;
      }
      break;
    }
    case 'MergedWithPrevious':
      for (const [a, b, m] of segs) {
        if (m && out.length && out[out.length - 1]![1] === a) out[out.length - 1]![1] = b;
        else out.push([a, b]);
      }
      break;
    case 'MergedWithNext': {
      let pending: number | undefined;
      for (const [a, b, m] of segs) {
        if (m) {
          if (pending !== undefined) out.push([pending, a]);
          pending = a;
        } else {
          out.push([pending ?? a, b]);
          pending = undefined;
        }
      }
      if (pending !== undefined) out.push([pending, s.length]);
      break;
    }
  }
  return out.filter(([a, b]) => b > a).map(([a, b]) => s.slice(a, b));
}

function charMatches(s: Aligned, pred: (ch: string) => boolean): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < s.text.length; ) {
    const w = s.text.codePointAt(i)! > 0xffff ? 2 : 1;
    if (pred(s.text.slice(i, i + w))) out.push([i, i + w]);
    i += w;
  }
  return out;
}

function regexMatches(s: Aligned, re: RegExp): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const m of s.text.matchAll(re)) if (m[0].length) out.push([m.index!, m.index! + m[0].length]);
  return out;
}

/** GPT-2's split pattern; \s is spelled as White_Space, as Oniguruma reads it in HF. */
export const GPT2_PATTERN =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\p{White_Space}\\p{L}\\p{N}]+|\\p{White_Space}+(?!\\P{White_Space})|\\p{White_Space}+";
const GPT2_RE = new RegExp(GPT2_PATTERN, 'gu');

/** Maps each character to the printable characters of its UTF-8 bytes. */
export function toByteChars(s: Aligned): Aligned {
  return s.mapChars((ch) => {
    const c = ch.charCodeAt(0);
    if (c < 128 && ch.length === 1) return BYTE_TO_CHAR[c]!;
    let out = '';
    for (const b of utf8(ch)) out += BYTE_TO_CHAR[b]!;
    return out;
  });
}

export class ByteLevelPreTokenizer implements PreTokenizer {
  readonly addPrefixSpace: boolean;
  readonly trimOffsets: boolean;
  readonly useRegex: boolean;
  constructor(j: Json = {}) {
    this.addPrefixSpace = (j.add_prefix_space as boolean | undefined) ?? true;
    this.trimOffsets = (j.trim_offsets as boolean | undefined) ?? true;
    this.useRegex = (j.use_regex as boolean | undefined) ?? true;
  }
  split(pieces: Aligned[]): Aligned[] {
    const out: Aligned[] = [];
    for (let p of pieces) {
      if (this.addPrefixSpace && !p.text.startsWith(' ')) p = p.prepend(' ');
      const words = this.useRegex ? splitBy(p, regexMatches(p, GPT2_RE), 'Isolated') : [p];
      for (const w of words) out.push(toByteChars(w));
    }
    return out;
  }
  toJSON(): Json {
    return {
      type: 'ByteLevel',
      add_prefix_space: this.addPrefixSpace,
      trim_offsets: this.trimOffsets,
      use_regex: this.useRegex,
    };
  }
}

const WORD = '[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]';
const WHITESPACE_RE = new RegExp(`${WORD}+|[^${WORD.slice(1, -1)}\\p{White_Space}]+`, 'gu');

export class MetaspacePreTokenizer implements PreTokenizer {
  readonly replacement: string;
  readonly prependScheme: 'always' | 'first' | 'never';
  readonly doSplit: boolean;
  constructor(j: Json = {}) {
    this.replacement = (j.replacement as string | undefined) ?? '▁';
    const legacy = j.add_prefix_space as boolean | undefined;
    this.prependScheme =
      (j.prepend_scheme as 'always' | 'first' | 'never' | undefined) ?? (legacy === false ? 'never' : 'always');
    this.doSplit = (j.split as boolean | undefined) ?? true;
  }
  split(pieces: Aligned[], ctx: { first: boolean }): Aligned[] {
    const out: Aligned[] = [];
    for (let p of pieces) {
      p = p.mapChars((ch) => (ch === ' ' ? this.replacement : ch));
      const prepend = this.prependScheme === 'always' || (this.prependScheme === 'first' && ctx.first);
      if (prepend && !p.text.startsWith(this.replacement)) p = p.prepend(this.replacement);
      if (this.doSplit)
        out.push(
          ...splitBy(
            p,
            charMatches(p, (c) => c === this.replacement),
            'MergedWithNext',
          ),
        );
      else out.push(p);
    }
    return out;
  }
  toJSON(): Json {
    return {
      type: 'Metaspace',
      replacement: this.replacement,
      prepend_scheme: this.prependScheme,
      split: this.doSplit,
    };
  }
}

function simple(type: string, fn: (p: Aligned) => Aligned[], extra: Json = {}): PreTokenizer {
  return {
    split: (pieces) => pieces.flatMap(fn),
    toJSON: () => ({ type, ...extra }),
  };
}

export function createPreTokenizer(j: Json | null | undefined): PreTokenizer | null {
  if (!j) return null;
  switch (j.type) {
    case 'ByteLevel':
      return new ByteLevelPreTokenizer(j);
    case 'Metaspace':
      return new MetaspacePreTokenizer(j);
    case 'BertPreTokenizer':
      return simple('BertPreTokenizer', (p) =>
        splitBy(p, charMatches(p, isWhitespace), 'Removed').flatMap((w) =>
          splitBy(w, charMatches(w, isBertPunctuation), 'Isolated'),
        ),
      );
    case 'Whitespace':
      return simple('Whitespace', (p) => splitBy(p, regexMatches(p, WHITESPACE_RE), 'Removed', true));
    case 'WhitespaceSplit':
      return simple('WhitespaceSplit', (p) => splitBy(p, charMatches(p, isWhitespace), 'Removed'));
    case 'Punctuation': {
      const behavior = checkBehavior(j.behavior ?? 'Isolated');
      return simple('Punctuation', (p) => splitBy(p, charMatches(p, isBertPunctuation), behavior), { behavior });
    }
    case 'Digits': {
      const individual = (j.individual_digits as boolean | undefined) ?? false;
      const isNum = (c: string) => /^\p{N}$/u.test(c);
      return simple('Digits', (p) => splitBy(p, charMatches(p, isNum), individual ? 'Isolated' : 'Contiguous'), {
        individual_digits: individual,
      });
    }
    case 'Split': {
      const pat = j.pattern as { String?: string; Regex?: string } | undefined;
      const re =
        pat && typeof pat.String === 'string'
          ? new RegExp(pat.String.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gu')
          : pat && typeof pat.Regex === 'string'
            ? compilePattern(pat.Regex)
            : (() => {
                throw new TokenizerError(
                  `tokenizer.json: Split needs pattern {"String"} or {"Regex"}; got ${JSON.stringify(pat)}.`,
                );
              })();
      const behavior = checkBehavior(j.behavior);
      const invert = Boolean(j.invert);
      return simple(
        'Split',
        (p) => {
          const m = regexMatches(p, re);
          return splitBy(p, m, behavior, invert);
        },
        { pattern: pat, behavior, invert },
      );
    }
    case 'Sequence': {
      const parts = ((j.pretokenizers as Json[] | undefined) ?? []).map((x) => createPreTokenizer(x)!);
      return {
        split: (pieces, ctx) => parts.reduce((acc, pt) => pt.split(acc, ctx), pieces),
        toJSON: () => ({ type: 'Sequence', pretokenizers: parts.map((x) => x.toJSON()) }),
      };
    }
    default:
      return unknownType('pre_tokenizer', j.type, [
        'ByteLevel',
        'Metaspace',
        'BertPreTokenizer',
        'Whitespace',
        'WhitespaceSplit',
        'Punctuation',
        'Digits',
        'Split',
        'Sequence',
      ]);
  }
}

function checkBehavior(b: unknown): SplitBehavior {
  if (BEHAVIORS.includes(b as SplitBehavior)) return b as SplitBehavior;
  throw new TokenizerError(
    `tokenizer.json: split behavior must be one of ${BEHAVIORS.join(', ')}; got ${JSON.stringify(b)}.`,
  );
}
