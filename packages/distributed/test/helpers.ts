import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSafetensors } from '@tessera/transformer';
import { runConfigFrom, Trainer, type TrainResult } from '@tessera/trainers';

const RANK = join(import.meta.dirname, 'rank-train.mjs');

export const CORPUS = [
  'The lighthouse keeper climbed the stairs each evening and lit the lamp above the sea.',
  'The ships that passed in the night saw the light and kept away from the rocks.',
  'In the morning the keeper put out the lamp, cleaned the glass, and wrote in the log.',
  'The log said the wind came from the west, the sea was calm, and the ships were safe.',
  'When the storm came the keeper stayed awake all night and watched the light turn.',
  'A small boat came to the island with bread, oil for the lamp, and letters from the town.',
  'The keeper read the letters by the lamp and wrote answers to send back with the boat.',
  'Year after year the keeper climbed the stairs, lit the lamp, and wrote in the log.',
];

export function workspace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-dist-'));
  writeFileSync(join(dir, 'corpus.txt'), `${[...CORPUS, ...CORPUS, ...CORPUS, ...CORPUS].join('\n')}\n`);
  return dir;
}

/** mpirun's flags for tests on this machine (root in containers, more ranks than cores). */
export function mpirunArgs(ranks: number): string[] {
  const args = ['-np', String(ranks), '--oversubscribe', '--bind-to', 'none'];
  if (process.getuid?.() === 0) args.unshift('--allow-run-as-root');
  return args;
}

export const MPI_ENV = {
  ...process.env,
  OMPI_MCA_btl_vader_single_copy_mechanism: 'none',
  TESSERA_NATIVE_THREADS: '1',
};

/** Runs `config` on `ranks` processes under mpirun; returns rank 0's result. */
export function runRanks(
  ranks: number,
  config: Record<string, unknown>,
  dir: string,
  extra: { resume?: string; result?: string } = {},
): { losses: number[]; steps: number; timings: Record<string, number> } {
  const jobFile = join(dir, `job-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  const result = extra.result ?? 'result.json';
  writeFileSync(jobFile, JSON.stringify({ config, dir, ...extra, result }));
  const r = spawnSync('mpirun', [...mpirunArgs(ranks), process.execPath, RANK, jobFile], {
    encoding: 'utf8',
    env: MPI_ENV,
    timeout: 180_000,
  });
  if (r.status !== 0) throw new Error(`mpirun exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(readFileSync(join(dir, result), 'utf8'));
}

/** Runs `config` in this process (one rank, no MPI). */
export async function runAlone(config: Record<string, unknown>, dir: string, resume?: string): Promise<TrainResult> {
  const trainer = await Trainer.create(runConfigFrom(config, dir), {
    tty: false,
    log: () => {},
    handleSigint: false,
    ...(resume ? { resume } : {}),
  });
  try {
    return await trainer.train();
  } finally {
    trainer.dispose();
  }
}

/** Largest |a - b| over every tensor of two model.safetensors files, and the tensor it is in. */
export function maxParamDiff(a: string, b: string): { diff: number; name: string; count: number } {
  const ta = loadSafetensors(a).tensors;
  const tb = loadSafetensors(b).tensors;
  let diff = 0;
  let name = '';
  const names = Object.keys(ta);
  if (names.sort().join() !== Object.keys(tb).sort().join()) throw new Error('different tensor names');
  for (const n of names) {
    const x = ta[n]!.dataSync();
    const y = tb[n]!.dataSync();
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs(x[i]! - y[i]!);
      if (d > diff) {
        diff = d;
        name = n;
      }
    }
  }
  for (const t of [...Object.values(ta), ...Object.values(tb)]) t.dispose();
  return { diff, name, count: names.length };
}
