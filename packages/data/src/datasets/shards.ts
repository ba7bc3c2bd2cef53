import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Rng, TesseraError } from '@tessera/tensor-core';

export class ShardError extends TesseraError {}

export type TokenDtype = 'uint16' | 'uint32';

export interface ShardInfo {
  file: string;
  tokens: number;
  documents: number;
}

/**
 * index.json of a shard directory. Documents are stored back to back, each followed by the
 * separator (if any). Version 2 files carry a header; version 1 files are raw tokens.
 */
export interface ShardIndex {
  format: 'tessera-token-shards';
  version: 1 | 2;
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
 * Every shard file starts with a 1024-byte header of 256 little-endian int32s, as llm.c's
 * do: [0] magic, [1] version, [2] token count; Tessera's also [3] bytes per token. The
 * magic says the dtype: llm.c writes 20240520 for uint16 and 20240801 for uint32 tokens.
 */
export const SHARD_HEADER_BYTES = 1024;
const MAGIC: Record<number, { dtype: TokenDtype; origin: 'llm.c' | 'tessera' }> = {
  20240520: { dtype: 'uint16', origin: 'llm.c' },
  20240801: { dtype: 'uint32', origin: 'llm.c' },
  // "TSR2" / "TSR4": Tessera shards of uint16 / uint32 tokens.
  1414746674: { dtype: 'uint16', origin: 'tessera' },
  1414746676: { dtype: 'uint32', origin: 'tessera' },
};
const TESSERA_MAGIC: Record<TokenDtype, number> = { uint16: 0x54535232, uint32: 0x54535234 };

function shardHeader(dtype: TokenDtype, tokens: number): Uint8Array {
  const header = new Int32Array(SHARD_HEADER_BYTES / 4);
  header[0] = TESSERA_MAGIC[dtype];
  header[1] = 2;
  header[2] = tokens;
  header[3] = BYTES[dtype];
  return new Uint8Array(header.buffer);
}

/** Writes one shard file (header, then little-endian tokens) through a temporary name, so it is never half there. */
export function writeShardFile(path: string, dtype: TokenDtype, tokens: Uint16Array | Uint32Array): void {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1)
    throw new ShardError('writeShardFile: big-endian hosts are not supported.');
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(
    tmp,
    Buffer.concat([
      shardHeader(dtype, tokens.length),
      new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength),
    ]),
  );
  renameSync(tmp, path);
}

/** Reads and checks one shard file's header: its dtype and token count. */
export function readShardHeader(file: string): { dtype: TokenDtype; tokens: number; version: number; origin: string } {
  const fd = openSync(file, 'r');
  try {
    const bytes = new Uint8Array(SHARD_HEADER_BYTES);
    const got = readSync(fd, bytes, 0, SHARD_HEADER_BYTES, 0);
    const size = fstatSync(fd).size;
    const view = new DataView(bytes.buffer);
    const magic = got >= 12 ? view.getInt32(0, true) : 0;
    const kind = MAGIC[magic];
    if (got < SHARD_HEADER_BYTES)
      throw new ShardError(`${file} is truncated: ${size} bytes, shorter than the 1024-byte shard header; rewrite it.`);
    if (!kind) {
      throw new ShardError(
        `${file} is not a token shard: no known magic number in a 1024-byte header (Tessera "TSR2"/"TSR4", llm.c 20240520 / 20240801).`,
      );
    }
    const tokens = view.getInt32(8, true);
    const want = SHARD_HEADER_BYTES + tokens * BYTES[kind.dtype];
    if (tokens < 0 || size !== want) {
      throw new ShardError(
        `${file} holds ${size} bytes but its header says ${tokens} ${kind.dtype} tokens (${want} bytes with the header); the shard is truncated or damaged — rewrite it.`,
      );
    }
    return { dtype: kind.dtype, tokens, version: view.getInt32(4, true), origin: kind.origin };
  } finally {
    closeSync(fd);
  }
}

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
    version: 2,
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
    writeFileSync(join(o.dir, file), Buffer.concat([shardHeader(dtype, fill), bytes]));
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

/** Windows of a token stream, read on demand. */
export interface TokenWindows {
  readonly length: number;
  /** Tokens at the end that fill no window. */
  readonly dropped: number;
  get(i: number): number[];
}

/**
 * Reads a shard directory with positional reads: nothing is loaded whole, so it works for
 * corpora larger than RAM. A directory with index.json is Tessera's (version 1 raw or 2
 * with headers); without one, every `*.bin` file with an llm.c header is read in name order.
 */
export class TokenShards {
  readonly index: ShardIndex;
  readonly #starts: number[] = [];
  /** Bytes before the first token of each file (the header). */
  readonly #offset: number;
  readonly #fds = new Map<string, number>();

