import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  type ConfigProblem,
  ConfigError,
  loadConfig,
  problemsFromIssues,
  registry,
  resolveConfig,
  TesseraError,
  z,
} from '@tessera/tensor-core';
import { type ShardIndex, type TokenDtype, writeShardFile } from '../datasets/shards.js';
import { filesUnder } from '../datasets/text.js';
import type { StepReport } from '../preprocess/steps.js';
import { Tokenizer } from '../tokenizers/tokenizer.js';
import { type PrepareConfig, type PrepareConfigInput, prepareConfigSchema } from './config.js';
import { dedupCorpus, EXACT_DUPLICATE, KEEP } from './dedup.js';
import { keyStride, type RemovedSample, type Unit, type UnitReport, unitFiles, writeAtomic } from './unit.js';

export class PrepareError extends TesseraError {}

export interface PrepareProgress {
  phase: 'read' | 'dedup' | 'write' | 'done';
  units: number;
  unitsDone: number;
  /** Records read so far in this run (units finished earlier are not re-read). */
  records: number;
  /** Input bytes of the units finished in this run, plus characters read in those under way. */
  bytes: number;
  inputBytes: number;
  seconds: number;
}

export interface PrepareOptions {
  log?: (line: string) => void;
  onProgress?: (p: PrepareProgress) => void;
  /** Called after each unit's files are complete (before the next is counted). */
  onUnitDone?: (report: UnitReport) => void;
  /** Overrides config.workers. */
  workers?: number;
}

export interface PrepareReport {
  input: { files: number; units: number; bytes: number; records: number };
  /** Bad input skipped, per file, by reason. */
  skipped: Record<string, Record<string, number>>;
  steps: StepReport[];
  dedup: { exactDuplicates: number; nearDuplicates: number; clusters: number; largestPartition: number };
  output: { documents: number; tokens: number; textFiles: number; shards: number; dtype: TokenDtype | null };
  /** Units processed in this run (the rest were done by an earlier, interrupted run). */
  unitsThisRun: number;
  seconds: { read: number; dedup: number; write: number; total: number };
  workers: number;
}

/** Loads a prepare config (YAML/JSON, `extends:` and `--set` overrides), paths resolved against its directory. */
export function loadPrepareConfig(file: string, overrides: readonly string[] = []): PrepareConfig {
  const doc = loadConfig(file, { schema: z.record(z.string(), z.unknown()), overrides });
  return checkPrepareConfig(doc, file, dirname(resolve(file)));
}

/** The same for a document in memory; relative paths resolve against `base`. */
export function prepareConfigFrom(document: PrepareConfigInput | string, base: string): PrepareConfig {
  const doc = resolveConfig(document, { schema: z.record(z.string(), z.unknown()) });
  return checkPrepareConfig(doc, '(inline config)', base);
}

/** True when a config document is a prepare pipeline rather than a run config. */
export function isPrepareDocument(doc: unknown): boolean {
  return typeof doc === 'object' && doc !== null && 'input' in doc && 'output' in doc && !('model' in doc);
}

function checkPrepareConfig(doc: Record<string, unknown>, source: string, base: string): PrepareConfig {
  const parsed = prepareConfigSchema.safeParse(doc);
  const problems: ConfigProblem[] = parsed.success ? [] : problemsFromIssues(parsed.error.issues, doc);
  if (!parsed.success) throw new ConfigError(source, problems);
  const c = parsed.data;
  const at = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  c.input.path = at(c.input.path);
  c.output.dir = at(c.output.dir);
  if (c.output.tokens) c.output.tokens.tokenizer = at(c.output.tokens.tokenizer);
  return c;
}

