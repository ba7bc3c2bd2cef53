import { TokenizerError } from './errors.js';
import { Aligned } from './text.js';

/**
 * SentencePiece's compiled normalisation rules ("precompiled_charsmap", e.g. nmt_nfkc):
 * a darts-clone double-array trie over UTF-8 byte sequences whose values point into a
 * pool of NUL-terminated replacement strings. Applied as SentencePiece applies it: at each
 * position the longest matching rule wins; unmatched characters are copied.
 */
export class PrecompiledCharsmap {
  readonly #units: Uint32Array;
  readonly #pool: Uint8Array;
  readonly #decoder = new TextDecoder();
  readonly #encoder = new TextEncoder();

  constructor(readonly blob: Uint8Array) {
    if (blob.length < 4) throw new TokenizerError('Precompiled: precompiled_charsmap is too short to hold a trie.');
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    const trieBytes = view.getUint32(0, true);
    if (trieBytes % 4 !== 0 || 4 + trieBytes > blob.length) {
      throw new TokenizerError(
        `Precompiled: precompiled_charsmap declares a ${trieBytes}-byte trie but holds ${blob.length - 4} bytes; the file is damaged.`,
      );
    }
    this.#units = new Uint32Array(trieBytes / 4);
    for (let i = 0; i < this.#units.length; i++) this.#units[i] = view.getUint32(4 + 4 * i, true);
    this.#pool = blob.subarray(4 + trieBytes);
  }

  static fromBase64(b64: string): PrecompiledCharsmap {
    return new PrecompiledCharsmap(new Uint8Array(Buffer.from(b64, 'base64')));
  }

  /** Longest rule matching bytes[pos..]: [length in bytes, replacement] or undefined. */
  #longest(bytes: Uint8Array, pos: number): [number, string] | undefined {
    const u = this.#units;
    let node = 0;
    let unit = u[0]!;
    node ^= offset(unit);
    let best: [number, number] | undefined;
    for (let i = pos; i < bytes.length; i++) {
      const c = bytes[i]!;
      node ^= c;
      unit = u[node]!;
      if (unit === undefined || (unit & 0x800000ff) !== c) break;
      node ^= offset(unit);
      if ((unit >>> 8) & 1) best = [i - pos + 1, u[node]! & 0x7fffffff];
    }
    if (!best) return undefined;
    let end = best[1];
    while (end < this.#pool.length && this.#pool[end] !== 0) end++;
    return [best[0], this.#decoder.decode(this.#pool.subarray(best[1], end))];
  }

  normalizeString(s: string): string {
    return this.normalize(Aligned.of(s)).text;
  }

  normalize(s: Aligned): Aligned {
    const bytes = this.#encoder.encode(s.text);
    // Code-unit index at each byte offset, to map matches back onto the aligned string.
    const unitAt = new Int32Array(bytes.length + 1);
    for (let i = 0, b = 0; i < s.text.length; ) {
      const cp = s.text.codePointAt(i)!;
      const n = utf8Length(cp);
      unitAt.fill(i, b, b + n);
      b += n;
      i += cp > 0xffff ? 2 : 1;
    }
    unitAt[bytes.length] = s.text.length;
    let text = '';
    const starts: number[] = [];
    const ends: number[] = [];
    let changed = false;
    for (let pos = 0, i = 0; i < s.text.length; ) {
      const cp = s.text.codePointAt(i)!;
      const w = cp > 0xffff ? 2 : 1;
      const hit = this.#longest(bytes, pos);
      if (hit) {
        let j = unitAt[pos + hit[0]]!;
        if (j <= i) j = i + w; // a rule ending inside a character still consumes that character
        text += hit[1];
        s.pushReplacementSpans(i, j, hit[1], starts, ends);
        changed = true;
        while (pos < bytes.length && unitAt[pos]! < j) pos++;
        i = j;
      } else {
        text += s.text.slice(i, i + w);
        for (let k = 0; k < w; k++) {
          starts.push(s.starts[i + k]!);
          ends.push(s.ends[i + k]!);
        }
        pos += utf8Length(cp);
        i += w;
      }
    }
    return changed ? new Aligned(text, starts, ends) : s;
  }
}

function utf8Length(cp: number): number {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

function offset(unit: number): number {
  return (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
}
