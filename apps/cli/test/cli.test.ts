import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_SMOKE_CONFIG, main, runSmoke } from '@tessera/cli';
import { capture } from './capture.js';
import { tf } from '@tessera/tensor-core';

afterEach(() => vi.restoreAllMocks());

describe('tessera smoke', () => {
  it('trains the tiny GPT and the loss falls; no tensor leaks', async () => {
    const lines: string[] = [];
    const before = tf.memory().numTensors;
    const result = await runSmoke(DEFAULT_SMOKE_CONFIG, ['training.steps=30', 'backend=cpu'], (l) => lines.push(l));
    expect(result.backend).toBe('cpu');
    expect(result.losses).toHaveLength(30);
    expect(result.lastLoss).toBeLessThan(result.firstLoss - 0.5);
    expect(lines.some((l) => /^step +30 +loss \d/.test(l))).toBe(true);
    expect(lines.some((l) => l.startsWith('smoke: sample: '))).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('is deterministic for a seed on the same backend', async () => {
    const a = await runSmoke(DEFAULT_SMOKE_CONFIG, ['training.steps=4', 'backend=cpu'], () => {});
    const b = await runSmoke(DEFAULT_SMOKE_CONFIG, ['training.steps=4', 'backend=cpu'], () => {});
    const c = await runSmoke(DEFAULT_SMOKE_CONFIG, ['training.steps=4', 'backend=cpu', 'seed=7'], () => {});
    expect(a.losses).toEqual(b.losses);
    expect(c.losses).not.toEqual(a.losses);
  });

  it('a bad config exits 2 and lists every problem with path, value and expectation', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      `extends: ${DEFAULT_SMOKE_CONFIG}\nmodel: { nHead: 0, nEmbed: 64 }\ntraining: { learningRate: -1 }\n`,
    );
    const { err } = capture();
    expect(await main(['smoke', '--config', file])).toBe(2);
    const text = err.join('\n');
    expect(text).toContain('model.nHead: found 0; expected a number > 0');
    expect(text).toContain('model.nEmbed: found 64; expected no such key here');
    expect(text).toContain('training.learningRate: found -1; expected a number > 0');
    expect(text).not.toMatch(/\n\s+at /);
  });

  it('list, ops, help and unknown commands', async () => {
    const { out, err } = capture();
    expect(await main(['list', 'backend'])).toBe(0);
    expect(out.join('\n')).toMatch(/backend \(\d+\)\n {2}cpu/);
    expect(await main(['ops', '--backend', 'cpu'])).toBe(0);
    expect(out.join('\n')).toMatch(/TesseraAttention +kernel/);
    expect(await main(['--help'])).toBe(0);
    expect(out.join('\n')).toMatch(
      /smoke \[options\][\s\S]*train \[options\] <config>|train \[options\] <config>[\s\S]*smoke \[options\]/,
    );
    expect(await main(['trian'])).toBe(2);
    expect(err.join('\n')).toMatch(/unknown command 'trian'[\s\S]*Did you mean train\?/);
    expect(await main(['list', 'optimizers'])).toBe(2);
    expect(await main(['smoke', '--steps', '3'])).toBe(2);
    expect(err.join('\n')).toContain("unknown option '--steps'");
  });
});
