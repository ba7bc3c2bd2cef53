import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '@tessera/kernels-cpu';
import '@tessera/transformer';
import '@tessera/optim';
import '@tessera/data';
import { tf } from '@tessera/tensor-core';
import { listCheckpoints, NonFiniteLossError, pruneCheckpoints, runConfigFrom, Trainer } from '@tessera/trainers';
import { quiet, run, tinyGptConfig, workspace } from './helpers.js';

const CHILD = join(import.meta.dirname, 'child.mjs');

describe('Trainer', () => {
  it('trains, evaluates, checkpoints, writes metrics.jsonl and a plot; no tensors leak', async () => {
    const dir = workspace();
    const before = tf.memory().numTensors;
    const result = await run(tinyGptConfig(dir, { max_steps: 12, eval_steps: 6, save_steps: 6 }), dir);
    expect(result.steps).toBe(12);
    expect(result.losses.at(-1)!).toBeLessThan(result.losses[0]!);
    expect(result.evalMetrics.loss).toBeGreaterThan(0);
    expect(result.evalMetrics.accuracy).toBeGreaterThan(0);
    const out = join(dir, 'run');
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.split === 'train')).toHaveLength(12);
    expect(lines.filter((l) => l.split === 'eval').map((l) => l.step)).toEqual([6, 12]);
    expect(readFileSync(join(out, 'loss.svg'), 'utf8')).toContain('<polyline');
    const ckpt = listCheckpoints(out).map((c) => c.step);
    expect(ckpt).toEqual([6, 12]);
    for (const f of [
      'config.json',
      'model.safetensors',
      'optimizer.json',
      'optimizer.safetensors',
      'trainer_state.json',
      'tokenizer.json',
    ]) {
      expect(existsSync(join(out, 'checkpoint-12', f)), f).toBe(true);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('resume: a run stopped at step 3 and resumed gives the uninterrupted losses bit for bit', async () => {
    const a = workspace();
    const full = await run(tinyGptConfig(a, { max_steps: 7 }), a);
    const b = workspace();
    const first = await run(tinyGptConfig(b, { max_steps: 3 }), b);
    expect(first.losses).toEqual(full.losses.slice(0, 3));
    // As written before 2026-12-03: with a `dataRng` that nothing drew from. It is dropped.
    const statePath = join(listCheckpoints(join(b, 'run')).at(-1)!.path, 'trainer_state.json');
    const old = { ...JSON.parse(readFileSync(statePath, 'utf8')), dataRng: { s: [1, 2, 3, 4] } };
    writeFileSync(statePath, JSON.stringify(old));
    const rest = await run(tinyGptConfig(b, { max_steps: 7 }), b, join(b, 'run'));
    expect(rest.losses).toEqual(full.losses.slice(3));
    const last = JSON.parse(
      readFileSync(join(listCheckpoints(join(b, 'run')).at(-1)!.path, 'trainer_state.json'), 'utf8'),
    );
    expect(last.step).toBe(7);
    expect(last).not.toHaveProperty('dataRng');
  });

  it('gradient accumulation: 2 micro-batches of 2 equal one batch of 4', async () => {
    const a = workspace();
    const b = workspace();
    // Without dropout: masks are drawn per micro-batch, so they differ from one large batch's.
    const noDropout = (doc: Record<string, unknown>) => ({
      ...doc,
      model: { ...(doc.model as object), resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 },
    });
    const big = await run(noDropout(tinyGptConfig(a, { max_steps: 3, per_device_train_batch_size: 4 })), a);
    const small = await run(
      noDropout(tinyGptConfig(b, { max_steps: 3, per_device_train_batch_size: 2, gradient_accumulation_steps: 2 })),
      b,
    );
    small.losses.forEach((l, i) => {
      expect(Math.abs(l - big.losses[i]!)).toBeLessThan(1e-4);
    });
  });

  it('save_total_limit prunes old checkpoints but keeps the best', async () => {
    const dir = workspace();
    const result = await run(
      tinyGptConfig(dir, { max_steps: 8, save_steps: 2, eval_steps: 2, save_total_limit: 2 }),
      dir,
    );
    const kept = listCheckpoints(join(dir, 'run')).map((c) => c.path);
    expect(kept.length).toBeLessThanOrEqual(3);
    expect(kept).toContain(result.bestCheckpoint);
    expect(kept).toContain(result.lastCheckpoint);
  });

  it('save_total_limit 1 with an older best keeps the best and the newest (the run ends on a checkpoint that exists)', () => {
    const out = join(workspace(), 'run');
    for (const step of [2, 4, 6]) {
      mkdirSync(join(out, `checkpoint-${step}`), { recursive: true });
      writeFileSync(join(out, `checkpoint-${step}`, 'trainer_state.json'), '{}');
    }
    const removed = pruneCheckpoints(out, 1, join(out, 'checkpoint-2'));
    expect(removed).toEqual([join(out, 'checkpoint-4')]);
    expect(listCheckpoints(out).map((c) => c.step)).toEqual([2, 6]);
  });

  it('a non-finite loss stops with a clear message naming the last good checkpoint, or is skipped and counted', async () => {
    const dir = workspace();
    const doc = tinyGptConfig(dir, { max_steps: 4, save_steps: 1 });
    (doc.optimizer as Record<string, unknown>) = { name: 'sgd', lr: 1e30 };
    await expect(run(doc, dir)).rejects.toThrow(NonFiniteLossError);
    await expect(run(doc, workspace())).rejects.toThrow(
      /The training loss became (NaN|Infinity) at step \d+\. (The last good checkpoint is .*checkpoint-\d+|No checkpoint)/,
    );
    const skip = workspace();
    const skipped = await run(
      { ...tinyGptConfig(skip, { max_steps: 2, non_finite_loss: 'skip' }), optimizer: { name: 'sgd', lr: 1e30 } },
      skip,
    ).catch((e) => e);
    // Once the weights are infinite every later batch is skipped too: the run cannot make progress, and says so by counting.
    if (!(skipped instanceof Error)) expect(skipped.skippedBatches).toBeGreaterThan(0);
  });

  it('online training: continue a finished run on new data with its optimizer state', async () => {
    const dir = workspace();
    const first = await run(tinyGptConfig(dir, { max_steps: 3 }), dir);
    const trainer = await Trainer.create(runConfigFrom(tinyGptConfig(dir, { max_steps: 5 }), dir), {
      ...quiet,
      resume: join(dir, 'run'),
      dataOverride: join(dir, 'corpus.txt'),
    });
    const more = await trainer.train();
    trainer.dispose();
    expect(first.steps).toBe(3);
    expect(more.steps).toBe(5);
    expect(more.losses).toHaveLength(2);
  });

  it('refuses to resume with another model config', async () => {
    const dir = workspace();
    await run(tinyGptConfig(dir, { max_steps: 1 }), dir);
    const other = tinyGptConfig(dir, { max_steps: 2 });
    (other.model as Record<string, unknown>).n_layer = 3;
    await expect(Trainer.create(runConfigFrom(other, dir), { ...quiet, resume: join(dir, 'run') })).rejects.toThrow(
      /another model, tokenizer/,
    );
  });
});

describe('crash safety and Ctrl-C (separate processes)', () => {
  it('killing the process in the middle of a save never damages the last good checkpoint', () => {
    const dir = workspace();
    const doc = JSON.stringify(tinyGptConfig(dir, { max_steps: 6, save_steps: 2 }));
    const crashed = spawnSync(process.execPath, [CHILD, doc, dir], {
      env: { ...process.env, TESSERA_TEST_CRASH_IN_SAVE: '4' },
      encoding: 'utf8',
    });
    expect(crashed.signal).toBe('SIGKILL');
    const out = join(dir, 'run');
    expect(listCheckpoints(out).map((c) => c.step)).toEqual([2]);
    expect(readdirSync(out).some((n) => n.startsWith('.tmp-checkpoint-4'))).toBe(true);
    const resumed = spawnSync(process.execPath, [CHILD, doc, dir, out], { encoding: 'utf8' });
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/resumed from .*checkpoint-2 at step 2/);
    const result = JSON.parse(resumed.stdout.split('RESULT ')[1]!);
    expect(result.steps).toBe(6);
    expect(result.losses).toHaveLength(4);
  });

  it('SIGINT finishes the step, saves, exits 0 and says where the checkpoint is', async () => {
    const dir = workspace();
    const doc = JSON.stringify(tinyGptConfig(dir, { max_steps: 500 }));
    const child = spawn(process.execPath, [CHILD, doc, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let sent = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (!sent && /step 3\/500/.test(stdout)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
    expect(stdout).toMatch(/interrupted: finished step (\d+) and saved the checkpoint to .*checkpoint-\1/);
    const result = JSON.parse(stdout.split('RESULT ')[1]!);
    expect(result.interrupted).toBe(true);
    expect(existsSync(join(result.lastCheckpoint, 'trainer_state.json'))).toBe(true);
  });
});
