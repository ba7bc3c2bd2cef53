import { TokenizerError, unknownType } from './errors.js';
import { CHAR_TO_BYTE, utf8 } from './text.js';

type Json = Record<string, unknown>;

/** One encoded sequence, columns kept in step. Offsets are UTF-16 positions in the input. */
export interface Encoding {
  ids: number[];
  tokens: string[];
  offsets: Array<[number, number]>;
  typeIds: number[];
  attentionMask: number[];
  specialTokensMask: number[];
  /** Pre-tokenizer word index of each token; null for special tokens and padding. */
  wordIds: Array<number | null>;
  /** 0 or 1 for tokens of the first or second sequence; null for specials and padding. */
  sequenceIds: Array<number | null>;
}

export function emptyEncoding(): Encoding {
  return {
    ids: [],
    tokens: [],
    offsets: [],
    typeIds: [],
    attentionMask: [],
    specialTokensMask: [],
    wordIds: [],
    sequenceIds: [],
  };
}

export function pushToken(
  e: Encoding,
  id: number,
  token: string,
  offset: [number, number],
  typeId: number,
  special: boolean,
  word: number | null,
  seq: number | null,
): void {
  e.ids.push(id);
  e.tokens.push(token);
  e.offsets.push(offset);
  e.typeIds.push(typeId);
  e.attentionMask.push(1);
  e.specialTokensMask.push(special ? 1 : 0);
  e.wordIds.push(word);
  e.sequenceIds.push(seq);
}

function appendSeq(out: Encoding, e: Encoding, typeId: number, seq: number): void {
  for (let i = 0; i < e.ids.length; i++) {
    pushToken(out, e.ids[i]!, e.tokens[i]!, e.offsets[i]!, typeId, e.specialTokensMask[i] === 1, e.wordIds[i]!, seq);
  }
}

export interface PostProcessor {
  /** How many special tokens `process` adds (truncation leaves room for them). */
  addedTokens(isPair: boolean): number;
  process(a: Encoding, b: Encoding | null, addSpecial: boolean): Encoding;
  toJSON(): Json;
}

type Piece = { SpecialToken: { id: string; type_id: number } } | { Sequence: { id: 'A' | 'B'; type_id: number } };
type SpecialDef = { id: string; ids: number[]; tokens: string[] };

export class TemplateProcessing implements PostProcessor {
  constructor(
    readonly single: Piece[],
    readonly pair: Piece[],
    readonly specials: Record<string, SpecialDef>,
  ) {
    for (const p of [...single, ...pair]) {
      if ('SpecialToken' in p && !specials[p.SpecialToken.id]) {
        throw new TokenizerError(
          `TemplateProcessing: template uses special token "${p.SpecialToken.id}" missing from special_tokens.`,
        );
      }
    }
  }

  /** Parses the "[CLS] $A [SEP]" / "$B:1" shorthand HF accepts. */
  static parse(spec: string | Piece[]): Piece[] {
    if (Array.isArray(spec)) return spec;
    return spec
      .split(/\s+/)
      .filter(Boolean)
      .map((part): Piece => {
        const [name, type] = part.split(':') as [string, string | undefined];
        const typeId = type === undefined ? 0 : Number(type);
        if (name === '$A' || name === '$B' || name === '$')
          return { Sequence: { id: name === '$B' ? 'B' : 'A', type_id: typeId } };
        if (/^\$\d+$/.test(name)) return { Sequence: { id: 'A', type_id: Number(name.slice(1)) } };
        return { SpecialToken: { id: name, type_id: typeId } };
      });
  }

  static fromJSON(j: Json): TemplateProcessing {
    const specials = (j.special_tokens ?? {}) as Record<string, SpecialDef>;
    return new TemplateProcessing(
      TemplateProcessing.parse(j.single as Piece[]),
      TemplateProcessing.parse((j.pair ?? []) as Piece[]),
      specials,
    );
  }

  addedTokens(isPair: boolean): number {
    return (isPair ? this.pair : this.single).reduce(
      (n, p) => n + ('SpecialToken' in p ? this.specials[p.SpecialToken.id]!.ids.length : 0),
      0,
    );
  }

  process(a: Encoding, b: Encoding | null, addSpecial: boolean): Encoding {
    const out = emptyEncoding();
    if (!addSpecial) {
      appendSeq(out, a, 0, 0);
      if (b) appendSeq(out, b, 1, 1);
      return out;
    }
    for (const p of b ? this.pair : this.single) {
      if ('SpecialToken' in p) {
        const s = this.specials[p.SpecialToken.id]!;
        s.ids.forEach((id, k) => {
          pushToken(out, id, s.tokens[k]!, [0, 0], p.SpecialToken.type_id, true, null, null);
        });
      } else if (p.Sequence.id === 'A') appendSeq(out, a, p.Sequence.type_id, 0);
      else if (b) appendSeq(out, b, p.Sequence.type_id, 1);
    }
    return out;
  }