  constructor(readonly dir: string) {
    const indexPath = join(dir, 'index.json');
    if (!existsSync(indexPath)) {
      this.index = TokenShards.#llmcIndex(dir);
      this.#offset = SHARD_HEADER_BYTES;
    } else {
      const idx = JSON.parse(readFileSync(indexPath, 'utf8')) as ShardIndex;
      if (idx.format !== 'tessera-token-shards' || (idx.version !== 1 && idx.version !== 2) || !(idx.dtype in BYTES)) {
        throw new ShardError(`TokenShards: ${indexPath} is not a version-1 or -2 tessera token shard index.`);
      }
      this.#offset = idx.version === 2 ? SHARD_HEADER_BYTES : 0;
      for (const s of idx.shards) {
        const path = join(dir, s.file);
        if (idx.version === 2) {
          const h = readShardHeader(path);
          if (h.tokens !== s.tokens || h.dtype !== idx.dtype)
            throw new ShardError(
              `TokenShards: ${s.file} holds ${h.tokens} ${h.dtype} tokens but the index says ${s.tokens} ${idx.dtype}; rewrite the shards.`,
            );
        } else {
          const size = statSync(path).size;
          const want = s.tokens * BYTES[idx.dtype];
          if (size !== want) {
            throw new ShardError(
              `TokenShards: ${s.file} holds ${size} bytes but the index says ${s.tokens} ${idx.dtype} tokens (${want} bytes); the shard is truncated or damaged — rewrite it.`,
            );
          }
        }
      }
      this.index = idx;
    }
    let at = 0;
    for (const s of this.index.shards) {
      this.#starts.push(at);
      at += s.tokens;
    }
  }

  /** An index for a directory of llm.c shards (e.g. fineweb_train_000001.bin). */
  static #llmcIndex(dir: string): ShardIndex {
    let files: string[];
    try {
      files = readdirSync(dir)
        .filter((f) => f.endsWith('.bin'))
        .sort();
    } catch (err) {
      throw new ShardError(
        `TokenShards: cannot read ${dir} (${(err as Error).message}); run prepare/writeShards first, or point at a directory of llm.c .bin shards.`,
      );
    }
    if (!files.length)
      throw new ShardError(
        `TokenShards: ${dir} has no index.json and no .bin shard files; run prepare/writeShards first.`,
      );
    const shards = files.map((file) => ({ file, ...readShardHeader(join(dir, file)) }));
    const dtype = shards[0]!.dtype;
    const mixed = shards.find((s) => s.dtype !== dtype);
    if (mixed) throw new ShardError(`TokenShards: ${dir} mixes ${dtype} and ${mixed.dtype} shards (${mixed.file}).`);
    return {
      format: 'tessera-token-shards',
      version: 2,
      dtype,
      separator: null,
      shards: shards.map((s) => ({ file: s.file, tokens: s.tokens, documents: 0 })),
      tokens: shards.reduce((n, s) => n + s.tokens, 0),
      documents: 0,
    };
  }

  /** Releases the file handles kept open for reading. */
  close(): void {
    for (const fd of this.#fds.values()) closeSync(fd);
    this.#fds.clear();
  }

  #fd(file: string): number {
    let fd = this.#fds.get(file);
    if (fd === undefined) {
      fd = openSync(join(this.dir, file), 'r');
      this.#fds.set(file, fd);
    }
    return fd;
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
      readSync(this.#fd(info.file), bytes, 0, bytes.length, this.#offset + off * width);
      // Little-endian on disk; writeShards refuses big-endian hosts, so the bytes view as-is.
      out.set(width === 2 ? new Uint16Array(bytes.buffer) : new Uint32Array(bytes.buffer), done);
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
   * Random access to windows of `size` tokens over the whole stream, consecutive windows
   * sharing `overlap` tokens; only the window asked for is read. A tail shorter than a
   * window is not used and is counted in `dropped`.
   */
  windows(size: number, overlap = 0): TokenWindows {
    if (!Number.isInteger(size) || size < 1 || !Number.isInteger(overlap) || overlap < 0 || overlap >= size)
      throw new ShardError(`windows: need an integer size >= 1 and 0 <= overlap < size; got ${size}, ${overlap}.`);
    const stride = size - overlap;
    const length = this.length < size ? 0 : Math.floor((this.length - size) / stride) + 1;
    const used = length ? (length - 1) * stride + size : 0;
    return {
      length,
      dropped: this.length - used,
      get: (i: number) => {
        if (!Number.isInteger(i) || i < 0 || i >= length)
          throw new ShardError(`windows: window ${i} is outside the ${length} windows of ${size} tokens.`);
        return Array.from(this.read(i * stride, size));
      },
    };
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
