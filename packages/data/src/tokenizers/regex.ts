import { TokenizerError } from './errors.js';

/**
 * Compiles a tokenizer.json pattern (written for Rust's regex / Oniguruma) as a JS RegExp
 * with the `u` flag. What JS (Node 20) lacks is rewritten into an equivalent JS pattern:
 *   - inline case-insensitive groups `(?i:...)` (Llama 3, GPT-4o style pre-tokenizers):
 *     each letter inside becomes a class of its case variants, `'s` -> `'[sS]`;
 *   - possessive quantifiers `X*+`, `X++`, `X?+` and atomic groups `(?>X)`: the lookahead
 *     and back-reference idiom `(?=(X))\N`, which matches exactly what the atomic form does.
 * Anything else is passed through; an invalid pattern names the pattern and the reason.
 */
export function compilePattern(source: string, flags = 'gu'): RegExp {
  const translated = translate(source);
  try {
    return new RegExp(translated, flags);
  } catch (err) {
    throw new TokenizerError(
      `tokenizer.json: the pattern ${JSON.stringify(source)} is not a valid regular expression here` +
        `${translated !== source ? ` (translated to ${JSON.stringify(translated)})` : ''}: ${(err as Error).message}`,
    );
  }
}

/** Case variants of one character, as a class body, or the character itself. */
function caseClass(ch: string): string {
  const lower = ch.toLowerCase();
  const upper = ch.toUpperCase();
  if (lower === upper || [...lower].length !== 1 || [...upper].length !== 1) return ch;
  return `[${lower}${upper}]`;
}

/** Index just past the escape sequence starting at `i` (a backslash). */
function escapeEnd(s: string, i: number): number {
  const next = s[i + 1];
  if ((next === 'p' || next === 'P') && s[i + 2] === '{') return s.indexOf('}', i) + 1;
  if (next === 'u' && s[i + 2] === '{') return s.indexOf('}', i) + 1;
  if (next === 'u') return i + 6;
  if (next === 'x') return i + 4;
  return i + 2;
}

/** Index just past the character class starting at `i` (`[`). */
function classEnd(s: string, i: number): number {
  let j = i + 1;
  if (s[j] === '^') j++;
  if (s[j] === ']') j++;
  while (j < s.length && s[j] !== ']') j = s[j] === '\\' ? escapeEnd(s, j) : j + 1;
  return j + 1;
}

/** Index just past the group starting at `i` (`(`). */
function groupEnd(s: string, i: number): number {
  let depth = 0;
  for (let j = i; j < s.length; ) {
    const c = s[j]!;
    if (c === '\\') j = escapeEnd(s, j);
    else if (c === '[') j = classEnd(s, j);
    else {
      if (c === '(') depth++;
      else if (c === ')' && --depth === 0) return j + 1;
      j++;
    }
  }
  throw new TokenizerError(`tokenizer.json: unbalanced parentheses in the pattern ${JSON.stringify(s)}.`);
}

/** The body of a case-insensitive group with every letter widened to its case variants. */
function caseless(body: string): string {
  let out = '';
  for (let i = 0; i < body.length; ) {
    const c = body[i]!;
    if (c === '\\') {
      const end = escapeEnd(body, i);
      out += body.slice(i, end);
      i = end;
    } else if (c === '[') {
      const end = classEnd(body, i);
      const inner = body.slice(i + 1, end - 1);
      // Widen the literal letters of the class; escapes and ranges stay as written.
      let widened = '';
      for (let k = 0; k < inner.length; ) {
        if (inner[k] === '\\') {
          const e = escapeEnd(inner, k);
          widened += inner.slice(k, e);
          k = e;
        } else {
          const ch = inner[k]!;
          const variants = caseClass(ch);
          widened += variants === ch || inner[k + 1] === '-' || inner[k - 1] === '-' ? ch : variants.slice(1, -1);
          k++;
        }
      }
      out += `[${widened}]`;
      i = end;
    } else {
      const cp = String.fromCodePoint(body.codePointAt(i)!);
      out += caseClass(cp);
      i += cp.length;
    }
  }
  return out;
}

/** Counts the named groups added for atomic matches, so each name is unique in the pattern. */
interface Names {
  n: number;
}

function translate(source: string, names: Names = { n: 0 }): string {
  let out = '';
  // The atom just emitted, so a possessive quantifier after it can wrap it.
  let atomStart = -1;
  for (let i = 0; i < source.length; ) {
    const c = source[i]!;
    let atom: string;
    if (c === '\\') {
      atom = source.slice(i, escapeEnd(source, i));
      i += atom.length;
    } else if (c === '[') {
      atom = source.slice(i, classEnd(source, i));
      i += atom.length;
    } else if (c === '(') {
      const end = groupEnd(source, i);
      const whole = source.slice(i, end);
      if (whole.startsWith('(?i:')) atom = `(?:${caseless(translate(whole.slice(4, -1), names))})`;
      else if (whole.startsWith('(?>')) atom = atomic(translate(whole.slice(3, -1), names), names);
      else {
        const head = /^\((\?(?:[:=!]|<[=!]|<[A-Za-z_][\w]*>))?/.exec(whole)![0];
        atom = `${head}${translate(whole.slice(head.length, -1), names)})`;
      }
      i = end;
    } else if ('*+?{'.includes(c) && atomStart >= 0) {
      // A quantifier: copy it, and make it atomic when it is possessive.
      let end = i + 1;
      if (c === '{') end = source.indexOf('}', i) + 1;
      if (source[end] === '?') end++;
      const quantifier = source.slice(i, end);
      if (source[end] === '+') {
        out = out.slice(0, atomStart) + atomic(out.slice(atomStart) + quantifier, names);
        atomStart = -1;
        i = end + 1;
      } else {
        out += quantifier;
        atomStart = -1;
        i = end;
      }
      continue;
    } else {
      const cp = String.fromCodePoint(source.codePointAt(i)!);
      atom = cp;
      i += cp.length;
    }
    atomStart = out.length;
    out += atom;
  }
  return out;
}

/** `X` matched atomically: once matched, never backtracked into (the lookahead captures, the reference consumes). */
function atomic(x: string, names: Names): string {
  const name = `tsrAtomic${++names.n}`;
  return `(?=(?<${name}>${x}))\\k<${name}>`;
}