/** Everything that can be checked before the first byte is read: every problem at once. */
async function validate(c: PrepareConfig, source: string): Promise<Tokenizer | null> {
  await registry.loadPlugins(c.plugins);
  const problems: ConfigProblem[] = [];
  c.steps.forEach(({ name, ...options }, i) => {
    if (!registry.preprocess.has(name)) {
      problems.push({
        path: `steps[${i}].name`,
        found: name,
        expected: `a registered text step: ${registry.preprocess.list().join(', ')}`,
      });
      return;
    }
    const meta = registry.preprocess.get(name).meta;
    if (meta.corpusWide)
      problems.push({
        path: `steps[${i}].name`,
        found: name,
        expected: `a per-document step; "${name}" dedups within one process, and prepare dedups the whole corpus: use the dedup block`,
      });
    const schema = meta.options as z.ZodType | undefined;
    const r = schema?.safeParse(options);
    if (r && !r.success) problems.push(...problemsFromIssues(r.error.issues, options, ['steps', i]));
  });
  if (!existsSync(c.input.path))
    problems.push({ path: 'input.path', found: c.input.path, expected: 'an existing file or directory' });
  if (!c.output.text && !c.output.tokens)
    problems.push({
      path: 'output',
      found: { text: false },
      expected: 'something to write: text: true and/or a tokens block',
    });
  let tokenizer: Tokenizer | null = null;
  const t = c.output.tokens;
  if (t) {
    if (!existsSync(t.tokenizer))
      problems.push({ path: 'output.tokens.tokenizer', found: t.tokenizer, expected: 'an existing tokenizer.json' });
    else {
      try {
        tokenizer = Tokenizer.fromJSON(readFileSync(t.tokenizer, 'utf8'));
      } catch (err) {
        problems.push({
          path: 'output.tokens.tokenizer',
          found: t.tokenizer,
          expected: `a loadable tokenizer.json (${(err as Error).message})`,
        });
      }
      if (tokenizer && typeof t.separator === 'string' && tokenizer.tokenToId(t.separator) === undefined)
        problems.push({
          path: 'output.tokens.separator',
          found: t.separator,
          expected: 'a token of the tokenizer, e.g. "<|endoftext|>", or its id',
        });
      if (tokenizer && t.dtype === 'uint16' && tokenizer.getVocabSize() > 65536)
        problems.push({
          path: 'output.tokens.dtype',
          found: 'uint16',
          expected: `uint32 or auto: the vocabulary has ${tokenizer.getVocabSize()} tokens`,
        });
    }
  }
  if (problems.length) throw new ConfigError(source, problems);
  return tokenizer;
}

/** Cuts the input into units: line-based files into byte ranges of about unit_mb, others whole. */
function planUnits(c: PrepareConfig): Unit[] {
  const splittable = c.input.format === 'jsonl' || (c.input.format === 'text' && c.input.mode === 'line');
  const unitBytes = Math.max(1, Math.round(c.unit_mb * 1024 * 1024));
  const units: Unit[] = [];
  for (const file of filesUnder(c.input.path, c.input.extensions)) {
    const size = statSync(file).size;
    if (!splittable || size <= unitBytes) {
      units.push({ id: units.length, file, bytes: size, ...(splittable ? { range: { start: 0, end: size } } : {}) });
      continue;
    }
    for (let start = 0; start < size; start += unitBytes) {
      const end = Math.min(size, start + unitBytes);
      units.push({ id: units.length, file, bytes: end - start, range: { start, end } });
    }
  }
  return units;
}

/** What a resumed run must agree on with the interrupted one: everything that shapes the output. */
function fingerprint(c: PrepareConfig, units: Unit[]): string {
  const { workers: _w, ...shape } = c;
  const files = [...new Set(units.map((u) => u.file))].map((f) => {
    const st = statSync(f);
    return [f, st.size, st.mtimeMs];
  });
  return createHash('sha256').update(JSON.stringify({ shape, files })).digest('hex').slice(0, 16);
}

