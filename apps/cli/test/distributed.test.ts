import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '@tessera/cli';
import { listCheckpoints, readTrainerState } from '@tessera/trainers';
import { readSafetensors } from '@tessera/transformer';
import { capture } from './capture.js';

afterEach(() => vi.restoreAllMocks());

const BIN = join(import.meta.dirname, '..', 'dist', 'bin.js');
const LINES = [
  'The lighthouse keeper climbed the stairs each evening and lit the lamp above the sea.',
  'The ships that passed in the night saw the light and kept away from the rocks.',
  'In the morning the keeper put out the lamp, cleaned the glass, and wrote in the log.',
  'When the storm came the keeper stayed awake all night and watched the light turn.',
];

/** A tiny GPT run config in a fresh directory. */
function tinyRun(steps: number, saveSteps: number): { dir: string; config: string; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-launch-'));
  writeFileSync(
    join(dir, 'corpus.txt'),
    `${Array.from({ length: 12 }, () => LINES)
      .flat()
      .join('\n')}\n`,
  );
  const out = join(dir, 'run');
  writeFileSync(
    join(dir, 'run.json'),
    JSON.stringify({
      backend: 'cpu',
      seed: 3,
      tokenizer: { train: 'bpe', vocab_size: 300 },
      data: { train: { path: join(dir, 'corpus.txt') }, block_size: 16, validation_fraction: 0.1 },
      objective: { name: 'causal-lm' },
      model: { name: 'gpt', n_embd: 32, n_layer: 2, n_head: 4 },
      optimizer: { name: 'adamw', lr: 0.003 },
      metrics: ['loss'],
      training: {
        output_dir: out,
        max_steps: steps,
        per_device_train_batch_size: 2,
        logging_steps: 1,
        save_steps: saveSteps,
        eval_steps: steps,
        sample_tokens: 0,
      },
    }),
  );
  return { dir, config: join(dir, 'run.json'), out };
}

/** `tessera launch -n 2 -- ARGS` as a child process; resolves with its exit code and output. */
function launch(args: string[], marker: string) {
  const child = spawn(process.execPath, [BIN, 'launch', '-n', '2', '--', ...args], {
    env: { ...process.env, TESSERA_TEST_JOB: marker },
  });
  let text = '';
  const collect = (b: Buffer) => {
    text += b.toString();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const done = new Promise<{ code: number | null; text: string; ms: number }>((resolve) => {
    const started = Date.now();
    child.on('close', (code) => resolve({ code, text, ms: Date.now() - started }));
  });
  return Object.assign(done, { child });
}

/** The pid of rank `rank` of the job started with `marker` (read from /proc: mpirun sets the rank in each environment). */
function rankPid(marker: string, rank: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (env.includes(`TESSERA_TEST_JOB=${marker}`) && env.includes(`OMPI_COMM_WORLD_RANK=${rank}`))
        return Number(entry);
    } catch {
      // processes come and go; unreadable ones are not ours
    }
  }
  return undefined;
}

function checkpointsAreIntact(out: string): number[] {
  const steps = listCheckpoints(out).map((c) => c.step);
  for (const c of listCheckpoints(out)) {
    expect(readTrainerState(c.path).step).toBe(c.step);
    expect(readSafetensors(join(c.path, 'model.safetensors')).entries.size).toBeGreaterThan(5);
  }
  return steps;
}

