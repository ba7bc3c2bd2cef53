#!/usr/bin/env node
// Builds small tasks from the bundled Moby-Dick chapters (public domain):
//  data/reverse/{train,test}.jsonl  seq2seq: "reverse: w1 w2 w3" -> "w3 w2 w1" (T5 fine-tuning)
//  data/retrieval/documents.txt     one sentence per line for embeddings + nearest-neighbour search
// Usage: node tools/datasets/make-text-tasks.mjs
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
const text = readFileSync(join(root, 'packages/data/corpus/moby-dick-ch1-12.txt'), 'utf8');
const sentences = text
  .split(/(?<=[.!?])\s+/)
  .map((s) => s.replace(/\s+/g, ' ').trim())
  .filter((s) => s.length > 0);

const words = text.toLowerCase().match(/[a-z]+/g) ?? [];
const pairs = [];
for (let i = 0; i + 4 <= words.length && pairs.length < 1200; i += 7) {
  const n = 3 + (i % 3); // 3 to 5 words
  const chunk = words.slice(i, i + n);
  pairs.push({ text: `reverse: ${chunk.join(' ')}`, target: [...chunk].reverse().join(' ') });
}
mkdirSync(join(root, 'data/reverse'), { recursive: true });
const test = pairs.filter((_, i) => i % 10 === 0);
const train = pairs.filter((_, i) => i % 10 !== 0);
writeFileSync(join(root, 'data/reverse/train.jsonl'), `${train.map((r) => JSON.stringify(r)).join('\n')}\n`);
writeFileSync(join(root, 'data/reverse/test.jsonl'), `${test.map((r) => JSON.stringify(r)).join('\n')}\n`);

const docs = sentences.filter((s) => s.length >= 40 && s.length <= 160).slice(0, 200);
mkdirSync(join(root, 'data/retrieval'), { recursive: true });
writeFileSync(join(root, 'data/retrieval/documents.txt'), `${docs.join('\n')}\n`);
console.log(`reverse: ${train.length} train / ${test.length} test; retrieval: ${docs.length} documents`);