  toJSON(): Json {
    return { type: 'TemplateProcessing', single: this.single, pair: this.pair, special_tokens: this.specials };
  }
}

/** BERT's and RoBERTa's fixed templates, as HF writes them. */
class ClsSepProcessing implements PostProcessor {
  readonly #t: TemplateProcessing;
  constructor(
    readonly type: 'BertProcessing' | 'RobertaProcessing',
    readonly cls: [string, number],
    readonly sep: [string, number],
    readonly extra: Json,
  ) {
    const [c, s] = [cls[0], sep[0]];
    const specials = { [c]: { id: c, ids: [cls[1]], tokens: [c] }, [s]: { id: s, ids: [sep[1]], tokens: [s] } };
    const roberta = type === 'RobertaProcessing';
    // RoBERTa gives every token type id 0 and doubles the separator between sequences.
    this.#t = new TemplateProcessing(
      TemplateProcessing.parse(`${c} $A ${s}`),
      TemplateProcessing.parse(roberta ? `${c} $A ${s} ${s} $B:0 ${s}` : `${c} $A ${s} $B:1 ${s}:1`),
      specials,
    );
  }
  addedTokens(isPair: boolean): number {
    return this.#t.addedTokens(isPair);
  }
  process(a: Encoding, b: Encoding | null, addSpecial: boolean): Encoding {
    return this.#t.process(a, b, addSpecial);
  }
  toJSON(): Json {
    return { type: this.type, sep: this.sep, cls: this.cls, ...this.extra };
  }
}

export function createPostProcessor(j: Json | null | undefined): PostProcessor | null {
  if (!j) return null;
  switch (j.type) {
    case 'TemplateProcessing':
      return TemplateProcessing.fromJSON(j);
    case 'BertProcessing':
      return new ClsSepProcessing('BertProcessing', j.cls as [string, number], j.sep as [string, number], {});
    case 'RobertaProcessing':
      return new ClsSepProcessing('RobertaProcessing', j.cls as [string, number], j.sep as [string, number], {
        trim_offsets: j.trim_offsets ?? true,
        add_prefix_space: j.add_prefix_space ?? true,
      });
    case 'ByteLevel': {
      const trim = (j.trim_offsets as boolean | undefined) ?? true;
      const json = {
        type: 'ByteLevel',
        add_prefix_space: j.add_prefix_space ?? true,
        trim_offsets: trim,
        use_regex: j.use_regex ?? true,
      };
      return {
        addedTokens: () => 0,
        process: (a, b) => {
          const out = emptyEncoding();
          for (const [e, seq] of [
            [a, 0],
            [b, 1],
          ] as const) {
            if (!e) continue;
            appendSeq(out, e, seq, seq);
          }
          if (trim) trimByteLevelOffsets(out);
          return out;
        },
        toJSON: () => json,
      };
    }
    case 'Sequence': {
      const parts = ((j.processors as Json[] | undefined) ?? []).map((p) => createPostProcessor(p)!);
      return {
        addedTokens: (isPair) => parts.reduce((n, p) => n + p.addedTokens(isPair), 0),
        process: (a, b, add) => {
          // The first processor joins the pair; the rest refine the joined encoding.
          let out = parts.length ? parts[0]!.process(a, b, add) : a;
          for (const p of parts.slice(1)) out = p.process(out, null, add);
          return out;
        },
        toJSON: () => ({ type: 'Sequence', processors: parts.map((p) => p.toJSON()) }),
      };
    }
    default:
      return unknownType('post_processor', j.type, [
        'TemplateProcessing',
        'BertProcessing',
        'RobertaProcessing',
        'ByteLevel',
        'Sequence',
      ]);
  }
}

/** Drops the spaces a byte-level token carries ("Ġ") from its offsets. */
function trimByteLevelOffsets(e: Encoding): void {
  for (let i = 0; i < e.ids.length; i++) {
    if (e.specialTokensMask[i]) continue;
    const t = e.tokens[i]!;
    const lead = t.length - t.replace(/^Ġ+/, '').length;
    const trail = t.length - t.replace(/Ġ+$/, '').length;
    let [s, end] = e.offsets[i]!;
    if (lead && lead < t.length) s = Math.min(s + lead, end);
    if (trail && trail < t.length) end = Math.max(end - trail, s);
    e.offsets[i] = [s, end];
  }
}

// ---------------- decoders ----------------

export interface Decoder {
  decodeChain(tokens: string[]): string[];
  toJSON(): Json;
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: false });

function byteLevelDecode(tokens: string[]): string[] {
  const bytes: number[] = [];
  for (const t of tokens) {
    for (const ch of t) {
      const b = CHAR_TO_BYTE.get(ch);
      if (b !== undefined) bytes.push(b);
      else bytes.push(...utf8(ch)); // e.g. an added token written in plain text
    }
  }
  return [utf8Decoder.decode(new Uint8Array(bytes))];
}

