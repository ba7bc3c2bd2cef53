import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng, TesseraError } from '@tessera/tensor-core';

export class ShardError extends TesseraError {}

export type TokenDtype = 'uint16' | 'uint32';

export interface ShardInfo {
  file: string;
  tokens: number;
  documents: number;
}

/** index.json of a shard directory. Documents are stored back to back, each followed by the separator (if any). */
export interface ShardIndex {
  format: 'tessera-token-shards';
  version: 1;
  dtype: TokenDtype;
  separator: number | null;
  shards: ShardInfo[];
  tokens: number;
  documents: number;
}

export interface WriteShardsOptions {
  dir: string;
  dtype?: TokenDtype;
  /** Tokens per shard file (a document may straddle two shards). Default 2^24. */
  shardTokens?: number;
  /** Token id written after every document (e.g. <|endoftext|>), or null for none. */
  separator?: number | null;
}

const BYTES: Record<TokenDtype, number> = { uint16: 2, uint32: 4 };

/**
 * Writes token documents as raw little-endian uint16/uint32 shard files plus index.json,
 * holding one shard's buffer in memory at a time. An id that does not fit the dtype is an error.
 */
export async function writeShards(
  docs: Iterable<ArrayLike<number>> | AsyncIterable<ArrayLike<number>>,
  o: WriteShardsOptions,
): Promise<ShardIndex> {
  const dtype = o.dtype ?? 'uint16';
  if (!(dtype in BYTES))
    throw new ShardError(`writeShards: dtype must be "uint16" or "uint32"; got ${JSON.stringify(dtype)}.`);
  const perShard = o.shardTokens ?? 1 << 24;
  if (!Number.isInteger(perShard) || perShard < 1)
    throw new ShardError(`writeShards: shardTokens must be a positive integer; got ${perShard}.`);
  const max = dtype === 'uint16' ? 0xffff : 0xffffffff;
  const sep = o.separator ?? null;
  mkdirSync(o.dir, { recursive: true });
  const buf = dtype === 'uint16' ? new Uint16Array(perShard) : new Uint32Array(perShard);
  const index: ShardIndex = {
    format: 'tessera-token-shards',
    version: 1,
    dtype,
    separator: sep,
    shards: [],
    tokens: 0,
    documents: 0,
  };
  let fill = 0;
  let docsInShard = 0;
  const flush = () => {
    if (fill === 0) return;
    const file = `shard-${String(index.shards.length).padStart(5, '0')}.bin`;
    const bytes = new Uint8Array(buf.buffer, 0, fill * BYTES[dtype]);
    if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1)
      throw new ShardError('writeShards: big-endian hosts are not supported.');
    writeFileSync(join(o.dir, file), bytes);
    index.shards.push({ file, tokens: fill, documents: docsInShard });
    index.tokens += fill;
    fill = 0;
    docsInShard = 0;
  };
  const put = (id: number, doc: number) => {
    if (!Number.isInteger(id) || id < 0 || id > max) {
      throw new ShardError(
        `writeShards: document ${doc} has token id ${id}, which does not fit ${dtype}; use dtype "uint32" for vocabularies over 65,536.`,
      );
    }
    buf[fill++] = id;
    if (fill === perShard) flush();
  };
  let n = 0;
  for await (const doc of docs as AsyncIterable<ArrayLike<number>>) {
    for (let i = 0; i < doc.length; i++) put(doc[i]!, n);
    if (sep !== null) put(sep, n);
    docsInShard++;
    n++;
  }
  flush();
  index.documents = n;
  writeFileSync(join(o.dir, 'index.json'), `${JSON.stringify(index, null, 2)}\n`);
  return index;
}

/** Reads a shard directory with positional reads: nothing is loaded whole, so it works for corpora larger than RAM. */
export class TokenShards {
  readonly index: ShardIndex;
  readonly #starts: number[] = [];

