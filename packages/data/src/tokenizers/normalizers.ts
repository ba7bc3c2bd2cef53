import { TokenizerError, unknownType } from './errors.js';
import { compilePattern } from './regex.js';
import { PrecompiledCharsmap } from './precompiled.js';
import { Aligned, isBertControl, isBertWhitespace, isCjk, isNonspacingMark } from './text.js';

export interface Normalizer {
  normalize(s: Aligned): Aligned;
  toJSON(): Record<string, unknown>;
}

type Json = Record<string, unknown>;

const unicodeForm = (form: 'NFC' | 'NFD' | 'NFKC' | 'NFKD'): Normalizer => ({
  normalize: (s) => s.mapClusters((t) => t.normalize(form)),
  toJSON: () => ({ type: form }),
});

function stripAccents(s: Aligned): Aligned {
  return s.mapChars((ch) => (isNonspacingMark(ch) ? '' : ch));
}

export class BertNormalizer implements Normalizer {
  readonly cleanText: boolean;
  readonly handleChineseChars: boolean;
  readonly stripAccents: boolean | null;
  readonly lowercase: boolean;
  constructor(j: Json = {}) {
    this.cleanText = (j.clean_text as boolean | undefined) ?? true;
    this.handleChineseChars = (j.handle_chinese_chars as boolean | undefined) ?? true;
    this.stripAccents = (j.strip_accents as boolean | null | undefined) ?? null;
    this.lowercase = (j.lowercase as boolean | undefined) ?? true;
  }
  normalize(s: Aligned): Aligned {
    let out = s;
    if (this.cleanText) {
      out = out.mapChars((ch) => {
        const c = ch.codePointAt(0)!;
        if (c === 0 || c === 0xfffd || isBertControl(ch)) return '';
        return isBertWhitespace(ch) ? ' ' : ch;
      });
    }
    if (this.handleChineseChars) out = out.mapChars((ch) => (isCjk(ch) ? ` ${ch} ` : ch));
    // HF: strip_accents defaults to the value of lowercase when unset.
    const strip = this.stripAccents ?? this.lowercase;
    if (strip) out = stripAccents(out.mapClusters((t) => t.normalize('NFD')));
    if (this.lowercase) out = out.mapChars((ch) => ch.toLowerCase());
    return out;
  }
  toJSON(): Json {
    return {
      type: 'BertNormalizer',
      clean_text: this.cleanText,
      handle_chinese_chars: this.handleChineseChars,
      strip_accents: this.stripAccents,
      lowercase: this.lowercase,
    };
  }
}

function patternOf(p: unknown): RegExp {
  const o = p as { String?: string; Regex?: string } | undefined;
  if (o && typeof o.String === 'string') return new RegExp(o.String.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gu');
  if (o && typeof o.Regex === 'string') return compilePattern(o.Regex);
  throw new TokenizerError(
    `tokenizer.json: a pattern must be {"String": "..."} or {"Regex": "..."}; got ${JSON.stringify(p)}.`,
  );
}

/** Replaces every match by `content`, which takes the span of what it replaced. One pass: no copies per match. */
function replaceAligned(s: Aligned, re: RegExp, content: string): Aligned {
  let text = '';
  const starts: number[] = [];
  const ends: number[] = [];
  let last = 0;
  const keep = (a: number, b: number) => {
    text += s.text.slice(a, b);
    for (let i = a; i < b; i++) {
      starts.push(s.starts[i]!);
      ends.push(s.ends[i]!);
    }
  };
  for (const m of s.text.matchAll(re)) {
    const a = m.index!;
    const b = a + m[0].length;
    if (a === b) continue;
    keep(last, a);
    const [st, en] = s.span(a, b);
    text += content;
    for (let k = 0; k < content.length; k++) {
      starts.push(st);
      ends.push(en);
    }
    last = b;
  }
  if (last === 0) return s;
  keep(last, s.length);
  return new Aligned(text, starts, ends);
}

export function createNormalizer(j: Json | null | undefined): Normalizer | null {
  if (!j) return null;
  switch (j.type) {
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD':
      return unicodeForm(j.type);
    case 'Lowercase':
      return { normalize: (s) => s.mapChars((ch) => ch.toLowerCase()), toJSON: () => ({ type: 'Lowercase' }) };
    case 'StripAccents':
      return { normalize: stripAccents, toJSON: () => ({ type: 'StripAccents' }) };
    case 'BertNormalizer':
      return new BertNormalizer(j);
    case 'Strip': {
      const left = (j.strip_left as boolean | undefined) ?? true;
      const right = (j.strip_right as boolean | undefined) ?? true;
      return {
        normalize: (s) => {
          let a = 0;
          let b = s.length;
          if (left) while (a < b && /\s/u.test(s.text[a]!)) a++;
          if (right) while (b > a && /\s/u.test(s.text[b - 1]!)) b--;
          return a === 0 && b === s.length ? s : s.slice(a, b);
        },
        toJSON: () => ({ type: 'Strip', strip_left: left, strip_right: right }),
      };
    }
    case 'Replace': {
      const re = patternOf(j.pattern);
      const content = String(j.content ?? '');
      return {
        normalize: (s) => replaceAligned(s, re, content),
        toJSON: () => ({ type: 'Replace', pattern: j.pattern, content }),
      };
    }
    case 'Prepend': {
      const p = String(j.prepend ?? '');
      return { normalize: (s) => (s.length ? s.prepend(p) : s), toJSON: () => ({ type: 'Prepend', prepend: p }) };
    }
    case 'Sequence': {
      const parts = ((j.normalizers as Json[] | undefined) ?? []).map((n) => createNormalizer(n)!);
      return {
        normalize: (s) => parts.reduce((acc, n) => n.normalize(acc), s),
        toJSON: () => ({ type: 'Sequence', normalizers: parts.map((n) => n.toJSON()) }),
      };
    }
    case 'Precompiled': {
      const b64 = j.precompiled_charsmap;
      if (typeof b64 !== 'string')
        throw new TokenizerError('tokenizer.json: Precompiled needs "precompiled_charsmap" (base64).');
      // An empty charsmap is SentencePiece's "identity" rule set.
      const map = b64 ? PrecompiledCharsmap.fromBase64(b64) : null;
      return {
        normalize: (s) => (map ? map.normalize(s) : s),
        toJSON: () => ({ type: 'Precompiled', precompiled_charsmap: b64 }),
      };
    }
    default:
      return unknownType('normalizer', j.type, [
        'NFC',
        'NFD',
        'NFKC',
        'NFKD',
        'Lowercase',
        'StripAccents',
        'BertNormalizer',
        'Strip',
        'Replace',
        'Prepend',
        'Sequence',
      ]);
  }
}
