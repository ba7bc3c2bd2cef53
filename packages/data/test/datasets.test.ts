import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bufferedShuffle,
  DatasetError,
  isValidation,
  packBlocks,
  shardStream,
  splitStream,
  TextDataset,
  type TextRecord,
} from '@tessera/data';
import { registry } from '@tessera/tensor-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-ds-'));
  mkdirSync(join(dir, 'docs'));
  writeFileSync(join(dir, 'docs', 'a.txt'), 'first line\r\nsecond line\n\nthird\n');
  writeFileSync(
    join(dir, 'docs', 'b.txt'),
    Buffer.concat([Buffer.from('ok\nbad '), Buffer.from([0xff, 0xfe]), Buffer.from('\nlast')]),
  );
  writeFileSync(join(dir, 'empty.txt'), '');
  writeFileSync(
    join(dir, 'rows.jsonl'),
    '{"text":"a","label":"pos"}\n{"body":"no text"}\nnot json\n{"text":"b","label":"neg"}\n',
  );
  writeFileSync(join(dir, 'rows.csv'), 'label,text\npos,"hello, ""world"""\nneg,bye\nbroken\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('text datasets', () => {
  it('reads a directory line by line and stops at invalid UTF-8 by default, naming the place', async () => {
    const ds = new TextDataset({ path: join(dir, 'docs') });
    await expect(all(ds)).rejects.toThrow(/invalid UTF-8 at .*b\.txt:2/);
  });

  it('skips and counts bad lines when asked', async () => {
    const ds = new TextDataset({ path: join(dir, 'docs'), onBadInput: 'skip', maxLength: 10 });
    const recs = (await all(ds)).map((r: TextRecord) => r.text);
    expect(recs).toEqual(['first line', 'third', 'ok', 'last']);
    expect(ds.report).toEqual({
      files: 2,
      records: 4,
      skipped: { 'invalid UTF-8': 1, 'record longer than maxLength 10': 1 },
    });
  });

  it('reads documents separated by blank lines, and reports empty files', async () => {
    const recs = await all(new TextDataset({ path: join(dir, 'docs', 'a.txt'), mode: 'document' }));
    expect(recs.map((r) => r.text)).toEqual(['first line\nsecond line', 'third']);
    await expect(all(new TextDataset({ path: join(dir, 'empty.txt') }))).rejects.toThrow(/empty file/);
  });

  it('selects JSONL and CSV fields with labels, counting bad rows', async () => {
    const j = new TextDataset({
      path: join(dir, 'rows.jsonl'),
      format: 'jsonl',
      labelField: 'label',
      onBadInput: 'skip',
    });
    expect((await all(j)).map((r) => [r.text, r.label])).toEqual([
      ['a', 'pos'],
      ['b', 'neg'],
    ]);
    expect(j.report.skipped).toEqual({ 'missing text field "text"': 1, 'invalid JSON': 1 });
    const c = registry.dataset.create(
      'text',
      { path: join(dir, 'rows.csv'), format: 'csv', on_bad_input: 'skip' },
      { recordLabel: 'label' },
    ) as TextDataset;
    expect((await all(c)).map((r) => [r.text, r.label])).toEqual([
      ['hello, "world"', 'pos'],
      ['bye', 'neg'],
    ]);
    expect(c.report.skipped).toEqual({ 'row has 1 fields, header has 2': 1 });
    await expect(all(new TextDataset({ path: join(dir, 'nope') }))).rejects.toThrow(DatasetError);
  });
});

describe('stream utilities', () => {
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);

  it('buffered shuffle is a seeded permutation', async () => {
    const a = await all(bufferedShuffle(range(100), 16, 3));
    expect([...a].sort((x, y) => x - y)).toEqual(range(100));
    expect(a).not.toEqual(range(100));
    expect(await all(bufferedShuffle(range(100), 16, 3))).toEqual(a);
  });

  it('shards and splits streams disjointly and reproducibly', async () => {
    const s0 = await all(shardStream(range(10), 0, 3));
    expect(s0).toEqual([0, 3, 6, 9]);
    const train = await all(splitStream(range(1000), 'train', 0.1, 7));
    const val = await all(splitStream(range(1000), 'validation', 0.1, 7));
    expect(train.length + val.length).toBe(1000);
    expect(val.length).toBeGreaterThan(70);
    expect(val.length).toBeLessThan(130);
    expect(val.every((i) => isValidation(i, 0.1, 7))).toBe(true);
  });

  it('packs token sequences into fixed blocks with separators', async () => {
    const blocks = await all(
      packBlocks(
        [
          [1, 2, 3],
          [4, 5],
          [6, 7, 8, 9],
        ],
        4,
        0,
      ),
    );
    expect(blocks).toEqual([
      [1, 2, 3, 0],
      [4, 5, 0, 6],
      [7, 8, 9, 0],
    ]);
  });
});
