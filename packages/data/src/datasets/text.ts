import { createReadStream, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Rng, TesseraError } from '@tessera/tensor-core';

export class DatasetError extends TesseraError {}

/** What to do with a bad record: stop with an error, or skip it and count it in the report. */
export type BadInputPolicy = 'error' | 'skip';

export interface DatasetReport {
  files: number;
  records: number;
  skipped: Record<string, number>;
}

export interface TextDatasetOptions {
  /** A file or a directory (read recursively, files sorted by path). */
  path: string;
  format?: 'text' | 'jsonl' | 'csv' | 'tsv';
  /** text: one record per line, or per blank-line-separated document. Default line. */
  mode?: 'line' | 'document';
  /** jsonl/csv/tsv: the field holding the text (csv/tsv: a header name). Default "text". */
  field?: string;
  /** jsonl/csv/tsv: the field holding a label (kept as `label`). */
  labelField?: string;
  /** Records longer than this many characters are bad input. */
  maxLength?: number;
  onBadInput?: BadInputPolicy;
  /** Only files whose name ends with one of these, in directory mode. */
  extensions?: string[];
  /**
   * Read only the lines that start in bytes [start, end) of `path` (a file, line-based
   * formats: text in line mode, jsonl). Sources then read `file@byte`.
   */
  range?: { start: number; end: number };
}

export interface TextRecord {
  text: string;
  label?: string;
  /** file:line where the record starts. */
  source: string;
}

/**
 * Splits a byte stream into lines, decoding each strictly so invalid UTF-8 is caught per line.
 * With a range, yields exactly the lines that start at a byte in [start, end): ranges that
 * tile a file read every line once. `at` is the byte offset where the line starts.
 */
async function* byteLines(
  file: string,
  range?: { start: number; end: number },
): AsyncGenerator<{ line: string | null; n: number; at: number }> {
  const dec = new TextDecoder('utf-8', { fatal: true });
  let rest = Buffer.alloc(0);
  let n = 0;
  const decode = (b: Buffer): string | null => {
    try {
      return dec.decode(b);
    } catch {
      return null;
    }
  };
  const from = range && range.start > 0 ? range.start - 1 : 0;
  const end = range?.end ?? Number.POSITIVE_INFINITY;
  // Reading from start - 1 tells whether a line begins at `start` or the range opens mid-line.
  let skipping = range !== undefined && range.start > 0;
  let at = from;
  for await (const chunk of createReadStream(file, { start: from })) {
    let buf = rest.length ? Buffer.concat([rest, chunk as Buffer]) : (chunk as Buffer);
    let nl = buf.indexOf(10);
    while (nl >= 0) {
      if (skipping) skipping = false;
      else {
        if (at >= end) return;
        const raw = buf.subarray(0, nl);
        n++;
        yield { line: decode(raw[raw.length - 1] === 13 ? raw.subarray(0, -1) : raw), n, at };
      }
      at += nl + 1;
      buf = buf.subarray(nl + 1);
      nl = buf.indexOf(10);
    }
    if (!skipping && at >= end) return;
    rest = Buffer.from(buf);
  }
  if (rest.length && !skipping && at < end) yield { line: decode(rest), n: n + 1, at };
}

/** The files a dataset path names: the file itself, or every file under the directory, sorted by path. */
export function filesUnder(path: string, extensions?: string[]): string[] {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    throw new DatasetError(`dataset: ${path} does not exist; check the path in the config.`);
  }
  if (st.isFile()) return [path];
  const out: string[] = [];
  for (const e of readdirSync(path, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = join(path, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p, extensions));
    else if (!extensions || extensions.some((x) => e.name.endsWith(x))) out.push(p);
  }
  return out;
}