describe('tessera launch (mpirun)', () => {
  it('--dry-run prints the mpirun command with the flags this host needs', async () => {
    const { out } = capture();
    expect(await main(['launch', '-n', '3', '--dry-run', '--', 'train', 'cfg.yaml'])).toBe(0);
    const line = out.join('\n');
    expect(line).toContain('mpirun -np 3');
    expect(line).toContain('--bind-to none');
    // 3 ranks on a 2-core machine need --oversubscribe; a root user needs --allow-run-as-root.
    if (process.getuid?.() === 0) expect(line).toContain('--allow-run-as-root');
    expect(line).toContain('-x TESSERA_NATIVE_THREADS');
    expect(line).toMatch(/bin\.js train cfg\.yaml$/);
  });

  it('trains on 2 ranks: rank 0 alone logs and checkpoints, and reports the all-reduce', async () => {
    const { config, out } = tinyRun(4, 2);
    const r = await launch(['train', config], `ok-${process.pid}`);
    expect(r.code, r.text).toBe(0);
    expect(r.text).toContain('distributed: 2 ranks on Open MPI');
    expect(r.text).toMatch(/updates of 2 × 2 ranks examples/);
    expect(r.text).toMatch(/gradient-sync: 2 ranks, [\d.]+ MiB in \d+ buckets per update/);
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    // One writer: each step logged once, not once per rank.
    expect(lines.filter((l) => l.split === 'train').map((l) => l.step)).toEqual([1, 2, 3, 4]);
    expect(checkpointsAreIntact(out)).toEqual([2, 4]);
    expect(readTrainerState(join(out, 'checkpoint-4')).worldSize).toBe(2);
  }, 180_000);

  it('a rank killed mid-run ends the job on every rank within seconds; checkpoints stay intact; resume continues', async () => {
    const { config, out } = tinyRun(400, 2);
    const marker = `fault-${process.pid}`;
    let killedAt = 0;
    // Kill rank 1 once rank 0 has written two checkpoints (so one is complete and another may be in flight).
    const watcher = setInterval(() => {
      if (killedAt || !existsSync(join(out, 'checkpoint-4'))) return;
      const pid = rankPid(marker, 1);
      if (!pid) return;
      killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
    }, 100);
    const r = await launch(['train', config], marker);
    clearInterval(watcher);
    expect(killedAt, r.text).toBeGreaterThan(0);
    expect(r.code).not.toBe(0);
    const endedAfterKill = Date.now() - killedAt;
    expect(endedAfterKill).toBeLessThan(15_000);
    // mpirun names the dead rank; rank 0 says what happened and that checkpoints are intact.
    expect(r.text).toMatch(/rank 1 .*exited on signal 9/s);
    expect(r.text).toMatch(/rank 0\/2: stopped by SIGTERM: another rank of the job exited/);
    const steps = checkpointsAreIntact(out);
    expect(steps.length).toBeGreaterThan(0);
    const last = steps.at(-1)!;
    const resumed = await launch(
      ['train', config, '--resume', out, '--set', `training.max_steps=${last + 2}`],
      `${marker}-resume`,
    );
    expect(resumed.code, resumed.text).toBe(0);
    expect(resumed.text).toContain(`resumed from ${join(out, `checkpoint-${last}`)} at step ${last}`);
    expect(checkpointsAreIntact(out).at(-1)).toBe(last + 2);
  }, 240_000);

  it('Ctrl-C on tessera launch finishes the step on every rank, saves once and exits 0', async () => {
    const { config, out } = tinyRun(2000, 1000);
    const job = launch(['train', config], `int-${process.pid}`);
    const metrics = join(out, 'metrics.jsonl');
    const poll = setInterval(() => {
      if (existsSync(metrics) && readFileSync(metrics, 'utf8').trim().split('\n').length >= 5) {
        clearInterval(poll);
        job.child.kill('SIGINT');
      }
    }, 100);
    const r = await job;
    clearInterval(poll);
    expect(r.code, r.text).toBe(0);
    expect(r.text).toContain('finishing the step on every rank and saving');
    const saved = /interrupted: finished step (\d+) and saved the checkpoint/.exec(r.text);
    expect(saved, r.text).not.toBeNull();
    const step = Number(saved![1]);
    expect(step).toBeGreaterThanOrEqual(5);
    expect(step).toBeLessThan(1000);
    expect(checkpointsAreIntact(out)).toEqual([step]);
  }, 180_000);
});
