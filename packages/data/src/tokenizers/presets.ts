import { BpeModel, UnigramModel, WordPieceModel } from './models.js';
import { BertNormalizer, createNormalizer } from './normalizers.js';
import { ByteLevelPreTokenizer, createPreTokenizer } from './pretokenizers.js';
import { TemplateProcessing, createDecoder, createPostProcessor } from './processors.js';
import { type AddedToken, Tokenizer } from './tokenizer.js';

/** The shape of an HF added token entry; `special` tokens are never split and can be skipped on decode. */
export function addedToken(id: number, content: string, special = true): AddedToken {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: !special, special };
}

/** GPT-2's layout: byte-level pre-tokenizer, BPE, ByteLevel decoder, <|endoftext|>. */
export function byteLevelBpeTokenizer(
  vocab: Map<string, number>,
  merges: Array<[string, string]>,
  specials: string[] = ['<|endoftext|>'],
): Tokenizer {
  return new Tokenizer({
    model: new BpeModel({ vocab, merges }),
    preTokenizer: new ByteLevelPreTokenizer({ add_prefix_space: false, trim_offsets: true, use_regex: true }),
    postProcessor: createPostProcessor({
      type: 'ByteLevel',
      add_prefix_space: true,
      trim_offsets: false,
      use_regex: true,
    }),
    decoder: createDecoder({ type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true }),
    addedTokens: specials.filter((s) => vocab.has(s)).map((s) => addedToken(vocab.get(s)!, s)),
  });
}

export const BERT_SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];

/** bert-base-uncased's layout: BertNormalizer, BertPreTokenizer, WordPiece, [CLS] A [SEP] B [SEP]. */
export function bertWordPieceTokenizer(vocab: Map<string, number>, options: { lowercase?: boolean } = {}): Tokenizer {
  const lowercase = options.lowercase ?? true;
  const id = (t: string) => vocab.get(t) ?? 0;
  return new Tokenizer({
    model: new WordPieceModel(vocab, '[UNK]', '##', 100),
    normalizer: new BertNormalizer({ clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase }),
    preTokenizer: createPreTokenizer({ type: 'BertPreTokenizer' }),
    postProcessor: new TemplateProcessing(
      TemplateProcessing.parse('[CLS]:0 $A:0 [SEP]:0'),
      TemplateProcessing.parse('[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1'),
      Object.fromEntries(['[CLS]', '[SEP]'].map((t) => [t, { id: t, ids: [id(t)], tokens: [t] }])),
    ),
    decoder: createDecoder({ type: 'WordPiece', prefix: '##', cleanup: true }),
    addedTokens: BERT_SPECIALS.filter((s) => vocab.has(s)).map((s) => addedToken(vocab.get(s)!, s)),
  });
}

/**
 * T5's layout: Metaspace + Unigram, "$A </s>", and `extraIds` sentinels <extra_id_0..N-1>
 * appended so that <extra_id_0> has the highest id, as in the released T5 vocabularies.
 * T5 ships a SentencePiece "Precompiled" normalizer; NFKC stands in for it here.
 */
export function t5UnigramTokenizer(
  pieces: Array<[string, number]>,
  options: { extraIds?: number; unkId?: number } = {},
): Tokenizer {
  const extra = options.extraIds ?? 100;
  const all = pieces.slice();
  for (let i = extra - 1; i >= 0; i--) all.push([`<extra_id_${i}>`, 0]);
  const index = new Map(all.map(([p], i) => [p, i]));
  const unkId = options.unkId ?? index.get('<unk>') ?? 2;
  const specials = ['<pad>', '</s>', '<unk>'].filter((s) => index.has(s));
  const eos = index.get('</s>') ?? 1;
  return new Tokenizer({
    model: new UnigramModel(all, unkId, false),
    normalizer: createNormalizer({
      type: 'Sequence',
      normalizers: [{ type: 'NFKC' }, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }],
    }),
    preTokenizer: createPreTokenizer({
      type: 'Sequence',
      pretokenizers: [
        { type: 'WhitespaceSplit' },
        { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
      ],
    }),
    postProcessor: new TemplateProcessing(
      TemplateProcessing.parse('$A:0 </s>:0'),
      TemplateProcessing.parse('$A:0 </s>:0 $B:0 </s>:0'),
      {
        '</s>': { id: '</s>', ids: [eos], tokens: ['</s>'] },
      },
    ),
    decoder: createDecoder({ type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true }),
    addedTokens: [
      ...specials.map((s) => addedToken(index.get(s)!, s)),
      ...Array.from({ length: extra }, (_, i) => addedToken(index.get(`<extra_id_${i}>`)!, `<extra_id_${i}>`)),
    ],
  });
}