function mergeReports(reports: StepReport[][]): StepReport[] {
  const out: StepReport[] = [];
  for (const list of reports) {
    list.forEach((r, i) => {
      const m = (out[i] ??= { step: r.step, seen: 0, changed: 0, removed: 0, reasons: {} });
      m.seen += r.seen;
      m.changed += r.changed;
      m.removed += r.removed;
      for (const [k, v] of Object.entries(r.reasons)) m.reasons[k] = (m.reasons[k] ?? 0) + v;
      for (const [k, v] of Object.entries(r.details ?? {})) (m.details ??= {})[k] = (m.details[k] ?? 0) + v;
    });
  }
  return out;
}

/** Runs the units not yet done on a pool of worker threads, in any order; reports come back per unit. */
async function runUnits(
  pending: Unit[],
  c: PrepareConfig,
  workDir: string,
  workers: number,
  onReport: (r: UnitReport) => void,
  onProgress: (records: number, chars: number) => void,
): Promise<void> {
  if (!pending.length) return;
  const url = new URL('./prepare/worker.js', import.meta.url);
  const pool = Array.from(
    { length: Math.min(workers, pending.length) },
    () => new Worker(url, { workerData: { config: c, workDir } }),
  );
  let next = 0;
  let failed: Error | null = null;
  try {
    await Promise.all(
      pool.map(
        (w) =>
          new Promise<void>((done, fail) => {
            const send = () => {
              if (failed || next >= pending.length) return done();
              w.postMessage(pending[next++]);
            };
            w.on(
              'message',
              (m: {
                ready?: true;
                report?: UnitReport;
                progress?: { records: number; chars: number };
                error?: string;
              }) => {
                if (m.error) {
                  failed = new PrepareError(`data prepare: ${m.error}`);
                  return fail(failed);
                }
                if (m.progress) return onProgress(m.progress.records, m.progress.chars);
                if (m.report) {
                  try {
                    onReport(m.report);
                  } catch (err) {
                    failed = err as Error;
                    return fail(err);
                  }
                }
                send();
              },
            );
            w.once('error', (err) => {
              failed = err;
              fail(err);
            });
            w.once('exit', (code) => {
              if (code !== 0 && !failed) fail(new PrepareError(`data prepare: a worker exited with code ${code}.`));
            });
          }),
      ),
    );
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
}

/**
 * `tessera data prepare`: reads the corpus in parallel units, runs the steps, dedups the
 * whole corpus (exact, then MinHash LSH), and writes the survivors. Resumable: a unit,
 * the dedup verdicts and each output file are complete or absent, so a rerun after a
 * crash starts at the first unfinished unit and rewrites nothing that is done.
 */
export async function prepareCorpus(
  c: PrepareConfig,
  options: PrepareOptions = {},
  source = '(config)',
): Promise<PrepareReport> {
  const log = options.log ?? ((l: string) => console.log(l));
  const t0 = performance.now();
  const tokenizer = await validate(c, source);
  const units = planUnits(c);
  if (!units.length) throw new PrepareError(`data prepare: no input files under ${c.input.path}.`);
  const out = c.output.dir;
  const workDir = join(out, '.work');
  mkdirSync(workDir, { recursive: true });
  const planFile = join(workDir, 'plan.json');
  const fp = fingerprint(c, units);
  if (existsSync(planFile)) {
    const plan = JSON.parse(readFileSync(planFile, 'utf8')) as { fingerprint: string };
    if (plan.fingerprint !== fp)
      throw new PrepareError(
        `data prepare: ${out} holds an unfinished run of a different config or input (delete ${workDir} to start over, or choose another output.dir).`,
      );
  } else if (readdirSync(out).some((f) => f !== '.work'))
    throw new PrepareError(`data prepare: ${out} already holds files; choose an empty or new output.dir.`);
  writeAtomic(planFile, JSON.stringify({ fingerprint: fp, units }, null, 1));
  // Leftovers of a killed run: temporary files are never complete, so they go.
  for (const dir of [workDir, out])
    for (const f of readdirSync(dir)) if (f.includes('.tmp-')) rmSync(join(dir, f), { force: true });

  const workers = options.workers ?? c.workers;
  const inputBytes = units.reduce((n, u) => n + u.bytes, 0);
  const reports = new Map<number, UnitReport>();
  for (const u of units) {
    const f = unitFiles(workDir, u.id).report;
    if (existsSync(f)) reports.set(u.id, JSON.parse(readFileSync(f, 'utf8')) as UnitReport);
  }
  const pending = units.filter((u) => !reports.has(u.id));
  if (reports.size) log(`resuming: ${reports.size} of ${units.length} units were done by an earlier run`);
  let records = 0;
  let bytesDone = 0;
  let charsInFlight = 0;
  const progress = (phase: PrepareProgress['phase']) =>
    options.onProgress?.({
      phase,
      units: units.length,
      unitsDone: reports.size,
      records,
      bytes: bytesDone + charsInFlight,
      inputBytes,
      seconds: (performance.now() - t0) / 1000,
    });
  progress('read');
  await runUnits(
    pending,
    c,
    workDir,
    workers,
    (r) => {
      reports.set(r.unit, r);
      bytesDone += r.bytes;
      charsInFlight = 0;
      options.onUnitDone?.(r);
      progress('read');
    },
    (n, chars) => {
      records += n;
      charsInFlight += chars;
      progress('read');
    },
  );
  const tRead = performance.now();

  progress('dedup');
  const ordered = units.map((u) => reports.get(u.id)!);
  const total = ordered.reduce((n, r) => n + r.documents, 0);
  const verdictFile = join(workDir, 'dedup.bin');
  let verdict: Uint8Array;
  let keptAs: Int32Array;
  let dedupStats: PrepareReport['dedup'];
  if (existsSync(verdictFile)) {
    const bytes = readFileSync(verdictFile);
    const stats = JSON.parse(readFileSync(`${verdictFile}.json`, 'utf8')) as PrepareReport['dedup'];
    verdict = new Uint8Array(bytes.buffer, bytes.byteOffset, total);
    keptAs = new Int32Array(bytes.buffer.slice(bytes.byteOffset + total, bytes.byteOffset + total + 4 * total));
    dedupStats = stats;
  } else {
    const spillDir = join(workDir, 'spill');
    mkdirSync(spillDir, { recursive: true });
    const near = c.dedup.near;
    const r = dedupCorpus({
      units: ordered.map((u) => ({ file: unitFiles(workDir, u.unit).keys, documents: u.documents })),
      stride: keyStride(c),
      bands: near === false ? 0 : near.bands,
      exact: c.dedup.exact !== false,
      near: near !== false,
      partitions: c.dedup.partitions,
      workDir: spillDir,
    });
    rmSync(spillDir, { recursive: true, force: true });
    verdict = r.verdict;
    keptAs = r.keptAs;
    dedupStats = {
      exactDuplicates: r.exactDuplicates,
      nearDuplicates: r.nearDuplicates,
      clusters: r.clusters,
      largestPartition: r.largestPartition,
    };
    // The stats first: the verdict file is the done marker, and it must find them.
    writeAtomic(`${verdictFile}.json`, JSON.stringify(dedupStats));
    const buf = Buffer.alloc(total * 5);
    buf.set(verdict, 0);
    buf.set(new Uint8Array(keptAs.buffer, keptAs.byteOffset, keptAs.byteLength), total);
    writeAtomic(verdictFile, buf);
  }
  const tDedup = performance.now();

  progress('write');
  const tokensBlock = c.output.tokens;
  const dtype: TokenDtype | null = tokensBlock
    ? tokensBlock.dtype === 'auto'
      ? tokenizer!.getVocabSize() <= 65536
        ? 'uint16'
        : 'uint32'
      : tokensBlock.dtype
    : null;
  const separator =
    tokensBlock?.separator === null || tokensBlock === undefined
      ? null
      : typeof tokensBlock.separator === 'number'
        ? tokensBlock.separator
        : tokenizer!.tokenToId(tokensBlock.separator)!;
  const index: ShardIndex = {
    format: 'tessera-token-shards',
    version: 2,
    dtype: dtype ?? 'uint16',
    separator,
    shards: [],
    tokens: 0,
    documents: 0,
  };
  const removedDir = join(out, 'removed');
  const samples = new Map<string, RemovedSample[]>();
  const addSample = (s: RemovedSample) => {
    const list = samples.get(s.reason) ?? [];
    if (list.length < c.output.removed_samples) list.push(s);
    samples.set(s.reason, list);
  };
  for (const r of ordered) for (const s of r.samples) addSample(s);
  // Sources of kept documents that near/exact duplicates point at, for the samples.
  let kept = 0;
  let textFiles = 0;
  let first = 0;
  const sourceOf = new Map<number, string>();
  const wanted = new Set<number>();
  for (let i = 0; i < total; i++) if (verdict[i] !== KEEP) wanted.add(keptAs[i]!);
  for (const r of ordered) {
    const files = unitFiles(workDir, r.unit);
    const name = String(r.unit).padStart(6, '0');
    const lines = r.documents ? readFileSync(files.docs, 'utf8').split('\n') : [];
    const keep = (d: number) => verdict[first + d] === KEEP;
    for (let d = 0; d < r.documents; d++) {
      const id = first + d;
      if (wanted.has(id)) sourceOf.set(id, (JSON.parse(lines[d]!) as { source: string }).source);
      const v = verdict[id]!;
      if (v !== KEEP) {
        const reason = v === EXACT_DUPLICATE ? 'dedup:exact-duplicate' : 'dedup:near-duplicate';
        if ((samples.get(reason)?.length ?? 0) < c.output.removed_samples) {
          const doc = JSON.parse(lines[d]!) as { text?: string; source: string };
          addSample({
            reason,
            step: 'dedup',
            source: doc.source,
            text: doc.text ?? '',
            duplicateOf: String(keptAs[id]),
          });
        }
      }
    }
    let keptHere = 0;
    for (let d = 0; d < r.documents; d++) if (keep(d)) keptHere++;
    kept += keptHere;
    if (c.output.text && keptHere) {
      const path = join(out, `data-${name}.jsonl`);
      if (!existsSync(path)) {
        const body: string[] = [];
        for (let d = 0; d < r.documents; d++)
          if (keep(d)) body.push(`${JSON.stringify({ text: (JSON.parse(lines[d]!) as { text: string }).text })}\n`);
        writeAtomic(path, body.join(''));
      }
      textFiles++;
    }
    if (dtype && keptHere) {
      const tok = (() => {
        const b = readFileSync(files.tokens);
        return new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4);
      })();
      const docs = tok[0]!;
      const lengths = tok.subarray(1, 1 + docs);
      let count = 0;
      for (let d = 0; d < docs; d++) if (keep(d)) count += lengths[d]! + (separator === null ? 0 : 1);
      const file = `shard-${name}.bin`;
      const path = join(out, file);
      if (!existsSync(path)) {
        const shard = dtype === 'uint16' ? new Uint16Array(count) : new Uint32Array(count);
        let at = 0;
        let from = 1 + docs;
        for (let d = 0; d < docs; d++) {
          const len = lengths[d]!;
          if (keep(d)) {
            shard.set(tok.subarray(from, from + len), at);
            at += len;
            if (separator !== null) shard[at++] = separator;
          }
          from += len;
        }
        writeShardFile(path, dtype, shard);
      }
      index.shards.push({ file, tokens: count, documents: keptHere });
      index.tokens += count;
      index.documents += keptHere;
    }
    first += r.documents;
    progress('write');
  }
  if (dtype) writeAtomic(join(out, 'index.json'), `${JSON.stringify(index, null, 2)}\n`);
  rmSync(removedDir, { recursive: true, force: true });
  if (samples.size) mkdirSync(removedDir, { recursive: true });
  for (const [reason, list] of samples) {
    const file = join(removedDir, `${reason.replace(/[^\w.-]+/g, '_')}.jsonl`);
    for (const s of list) {
      const dup = s.duplicateOf === undefined ? {} : { duplicate_of: sourceOf.get(Number(s.duplicateOf)) };
      appendFileSync(file, `${JSON.stringify({ reason: s.reason, source: s.source, ...dup, text: s.text })}\n`);
    }
  }
  const tEnd = performance.now();
  const skipped: PrepareReport['skipped'] = {};
  for (const r of ordered) {
    for (const [k, v] of Object.entries(r.skipped)) {
      const f = (skipped[r.file] ??= {});
      f[k] = (f[k] ?? 0) + v;
    }
  }
  const report: PrepareReport = {
    input: {
      files: new Set(units.map((u) => u.file)).size,
      units: units.length,
      bytes: inputBytes,
      records: ordered.reduce((n, r) => n + r.records, 0),
    },
    skipped,
    steps: mergeReports(ordered.map((r) => r.steps)),
    dedup: dedupStats,
    output: { documents: kept, tokens: index.tokens, textFiles, shards: index.shards.length, dtype },
    unitsThisRun: pending.length,
    seconds: {
      read: (tRead - t0) / 1000,
      dedup: (tDedup - tRead) / 1000,
      write: (tEnd - tDedup) / 1000,
      total: (tEnd - t0) / 1000,
    },
    workers,
  };
  writeAtomic(join(out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  progress('done');
  for (const line of describeReport(report)) log(line);
  return report;
}

/** The report as lines a person reads: what came in, what each step removed and why, what went out. */
export function describeReport(r: PrepareReport): string[] {
  const mb = (b: number) => `${(b / 1048576).toFixed(1)} MB`;
  const lines = [
    `input: ${r.input.files} files, ${mb(r.input.bytes)}, ${r.input.records.toLocaleString('en-US')} records in ${r.input.units} units (${r.unitsThisRun} read in this run, ${r.workers} workers)`,
  ];
  const bad = Object.entries(r.skipped);
  if (bad.length) {
    lines.push(`bad input skipped in ${bad.length} file${bad.length === 1 ? '' : 's'}:`);
    for (const [file, reasons] of bad)
      lines.push(
        `  ${file}: ${Object.entries(reasons)
          .map(([k, v]) => `${v} ${k}`)
          .join(', ')}`,
      );
  } else lines.push('bad input: none');
  for (const s of r.steps) {
    const why = Object.entries(s.reasons)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${v} ${k}`)
      .join(', ');
    const details = s.details
      ? `; ${Object.entries(s.details)
          .map(([k, v]) => `${v} ${k}`)
          .join(', ')}`
      : '';
    lines.push(
      `${s.step}: ${s.seen} seen, ${s.removed} removed${why ? ` (${why})` : ''}, ${s.changed} rewritten${details}`,
    );
  }
  lines.push(
    `dedup: ${r.dedup.exactDuplicates} exact duplicates, ${r.dedup.nearDuplicates} near duplicates in ${r.dedup.clusters} clusters`,
  );
  lines.push(
    `output: ${r.output.documents.toLocaleString('en-US')} documents` +
      (r.output.textFiles ? `, ${r.output.textFiles} JSONL files` : '') +
      (r.output.dtype
        ? `, ${r.output.tokens.toLocaleString('en-US')} ${r.output.dtype} tokens in ${r.output.shards} shards`
        : ''),
  );
  const rate = r.input.bytes / 1048576 / Math.max(1e-9, r.seconds.total);
  lines.push(
    `time: ${r.seconds.total.toFixed(1)} s (read+filter+tokenize ${r.seconds.read.toFixed(1)} s, dedup ${r.seconds.dedup.toFixed(1)} s, write ${r.seconds.write.toFixed(1)} s), ${rate.toFixed(2)} MB/s`,
  );
  return lines;
}