export function wordPieceCleanup(s: string): string {
  return s
    .replaceAll(' .', '.')
    .replaceAll(' ?', '?')
    .replaceAll(' !', '!')
    .replaceAll(' ,', ',')
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(' do not', " don't")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}

export function createDecoder(j: Json | null | undefined): Decoder | null {
  if (!j) return null;
  switch (j.type) {
    case 'ByteLevel':
      return {
        decodeChain: byteLevelDecode,
        toJSON: () => ({
          type: 'ByteLevel',
          add_prefix_space: j.add_prefix_space ?? true,
          trim_offsets: j.trim_offsets ?? true,
          use_regex: j.use_regex ?? true,
        }),
      };
    case 'WordPiece': {
      const prefix = (j.prefix as string | undefined) ?? '##';
      const cleanup = (j.cleanup as boolean | undefined) ?? true;
      return {
        decodeChain: (tokens) =>
          tokens.map((t, i) => {
            let s = t;
            if (i !== 0) s = s.startsWith(prefix) ? s.slice(prefix.length) : ` ${s}`;
            return cleanup ? wordPieceCleanup(s) : s;
          }),
        toJSON: () => ({ type: 'WordPiece', prefix, cleanup }),
      };
    }
    case 'Metaspace': {
      const rep = (j.replacement as string | undefined) ?? '▁';
      const legacy = j.add_prefix_space as boolean | undefined;
      const scheme = (j.prepend_scheme as string | undefined) ?? (legacy === false ? 'never' : 'always');
      const split = (j.split as boolean | undefined) ?? true;
      return {
        decodeChain: (tokens) =>
          tokens.map((t, i) => {
            const s = t.replaceAll(rep, ' ');
            return i === 0 && scheme !== 'never' && s.startsWith(' ') ? s.slice(1) : s;
          }),
        toJSON: () => ({ type: 'Metaspace', replacement: rep, prepend_scheme: scheme, split }),
      };
    }
    case 'BPEDecoder': {
      const suffix = (j.suffix as string | undefined) ?? '</w>';
      return {
        decodeChain: (tokens) => tokens.map((t, i) => t.replaceAll(suffix, i === tokens.length - 1 ? '' : ' ')),
        toJSON: () => ({ type: 'BPEDecoder', suffix }),
      };
    }
    case 'ByteFallback':
      return {
        decodeChain: (tokens) => {
          const out: string[] = [];
          let bytes: number[] = [];
          const flush = () => {
            if (!bytes.length) return;
            const fatal = new TextDecoder('utf-8', { fatal: true });
            try {
              out.push(fatal.decode(new Uint8Array(bytes)));
            } catch {
              // HF emits one replacement character per byte when the bytes are not valid UTF-8.
              for (let k = 0; k < bytes.length; k++) out.push('\uFFFD');
            }
            bytes = [];
          };
          for (const t of tokens) {
            const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(t);
            if (m) bytes.push(Number.parseInt(m[1]!, 16));
            else {
              flush();
              out.push(t);
            }
          }
          flush();
          return out;
        },
        toJSON: () => ({ type: 'ByteFallback' }),
      };
    case 'Fuse':
      return { decodeChain: (tokens) => [tokens.join('')], toJSON: () => ({ type: 'Fuse' }) };
    case 'Strip': {
      const content = String(j.content ?? ' ');
      const start = Number(j.start ?? 0);
      const stop = Number(j.stop ?? 0);
      return {
        decodeChain: (tokens) =>
          tokens.map((t) => {
            let s = t;
            for (let k = 0; k < start && s.startsWith(content); k++) s = s.slice(content.length);
            for (let k = 0; k < stop && s.endsWith(content); k++) s = s.slice(0, s.length - content.length);
            return s;
          }),
        toJSON: () => ({ type: 'Strip', content, start, stop }),
      };
    }
    case 'Replace': {
      const pat = j.pattern as { String?: string; Regex?: string };
      const re =
        pat?.String !== undefined
          ? new RegExp(pat.String.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gu')
          : new RegExp(String(pat?.Regex), 'gu');
      const content = String(j.content ?? '');
      return {
        decodeChain: (tokens) => tokens.map((t) => t.replace(re, content)),
        toJSON: () => ({ type: 'Replace', pattern: pat, content }),
      };
    }
    case 'Sequence': {
      const parts = ((j.decoders as Json[] | undefined) ?? []).map((d) => createDecoder(d)!);
      return {
        decodeChain: (tokens) => parts.reduce((acc, d) => d.decodeChain(acc), tokens),
        toJSON: () => ({ type: 'Sequence', decoders: parts.map((d) => d.toJSON()) }),
      };
    }
    default:
      return unknownType('decoder', j.type, [
        'ByteLevel',
        'WordPiece',
        'Metaspace',
        'BPEDecoder',
        'ByteFallback',
        'Fuse',
        'Strip',
        'Replace',
        'Sequence',
      ]);
  }
}