/** Splits one CSV/TSV line (quotes with doubled-quote escapes; no newlines inside fields). */
function splitDelimited(line: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"' && cur === '') quoted = true;
    else if (c === sep) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/**
 * A streaming text dataset over a file or directory. Iterate it for records; `report`
 * counts files, records and every skipped record by reason, so nothing is lost silently.
 */
export class TextDataset implements AsyncIterable<TextRecord> {
  readonly report: DatasetReport = { files: 0, records: 0, skipped: {} };
  constructor(readonly o: TextDatasetOptions) {}

  #bad(reason: string, where: string): void {
    if ((this.o.onBadInput ?? 'error') === 'error') {
      throw new DatasetError(
        `dataset: ${reason} at ${where}. Fix the input, or set onBadInput: "skip" to skip and count such records.`,
      );
    }
    this.report.skipped[reason] = (this.report.skipped[reason] ?? 0) + 1;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<TextRecord> {
    const format = this.o.format ?? 'text';
    const range = this.o.range;
    if (range && !(format === 'jsonl' || (format === 'text' && (this.o.mode ?? 'line') === 'line')))
      throw new DatasetError(
        `dataset: a byte range splits line-based files only (jsonl, or text in line mode); ${format} files are read whole.`,
      );
    const files = filesUnder(this.o.path, this.o.extensions);
    if (range && files.length !== 1)
      throw new DatasetError(`dataset: a byte range applies to one file; ${this.o.path} is a directory.`);
    for (const file of files) {
      this.report.files++;
      let header: string[] | null = null;
      let doc: string[] = [];
      let docStart = 0;
      let empty = true;
      const emit = (r: TextRecord): TextRecord | null => {
        if (this.o.maxLength !== undefined && r.text.length > this.o.maxLength) {
          this.#bad(`record longer than maxLength ${this.o.maxLength}`, r.source);
          return null;
        }
        this.report.records++;
        return r;
      };
      for await (const { line, n, at } of byteLines(file, range)) {
        empty = false;
        const where = range ? `${file}@${at}` : `${file}:${n}`;
        if (line === null) {
          this.#bad('invalid UTF-8', where);
          continue;
        }
        if (format === 'text') {
          if ((this.o.mode ?? 'line') === 'line') {
            if (line.trim() === '') continue;
            const r = emit({ text: line, source: where });
            if (r) yield r;
          } else if (line.trim() === '') {
            if (doc.length) {
              const r = emit({ text: doc.join('\n'), source: `${file}:${docStart}` });
              if (r) yield r;
            }
            doc = [];
          } else {
            if (!doc.length) docStart = n;
            doc.push(line);
          }
          continue;
        }
        if (line.trim() === '') continue;
        let obj: Record<string, unknown>;
        if (format === 'jsonl') {
          try {
            obj = JSON.parse(line) as Record<string, unknown>;
          } catch {
            this.#bad('invalid JSON', where);
            continue;
          }
        } else {
          const cells = splitDelimited(line, format === 'csv' ? ',' : '\t');
          if (!header) {
            header = cells;
            continue;
          }
          if (cells.length !== header.length) {
            this.#bad(`row has ${cells.length} fields, header has ${header.length}`, where);
            continue;
          }
          obj = Object.fromEntries(header.map((h, i) => [h, cells[i]]));
        }
        const field = this.o.field ?? 'text';
        const text = obj[field];
        if (typeof text !== 'string') {
          this.#bad(`missing text field "${field}"`, where);
          continue;
        }
        const rec: TextRecord = { text, source: where };
        if (this.o.labelField) {
          const label = obj[this.o.labelField];
          if (label === undefined || label === null || label === '') {
            this.#bad(`missing label field "${this.o.labelField}"`, where);
            continue;
          }
          rec.label = String(label);
        }
        const r = emit(rec);
        if (r) yield r;
      }
      if (doc.length) {
        const r = emit({ text: doc.join('\n'), source: `${file}:${docStart}` });
        if (r) yield r;
      }
      // A range past the first may hold no line start at all (a long line spans it); only
      // the range at byte 0 can tell that the file is empty.
      if (empty && (!range || range.start === 0)) this.#bad('empty file', file);
    }
  }
}

/** Shuffles a stream with a fixed-size buffer (seeded): memory stays at `bufferSize` items. */
export async function* bufferedShuffle<T>(
  items: Iterable<T> | AsyncIterable<T>,
  bufferSize: number,
  seed: number,
): AsyncGenerator<T> {
  if (!Number.isInteger(bufferSize) || bufferSize < 1)
    throw new DatasetError(`bufferedShuffle: bufferSize must be a positive integer; got ${bufferSize}.`);
  const rng = new Rng(seed);
  const buf: T[] = [];
  for await (const x of items as AsyncIterable<T>) {
    if (buf.length < bufferSize) {
      buf.push(x);
      continue;
    }
    const i = rng.int(bufferSize);
    yield buf[i]!;
    buf[i] = x;
  }
  rng.shuffle(buf);
  yield* buf;
}

/** Every `worldSize`-th item starting at `rank`: disjoint shares for parallel workers. */
export async function* shardStream<T>(
  items: Iterable<T> | AsyncIterable<T>,
  rank: number,
  worldSize: number,
): AsyncGenerator<T> {
  if (!(Number.isInteger(rank) && Number.isInteger(worldSize) && rank >= 0 && rank < worldSize)) {
    throw new DatasetError(`shardStream: need 0 <= rank < worldSize; got rank ${rank}, worldSize ${worldSize}.`);
  }
  let i = 0;
  for await (const x of items as AsyncIterable<T>) if (i++ % worldSize === rank) yield x;
}

/**
 * Train/validation membership by a seeded hash of the item's position, so a stream splits
 * the same way every time without being held in memory.
 */
export function isValidation(index: number, fraction: number, seed: number): boolean {
  if (!(fraction >= 0 && fraction <= 1))
    throw new DatasetError(`validation fraction must be in [0, 1]; got ${fraction}.`);
  let h = (Math.imul(index ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(seed + 1, 0xc2b2ae35)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0 < fraction * 4294967296;
}

export async function* splitStream<T>(
  items: Iterable<T> | AsyncIterable<T>,
  part: 'train' | 'validation',
  fraction: number,
  seed: number,
): AsyncGenerator<T> {
  let i = 0;
  for await (const x of items as AsyncIterable<T>)
    if (isValidation(i++, fraction, seed) === (part === 'validation')) yield x;
}

/** Concatenates token sequences with a separator and cuts them into blocks of exactly `blockSize`. */
export async function* packBlocks(
  seqs: Iterable<ArrayLike<number>> | AsyncIterable<ArrayLike<number>>,
  blockSize: number,
  separator: number | null,
): AsyncGenerator<number[]> {
  if (!Number.isInteger(blockSize) || blockSize < 1)
    throw new DatasetError(`packBlocks: blockSize must be a positive integer; got ${blockSize}.`);
  let cur: number[] = [];
  for await (const s of seqs as AsyncIterable<ArrayLike<number>>) {
    for (let i = 0; i < s.length; i++) {
      cur.push(s[i]!);
      if (cur.length === blockSize) {
        yield cur;
        cur = [];
      }
    }
    if (separator !== null) {
      cur.push(separator);
      if (cur.length === blockSize) {
        yield cur;
        cur = [];
      }
    }
  }
}
