import { Tokenizer as HfJsTokenizer } from '@huggingface/tokenizers';
import { Tokenizer } from '@tessera/data';
import { beforeAll, describe, expect, it } from 'vitest';
import { bertBaseUncasedJson, variedLines } from './helpers.js';

describe('BERT WordPiece (bert-base-uncased vocabulary)', () => {
  let tok: Tokenizer;
  let ref: HfJsTokenizer;
  beforeAll(() => {
    const json = bertBaseUncasedJson();
    tok = Tokenizer.fromJSON(json);
    ref = new HfJsTokenizer(json, { do_lower_case: true, model_max_length: 512 });
  });

  it('loads 30,522 tokens with [CLS]=101, [SEP]=102, [MASK]=103', () => {
    expect(tok.getVocabSize()).toBe(30522);
    expect([tok.tokenToId('[CLS]'), tok.tokenToId('[SEP]'), tok.tokenToId('[MASK]')]).toEqual([101, 102, 103]);
  });

  it('runs the basic tokenizer: lowercase, accents stripped, CJK and punctuation split', () => {
    const e = tok.encode('Héllo, WORLD! 日本 naïve');
    expect(e.tokens).toEqual(['[CLS]', 'hello', ',', 'world', '!', '日', '本', 'naive', '[SEP]']);
    expect(e.offsets.slice(1, -1)).toEqual([
      [0, 5],
      [5, 6],
      [7, 12],
      [12, 13],
      [14, 15],
      [15, 16],
      [17, 22],
    ]);
    // Greedy longest-match-first over this vocabulary (the paper's "un ##aff ##able" used another one).
    expect(tok.encode('unaffable').tokens).toEqual(['[CLS]', 'una', '##ffa', '##ble', '[SEP]']);
  });

  it('gives the ids of @huggingface/tokenizers on 3000 varied lines, single and paired', () => {
    const lines = variedLines(3000, 11);
    const bad: string[] = [];
    for (const [i, line] of lines.entries()) {
      const pair = i % 3 === 0 ? lines[(i + 1) % lines.length]! : null;
      const ours = tok.encode(line, pair);
      const theirs = ref.encode(line, { text_pair: pair, return_token_type_ids: true });
      if (
        JSON.stringify(ours.ids) !== JSON.stringify(theirs.ids) ||
        JSON.stringify(ours.typeIds) !== JSON.stringify(theirs.token_type_ids)
      ) {
        bad.push(line);
      }
    }
    expect(bad).toEqual([]);
  });

  it('encodes pairs with token types and special-token masks', () => {
    const e = tok.encode('a cat', 'the dog');
    expect(e.tokens).toEqual(['[CLS]', 'a', 'cat', '[SEP]', 'the', 'dog', '[SEP]']);
    expect(e.typeIds).toEqual([0, 0, 0, 0, 1, 1, 1]);
    expect(e.specialTokensMask).toEqual([1, 0, 0, 1, 0, 0, 1]);
    expect(e.sequenceIds).toEqual([null, 0, 0, null, 1, 1, null]);
    expect(tok.encode('a cat', 'the dog', { addSpecialTokens: false }).tokens).toEqual(['a', 'cat', 'the', 'dog']);
  });

  it('keeps [MASK] whole inside text and decodes with WordPiece cleanup', () => {
    const e = tok.encode('the [MASK] sat.');
    expect(e.tokens).toEqual(['[CLS]', 'the', '[MASK]', 'sat', '.', '[SEP]']);
    expect(tok.decode(e.ids)).toBe('the sat.');
    expect(tok.decode(e.ids, { skipSpecialTokens: false })).toBe('[CLS] the [MASK] sat. [SEP]');
    // The tokenizers crate cleans up token by token, so " ' " between tokens stays spaced.
    expect(tok.decode(tok.encode("unaffable isn't it, ok?").ids)).toBe("unaffable isn ' t it, ok?");
  });

  it('pads a batch to the longest, with attention masks, and truncates pairs longest-first', () => {
    tok.padding = {
      strategy: 'BatchLongest',
      direction: 'Right',
      pad_to_multiple_of: null,
      pad_id: 0,
      pad_type_id: 0,
      pad_token: '[PAD]',
    };
    tok.truncation = { max_length: 8, strategy: 'LongestFirst', stride: 0, direction: 'Right' };
    try {
      const [a, b] = tok.encodeBatch(['short', ['one two three four five six', 'seven eight']]);
      expect(b!.tokens).toEqual(['[CLS]', 'one', 'two', 'three', '[SEP]', 'seven', 'eight', '[SEP]']);
      expect(a!.ids).toEqual([101, tok.tokenToId('short'), 102, 0, 0, 0, 0, 0]);
      expect(a!.attentionMask).toEqual([1, 1, 1, 0, 0, 0, 0, 0]);
      expect(a!.specialTokensMask).toEqual([1, 0, 1, 1, 1, 1, 1, 1]);
      tok.padding = { ...tok.padding, strategy: { Fixed: 6 }, direction: 'Left' };
      tok.truncation = { ...tok.truncation, max_length: 6, direction: 'Left' };
      const c = tok.encode('one two three four five');
      expect(c.tokens).toEqual(['[CLS]', 'two', 'three', 'four', 'five', '[SEP]']);
      expect(tok.encode('hi').tokens).toEqual(['[PAD]', '[PAD]', '[PAD]', '[CLS]', 'hi', '[SEP]']);
    } finally {
      tok.padding = null;
      tok.truncation = null;
    }
  });

  it('saves and reloads to the same ids', () => {
    const again = Tokenizer.fromJSON(JSON.stringify(tok.toJSON()));
    for (const line of variedLines(200, 3)) expect(again.encode(line).ids).toEqual(tok.encode(line).ids);
  });
});
