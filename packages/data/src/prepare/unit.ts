import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { registry } from '@tessera/tensor-core';
import { TextDataset } from '../datasets/text.js';
import type { StepReport, TextStep } from '../preprocess/steps.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import type { PrepareConfig } from './config.js';
import { exactKey, MinHasher } from './minhash.js';

/** A slice of one input file: the unit of parallel work and of resume. */
export interface Unit {
  id: number;
  file: string;
  /** Byte range of the file; absent when the file is read whole (formats that cannot be split). */
  range?: { start: number; end: number };
  bytes: number;
}

export interface RemovedSample {
  reason: string;
  step: string;
  source: string;
  text: string;
  duplicateOf?: string;
}

/** What a finished unit reports; written last, so its presence marks the unit done. */
export interface UnitReport {
  unit: number;
  file: string;
  bytes: number;
  /** Records read (valid input). */
  records: number;
  /** Bad input skipped, by reason. */
  skipped: Record<string, number>;
  /** Documents that passed every step, in the unit's files. */
  documents: number;
  tokens: number;
  steps: StepReport[];
  samples: RemovedSample[];
}

export const unitName = (id: number) => `u-${String(id).padStart(6, '0')}`;

/** Files of a unit in the work directory. */
export function unitFiles(workDir: string, id: number) {
  const base = join(workDir, unitName(id));
  return {
    docs: `${base}.docs.jsonl`,
    tokens: `${base}.tok`,
    keys: `${base}.keys`,
    report: `${base}.json`,
  };
}

/** Writes through a temporary name and renames: the file is complete or absent. */
export function writeAtomic(path: string, data: string | NodeJS.ArrayBufferView): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

export function keyStride(config: PrepareConfig): number {
  return 2 + 2 * (config.dedup.near === false ? 0 : config.dedup.near.bands);
}

export function createSteps(config: PrepareConfig): TextStep[] {
  return config.steps.map(({ name, ...o }) => registry.preprocess.create(name, o) as TextStep);
}

/**
 * Reads one unit, runs the steps on each document, and writes the survivors' text,
 * tokens and dedup keys, then the report. Nothing is left half-written: every file goes
 * through a temporary name, and the report (the done marker) comes last.
 */
export async function processUnit(
  unit: Unit,
  config: PrepareConfig,
  workDir: string,
  tokenizer: Tokenizer | null,
  onProgress?: (records: number, chars: number) => void,
): Promise<UnitReport> {
  const steps = createSteps(config);
  for (const s of steps) await s.init();
  const dataset = new TextDataset({
    path: unit.file,
    format: config.input.format,
    mode: config.input.mode,
    field: config.input.field,
    onBadInput: 'skip',
    ...(config.input.max_chars !== undefined ? { maxLength: config.input.max_chars } : {}),
    ...(unit.range ? { range: unit.range } : {}),
  });
  const near = config.dedup.near;
  const hasher =
    near === false
      ? null
      : new MinHasher({ bands: near.bands, rows: near.rows, shingleSize: near.shingle_size, seed: near.seed });
  const exact = config.dedup.exact;
  const stride = keyStride(config);
  const samplesPerReason = config.output.removed_samples;
  const sampled = new Map<string, number>();
  const samples: RemovedSample[] = [];
  const docs: string[] = [];
  const keys: Uint32Array[] = [];
  const lengths: number[] = [];
  const tokenChunks: Uint32Array[] = [];
  let tokens = 0;
  let records = 0;
  let chars = 0;
  for await (const record of dataset) {
    records++;
    chars += record.text.length;
    if (onProgress && records % 2000 === 0) {
      onProgress(2000, chars);
      chars = 0;
    }
    let text: string | null = record.text;
    for (const step of steps) {
      const out = step.apply(text);
      if (out === null) {
        const reason = `${step.name}:${step.lastDrop}`;
        const n = sampled.get(reason) ?? 0;
        if (n < samplesPerReason) {
          sampled.set(reason, n + 1);
          samples.push({ reason, step: step.name, source: record.source, text: text });
        }
        text = null;
        break;
      }
      text = out;
    }
    if (text === null) continue;
    const k = new Uint32Array(stride);
    if (exact !== false) exactKey(text, exact.normalize, k, 0);
    if (hasher) hasher.bandKeys(hasher.signature(text), k.subarray(2));
    keys.push(k);
    if (config.output.text) docs.push(`${JSON.stringify({ text, source: record.source })}\n`);
    if (tokenizer) {
      const ids = tokenizer.encode(text, null, { addSpecialTokens: config.output.tokens!.add_special_tokens }).ids;
      tokenChunks.push(Uint32Array.from(ids));
      lengths.push(ids.length);
      tokens += ids.length;
    } else if (!config.output.text) {
      // Neither text nor tokens are written; the source still names the document in reports.
      docs.push(`${JSON.stringify({ source: record.source })}\n`);
    }
  }
  onProgress?.(records % 2000, chars);
  const files = unitFiles(workDir, unit.id);
  writeAtomic(files.docs, docs.join(''));
  const keyBuf = new Uint32Array(keys.length * stride);
  for (const [i, k] of keys.entries()) keyBuf.set(k, i * stride);
  writeAtomic(files.keys, keyBuf);
  if (tokenizer) {
    // [documents, length of each, then every document's tokens], all uint32.
    const tok = new Uint32Array(1 + lengths.length + tokens);
    tok[0] = lengths.length;
    tok.set(lengths, 1);
    let at = 1 + lengths.length;
    for (const c of tokenChunks) {
      tok.set(c, at);
      at += c.length;
    }
    writeAtomic(files.tokens, tok);
  }
  const report: UnitReport = {
    unit: unit.id,
    file: unit.file,
    bytes: unit.bytes,
    records,
    skipped: dataset.report.skipped,
    documents: keys.length,
    tokens,
    steps: steps.map((s) => s.report()),
    samples,
  };
  writeAtomic(files.report, JSON.stringify(report));
  return report;
}
