import { readFileSync } from 'node:fs';
import { Tokenizer as HfJsTokenizer } from '@huggingface/tokenizers';
import { type Tokenizer, TokenizerError, trainByteLevelBpe, trainUnigram, trainWordPiece } from '@tessera/data';
import { beforeAll, describe, expect, it } from 'vitest';
import { CORPUS_FILE, corpusLines, variedLines } from './helpers.js';

const paragraphs = readFileSync(CORPUS_FILE, 'utf8').split('\n').filter(Boolean);

describe('training byte-level BPE', () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await trainByteLevelBpe(paragraphs, { vocabSize: 800 });
  });

  it('reaches the target size with all 256 bytes and <|endoftext|> first', () => {
    expect(tok.getVocabSize()).toBe(800);
    expect(tok.tokenToId('<|endoftext|>')).toBe(0);
    expect(tok.encode('whale').ids.length).toBeLessThan(5);
  });

  it('is deterministic and round-trips any text, unseen characters included', async () => {
    const again = await trainByteLevelBpe(paragraphs, { vocabSize: 800, seed: 5 });
    expect(JSON.stringify(again.toJSON())).toBe(JSON.stringify(tok.toJSON()));
    for (const line of variedLines(300, 2)) expect(tok.decode(tok.encode(line).ids)).toBe(line);
  });

  it('saves a file @huggingface/tokenizers reads to the same ids', () => {
    const ref = new HfJsTokenizer(tok.toJSON(), {});
    for (const line of variedLines(300, 4)) expect(ref.encode(line).ids).toEqual(tok.encode(line).ids);
  });

  it('streams an async corpus', async () => {
    async function* gen() {
      yield* paragraphs.slice(0, 50);
    }
    const t = await trainByteLevelBpe(gen(), { vocabSize: 300 });
    expect(t.getVocabSize()).toBe(300);
  });

  it('rejects a target smaller than the alphabet', async () => {
    await expect(trainByteLevelBpe(paragraphs, { vocabSize: 100 })).rejects.toThrow(TokenizerError);
    await expect(trainByteLevelBpe(paragraphs, { vocabSize: 100 })).rejects.toThrow(/at least 257/);
  });
});

describe('training WordPiece', () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await trainWordPiece(paragraphs, { vocabSize: 1000 });
  });

  it('reaches the target size, specials first, ## continuations', () => {
    expect(tok.getVocabSize()).toBe(1000);
    expect(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((t) => tok.tokenToId(t))).toEqual([0, 1, 2, 3, 4]);
    const e = tok.encode('Whales and harpooneers');
    expect(e.tokens[0]).toBe('[CLS]');
    expect(e.tokens.slice(1, -1).join(' ').replaceAll(' ##', '')).toBe('whales and harpooneers');
  });

  it('is deterministic and @huggingface/tokenizers reads the saved file to the same ids', async () => {
    const again = await trainWordPiece(paragraphs, { vocabSize: 1000 });
    expect(JSON.stringify(again.toJSON())).toBe(JSON.stringify(tok.toJSON()));
    const ref = new HfJsTokenizer(tok.toJSON(), { do_lower_case: true });
    for (const line of variedLines(300, 5)) expect(ref.encode(line).ids).toEqual(tok.encode(line).ids);
  });
});

describe('training Unigram (T5 layout)', () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await trainUnigram(paragraphs, { vocabSize: 800 });
  });

  it('reaches the target size plus 100 sentinels, <extra_id_0> last', () => {
    expect(tok.getVocabSize()).toBe(900);
    expect(['<pad>', '</s>', '<unk>'].map((t) => tok.tokenToId(t))).toEqual([0, 1, 2]);
    expect(tok.tokenToId('<extra_id_0>')).toBe(899);
    expect(tok.tokenToId('<extra_id_99>')).toBe(800);
  });

  it('encodes with </s>, keeps sentinels whole, decodes back', () => {
    const e = tok.encode('Call me <extra_id_0> Ishmael.');
    expect(e.tokens.at(-1)).toBe('</s>');
    expect(e.tokens).toContain('<extra_id_0>');
    expect(tok.decode(e.ids)).toBe('Call me Ishmael.');
    expect(tok.decode(e.ids, { skipSpecialTokens: false })).toBe('Call me<extra_id_0> Ishmael.</s>');
    for (const line of corpusLines().slice(0, 200))
      expect(tok.decode(tok.encode(line).ids)).toBe(line.replace(/\s+/g, ' ').normalize('NFKC'));
  });

  it('maps unseen characters to one <unk> per run', () => {
    const e = tok.encode('whale 日本語');
    // One token with the unk id; its text is the run it covers, as HF's Rust Unigram gives it.
    const unk = tok.tokenToId('<unk>');
    expect(e.ids.filter((id) => id === unk)).toHaveLength(1);
    expect(e.tokens[e.ids.indexOf(unk!)]).toBe('日本語');
  });

  it('is deterministic and @huggingface/tokenizers reads the saved file to the same ids', async () => {
    const again = await trainUnigram(paragraphs, { vocabSize: 800, seed: 3 });
    expect(JSON.stringify(again.toJSON())).toBe(JSON.stringify(tok.toJSON()));
    const ref = new HfJsTokenizer(tok.toJSON(), {});
    const bad: string[] = [];
    for (const line of [...corpusLines().slice(0, 1000), ...variedLines(500, 6)]) {
      if (JSON.stringify(ref.encode(line).ids) !== JSON.stringify(tok.encode(line).ids)) bad.push(line);
    }
    expect(bad).toEqual([]);
  });
});
