import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Corpus-wide exact and near dedup over per-unit key files, in memory bounded by one
 * partition: keys are spilled to `partitions` files by hash, and each file is sorted on
 * its own, so equal keys meet without ever holding every key at once. What stays in
 * memory is per document: a verdict byte and, for near dedup, a union-find parent
 * (4 bytes) — 9 bytes a document with `keptAs`.
 */

/** Documents' keys, one unit after another: per document `stride` uint32s (exact key, then band keys). */
export interface KeyUnit {
  file: string;
  documents: number;
}

export interface DedupOptions {
  units: KeyUnit[];
  /** uint32s per document in a key file: 2 (exact) + 2 × bands. */
  stride: number;
  bands: number;
  exact: boolean;
  near: boolean;
  /** Spill files per pass; a pass holds one in memory. */
  partitions: number;
  workDir: string;
}

export const KEEP = 0;
export const EXACT_DUPLICATE = 1;
export const NEAR_DUPLICATE = 2;

export interface DedupResult {
  /** Per document: KEEP, EXACT_DUPLICATE or NEAR_DUPLICATE. */
  verdict: Uint8Array;
  /** Per removed document: the kept document it duplicates (itself when kept). */
  keptAs: Int32Array;
  exactDuplicates: number;
  nearDuplicates: number;
  /** Near-duplicate clusters of two or more documents. */
  clusters: number;
  /** Largest spill partition, in records: the memory bound of a pass. */
  largestPartition: number;
}

const RECORD = 3; // key0, key1, document id

/** Buffered appends of (key0, key1, id) records to one file per partition. */
class Spill {
  readonly files: string[];
  readonly #fds: number[];
  readonly #bufs: Uint32Array[];
  readonly #fill: number[];
  readonly counts: number[];
  constructor(
    dir: string,
    name: string,
    readonly partitions: number,
  ) {
    this.files = Array.from({ length: partitions }, (_, p) => join(dir, `${name}-${String(p).padStart(4, '0')}.bin`));
    this.#fds = this.files.map((f) => openSync(f, 'w'));
    this.#bufs = this.files.map(() => new Uint32Array(RECORD * 4096));
    this.#fill = this.files.map(() => 0);
    this.counts = this.files.map(() => 0);
  }
  push(k0: number, k1: number, id: number): void {
    const p = k0 % this.partitions;
    const buf = this.#bufs[p]!;
    let f = this.#fill[p]!;
    buf[f++] = k0;
    buf[f++] = k1;
    buf[f++] = id;
    this.counts[p]!++;
    if (f === buf.length) {
      writeSync(this.#fds[p]!, buf);
      f = 0;
    }
    this.#fill[p] = f;
  }
  close(): void {
    this.#fds.forEach((fd, p) => {
      const f = this.#fill[p]!;
      if (f) writeSync(fd, this.#bufs[p]!.subarray(0, f));
      closeSync(fd);
    });
  }
  /** Calls `group` with the ids (ascending) of each run of two or more equal keys in partition `p`. */
  groups(p: number, group: (ids: number[]) => void): number {
    const bytes = readFileSync(this.files[p]!);
    const rec = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    const n = rec.length / RECORD;
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    // Records were appended in id order, and the sort is stable, so ties stay in id order.
    const sorted = Array.from(order).sort(
      (a, b) => rec[a * RECORD]! - rec[b * RECORD]! || rec[a * RECORD + 1]! - rec[b * RECORD + 1]!,
    );
    for (let i = 0; i < n; ) {
      const a = sorted[i]!;
      let j = i + 1;
      while (
        j < n &&
        rec[sorted[j]! * RECORD] === rec[a * RECORD] &&
        rec[sorted[j]! * RECORD + 1] === rec[a * RECORD + 1]
      )
        j++;
      if (j - i > 1) group(sorted.slice(i, j).map((r) => rec[r * RECORD + 2]!));
      i = j;
    }
    rmSync(this.files[p]!);
    return n;
  }
}

function* documentKeys(units: KeyUnit[], stride: number): Generator<{ id: number; keys: Uint32Array }> {
  let id = 0;
  for (const u of units) {
    const bytes = readFileSync(u.file);
    const keys = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    if (keys.length !== u.documents * stride)
      throw new Error(`dedup: ${u.file} holds ${keys.length / stride} documents' keys, expected ${u.documents}.`);
    for (let d = 0; d < u.documents; d++, id++) yield { id, keys: keys.subarray(d * stride, (d + 1) * stride) };
  }
}

export function dedupCorpus(o: DedupOptions): DedupResult {
  const total = o.units.reduce((n, u) => n + u.documents, 0);
  const verdict = new Uint8Array(total);
  const keptAs = Int32Array.from({ length: total }, (_, i) => i);
  let largestPartition = 0;
  let exactDuplicates = 0;
  if (o.exact) {
    const spill = new Spill(o.workDir, 'exact', o.partitions);
    for (const { id, keys } of documentKeys(o.units, o.stride)) spill.push(keys[0]!, keys[1]!, id);
    spill.close();
    for (let p = 0; p < o.partitions; p++) {
      const n = spill.groups(p, (ids) => {
        // The first copy in corpus order stays.
        for (let i = 1; i < ids.length; i++) {
          verdict[ids[i]!] = EXACT_DUPLICATE;
          keptAs[ids[i]!] = ids[0]!;
          exactDuplicates++;
        }
      });
      largestPartition = Math.max(largestPartition, n);
    }
  }
  let nearDuplicates = 0;
  let clusters = 0;
  if (o.near) {
    const parent = Int32Array.from({ length: total }, (_, i) => i);
    const find = (x: number): number => {
      while (parent[x] !== x) {
        parent[x] = parent[parent[x]!]!;
        x = parent[x]!;
      }
      return x;
    };
    const spill = new Spill(o.workDir, 'bands', o.partitions);
    for (const { id, keys } of documentKeys(o.units, o.stride)) {
      // An exact duplicate goes with its twin; its band keys would add nothing.
      if (verdict[id] !== KEEP) continue;
      for (let b = 0; b < o.bands; b++) spill.push(keys[2 + 2 * b]!, keys[3 + 2 * b]!, id);
    }
    spill.close();
    for (let p = 0; p < o.partitions; p++) {
      const n = spill.groups(p, (ids) => {
        for (let i = 1; i < ids.length; i++) {
          const a = find(ids[0]!);
          const b = find(ids[i]!);
          // The root is the cluster's first document in corpus order: that one is kept.
          if (a < b) parent[b] = a;
          else if (b < a) parent[a] = b;
        }
      });
      largestPartition = Math.max(largestPartition, n);
    }
    const sizes = new Map<number, number>();
    for (let i = 0; i < total; i++) {
      if (verdict[i] !== KEEP) continue;
      const r = find(i);
      if (r !== i) {
        verdict[i] = NEAR_DUPLICATE;
        keptAs[i] = r;
        nearDuplicates++;
        sizes.set(r, (sizes.get(r) ?? 1) + 1);
      }
    }
    clusters = sizes.size;
  }
  return { verdict, keptAs, exactDuplicates, nearDuplicates, clusters, largestPartition };
}
