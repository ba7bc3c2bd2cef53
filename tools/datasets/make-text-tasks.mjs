#!/usr/bin/env node
// Builds small tasks from the bundled Moby-Dick chapters (public domain):
//  data/reverse/{train,test}.jsonl  seq2seq: spell a corpus word backwards, "reverse: w h a l e" -> "e l a h w"
//                                   (T5 fine-tuning; test words never appear in training)
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

const words = [...new Set(text.toLowerCase().match(/[a-z]+/g) ?? [])]
  .filter((w) => w.length >= 3 && w.length <= 7)
  .sort();
const pairs = words.map((w) => ({
  text: `reverse: ${w.split('').join(' ')}`,
  target: w.split('').reverse().join(' '),
}));
mkdirSync(join(root, 'data/reverse'), { recursive: true });
const test = pairs.filter((_, i) => i % 10 === 0);
const train = pairs.filter((_, i) => i % 10 !== 0);
writeFileSync(join(root, 'data/reverse/train.jsonl'), `${train.map((r) => JSON.stringify(r)).join('\n')}\n`);
writeFileSync(join(root, 'data/reverse/test.jsonl'), `${test.map((r) => JSON.stringify(r)).join('\n')}\n`);

const docs = sentences.filter((s) => s.length >= 40 && s.length <= 160).slice(0, 200);
mkdirSync(join(root, 'data/retrieval'), { recursive: true });
writeFileSync(join(root, 'data/retrieval/documents.txt'), `${docs.join('\n')}\n`);
console.log(`reverse: ${train.length} train / ${test.length} test; retrieval: ${docs.length} documents`);