  constructor(readonly dir: string) {
    let raw: string;
    try {
      raw = readFileSync(join(dir, 'index.json'), 'utf8');
    } catch (err) {
      throw new ShardError(
        `TokenShards: cannot read ${join(dir, 'index.json')} (${(err as Error).message}); run prepare/writeShards first.`,
      );
    }
    const idx = JSON.parse(raw) as ShardIndex;
    if (idx.format !== 'tessera-token-shards' || idx.version !== 1 || !(idx.dtype in BYTES)) {
      throw new ShardError(`TokenShards: ${dir}/index.json is not a version-1 tessera token shard index.`);
    }
    let at = 0;
    for (const s of idx.shards) {
      const fd = openSync(join(dir, s.file), 'r');
      try {
        const size = fstatSync(fd).size;
        const want = s.tokens * BYTES[idx.dtype];
        if (size !== want) {
          throw new ShardError(
            `TokenShards: ${s.file} holds ${size} bytes but the index says ${s.tokens} ${idx.dtype} tokens (${want} bytes); the shard is truncated or damaged — rewrite it.`,
          );
        }
      } finally {
        closeSync(fd);
      }
      this.#starts.push(at);
      at += s.tokens;
    }
    this.index = idx;
  }

  get length(): number {
    return this.index.tokens;
  }

  /** Tokens [start, start + count) of the whole stream, across shard boundaries. */
  read(start: number, count: number): Uint32Array {
    if (start < 0 || count < 0 || start + count > this.length) {
      throw new ShardError(`TokenShards.read(${start}, ${count}) is outside the ${this.length} tokens stored.`);
    }
    const out = new Uint32Array(count);
    const width = BYTES[this.index.dtype];
    let done = 0;
    let s = this.#shardOf(start);
    while (done < count) {
      const info = this.index.shards[s]!;
      const off = start + done - this.#starts[s]!;
      const take = Math.min(count - done, info.tokens - off);
      const bytes = new Uint8Array(take * width);
      const fd = openSync(join(this.dir, info.file), 'r');
      try {
        readSync(fd, bytes, 0, bytes.length, off * width);
      } finally {
        closeSync(fd);
      }
      const view = new DataView(bytes.buffer);
      for (let i = 0; i < take; i++)
        out[done + i] = width === 2 ? view.getUint16(2 * i, true) : view.getUint32(4 * i, true);
      done += take;
      s++;
    }
    return out;
  }

  #shardOf(pos: number): number {
    let lo = 0;
    let hi = this.#starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#starts[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /**
   * Fixed-length blocks of `blockSize` tokens packed across documents (the separators mark
   * the boundaries), optionally in a seeded shuffled order; `rank`/`worldSize` give each
   * worker a disjoint share. A final partial block is dropped and counted in `dropped`.
   */
  blocks(
    blockSize: number,
    o: { shuffle?: boolean; seed?: number; rank?: number; worldSize?: number } = {},
  ): { count: number; dropped: number; [Symbol.iterator](): Iterator<Uint32Array> } {
    if (!Number.isInteger(blockSize) || blockSize < 1)
      throw new ShardError(`blocks: blockSize must be a positive integer; got ${blockSize}.`);
    const rank = o.rank ?? 0;
    const world = o.worldSize ?? 1;
    if (!(Number.isInteger(rank) && Number.isInteger(world) && rank >= 0 && rank < world)) {
      throw new ShardError(`blocks: need 0 <= rank < worldSize; got rank ${rank}, worldSize ${world}.`);
    }
    const total = Math.floor(this.length / blockSize);
    let order = Array.from({ length: total }, (_, i) => i);
    if (o.shuffle) new Rng(o.seed ?? 0).shuffle(order);
    order = order.filter((_, i) => i % world === rank);
    const self = this;
    return {
      count: order.length,
      dropped: this.length - total * blockSize,
      *[Symbol.iterator]() {
        for (const b of order) yield self.read(b * blockSize, blockSize);
      },
    };
  }
}

/** Tokenizes a text stream with `encode` and writes shards with the separator after each document. */
export async function prepareShards(
  texts: Iterable<string> | AsyncIterable<string>,
  encode: (text: string) => ArrayLike<number>,
  o: WriteShardsOptions,
): Promise<ShardIndex> {
  async function* ids() {
    for await (const t of texts as AsyncIterable<string>) yield encode(t);
  }
  return writeShards(ids(), o);
}
