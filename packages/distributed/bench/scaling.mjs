#!/usr/bin/env node
// Data-parallel scaling on this machine: 1 process × T threads × batch 2B against
// 2 ranks × T/2 threads × batch B (the same global batch), native backend, GPT. The two
// are run alternately (--rounds, default 3) and the median update time of each is used.
//
//   node packages/distributed/bench/scaling.mjs [--rounds 3] [--steps 12] [--threads 2] [--json]
//
// Prints update time, tokens/s, scaling efficiency (2-rank throughput / 1-process
// throughput), the communication share of a 2-rank update (pack + wait + unpack), and the
// bytes all-reduced per update against the parameter count, and the same all-reduce alone.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const rounds = arg('rounds', 3);
const steps = arg('steps', 12);
const threads = arg('threads', 2);
const json = process.argv.includes('--json');
const B = 4;
const T = 128;

const dir = mkdtempSync(join(tmpdir(), 'tessera-scaling-'));
const corpus = join(root, 'packages', 'data', 'corpus', 'moby-dick-ch1-12.txt');
const config = (batch) => ({
  backend: 'native',
  seed: 1,
  tokenizer: { train: 'bpe', vocab_size: 2048 },
  data: { train: { path: corpus }, block_size: T },
  objective: { name: 'causal-lm' },
  model: { name: 'gpt', n_embd: 256, n_layer: 4, n_head: 8, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 },
  optimizer: { name: 'adamw', lr: 0.001, clipGradNorm: 1 },
  training: {
    output_dir: join(dir, `run-${batch}`),
    max_steps: steps,
    per_device_train_batch_size: batch,
    logging_steps: 1000,
    save_steps: null,
    save_total_limit: 1,
  },
});

function once(ranks) {
  const result = join(dir, `result-${ranks}.json`);
  const job = join(dir, `job-${ranks}.json`);
  writeFileSync(job, JSON.stringify({ config: config((2 * B) / ranks), dir, result }));
  const perRank = String(Math.max(1, Math.floor(threads / ranks)));
  const env = { ...process.env, TESSERA_NATIVE_THREADS: perRank, OMPI_MCA_btl_vader_single_copy_mechanism: 'none' };
  const cmd =
    ranks === 1
      ? [process.execPath, [join(here, 'rank-step.mjs'), job]]
      : [
          'mpirun',
          [
            '-np',
            String(ranks),
            ...(process.getuid?.() === 0 ? ['--allow-run-as-root'] : []),
            '--oversubscribe',
            '--bind-to',
            'none',
            process.execPath,
            join(here, 'rank-step.mjs'),
            job,
          ],
        ];
  const r = spawnSync(cmd[0], cmd[1], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd[0]} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(readFileSync(result, 'utf8'));
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const runs = { 1: [], 2: [] };
for (let r = 0; r < rounds; r++) for (const ranks of [1, 2]) runs[ranks].push(once(ranks));

// Each run's first two updates warm the caches and the buffer pools; the rest are timed.
const updateMs = (list) => median(list.flatMap((x) => x.steps.slice(2)));
const one = updateMs(runs[1]);
const two = updateMs(runs[2]);
const tokens = 2 * B * T;
const t = runs[2].map((x) => x.timings);
const perStep = (key) => median(t.map((x) => x[key] / x.steps));
const comm = perStep('packMs') + perStep('waitMs') + perStep('unpackMs');
const params = runs[1][0].params;
// The wire alone (after a barrier, so no rank waits for another): what the all-reduce costs
// without the skew between ranks that `wait` also holds.
const wire = spawnSync(
  'mpirun',
  [
    '-np',
    '2',
    ...(process.getuid?.() === 0 ? ['--allow-run-as-root'] : []),
    '--oversubscribe',
    '--bind-to',
    'none',
    process.execPath,
    join(here, 'allreduce.mjs'),
    String(t[0].bytesPerStep),
    '20',
  ],
  { encoding: 'utf8', env: { ...process.env, OMPI_MCA_btl_vader_single_copy_mechanism: 'none' } },
);
if (wire.status !== 0) throw new Error(`all-reduce bench failed:\n${wire.stdout}\n${wire.stderr}`);
const wireMs = JSON.parse(wire.stdout.trim().split('\n').at(-1)).medianMs;
const out = {
  model: `GPT n_embd 256, 4 layers, T ${T}, vocab 2048 (${params.toLocaleString('en-US')} parameters)`,
  globalBatch: 2 * B,
  threads,
  rounds,
  oneProcess: { updateMs: one, tokensPerSecond: (tokens / one) * 1000 },
  twoRanks: { updateMs: two, tokensPerSecond: (tokens / two) * 1000 },
  scalingEfficiency: one / two,
  commMsPerUpdate: comm,
  commShare: comm / two,
  mpiMsPerUpdate: perStep('mpiMs'),
  waitMsPerUpdate: perStep('waitMs'),
  wireMsPerUpdate: wireMs,
  bytesPerUpdate: t[0].bytesPerStep,
  bytesPerParameter: t[0].bytesPerStep / params,
  buckets: t[0].buckets,
};
if (json) console.log(JSON.stringify(out, null, 2));
else {
  console.log(
    `${out.model}; global batch ${out.globalBatch} × ${T} tokens; ${threads} threads in all; ${rounds} rounds`,
  );
  console.log(
    `  1 process × ${threads} threads:  ${one.toFixed(0)} ms/update, ${out.oneProcess.tokensPerSecond.toFixed(0)} tok/s`,
  );
  console.log(
    `  2 ranks × ${Math.max(1, threads / 2)} thread(s):    ${two.toFixed(0)} ms/update, ${out.twoRanks.tokensPerSecond.toFixed(0)} tok/s`,
  );
  console.log(`  scaling efficiency (2-rank throughput / 1-process): ${(out.scalingEfficiency * 100).toFixed(0)}%`);
  console.log(
    `  communication per 2-rank update: ${comm.toFixed(1)} ms = ${(out.commShare * 100).toFixed(1)}% ` +
      `(MPI ${out.mpiMsPerUpdate.toFixed(1)} ms, of which the JS thread waited ${out.waitMsPerUpdate.toFixed(1)} ms)`,
  );
  console.log(
    `  the all-reduce alone (after a barrier): ${wireMs.toFixed(1)} ms; the rest of the wait is ranks waiting for each other`,
  );
  console.log(
    `  all-reduced per update: ${(out.bytesPerUpdate / 2 ** 20).toFixed(2)} MiB in ${out.buckets} buckets = ${out.bytesPerParameter.toFixed(2)} bytes/parameter`,
  );
}
