// DistilBERT-style distillation, measured on the bundled tasks, in one run:
//   node packages/adapt/bench/distill.mjs [--backend native] [--dir /tmp/tessera-distill-bench] [--fresh] [--json]
//
// 1. Teacher: configs/bert-pretrain.yaml (MLM + NSP on Moby-Dick) with 4 layers instead of 2.
// 2. Student: the same config with 2 layers (the bundled size), initialised from teacher
//    layers 0 and 2 (embeddings and heads copied) and trained with
//    adapter: { name: distillation } (KL at T 2 × T², MLM + NSP loss, hidden-state cosine;
//    weights 5 / 2 / 1; KL on the masked tokens), same data, seed, schedule and number of updates as the teacher.
// 3. Baseline: the same 2-layer model trained on the task alone (no teacher), same tokenizer.
// 4. Each of the three fine-tuned on configs/bert-classify.yaml (spam vs ham) from its checkpoint.
// Reported: parameters, median ms per training update, evaluation wall time (a pass over
// the validation split, the best of 3), MLM validation loss / accuracy, and the fine-tuned
// classification accuracy, with the share of the teacher's each model keeps.
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import '@tessera/kernels-cpu';
import '@tessera/kernels-native';
import '@tessera/transformer';
import '@tessera/optim';
import '@tessera/data';
import '@tessera/adapt';
import { loadConfig, z } from '@tessera/tensor-core';
import { listCheckpoints, runConfigFrom, Trainer } from '@tessera/trainers';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'native' },
    dir: { type: 'string', default: '/tmp/tessera-distill-bench' },
    fresh: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const CONFIGS = join(REPO, 'configs');
const dir = values.dir;
if (values.fresh) rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const log = (line) => console.error(line);
const readConfig = (name) => loadConfig(join(CONFIGS, name), { schema: z.record(z.string(), z.unknown()) });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

async function train(label, doc) {
  const times = [];
  let started = 0;
  const timer = {
    name: 'bench-timer',
    onStepBegin: () => {
      started = performance.now();
    },
    onStepEnd: () => {
      times.push(performance.now() - started);
    },
  };
  const trainer = await Trainer.create(runConfigFrom(doc, CONFIGS), {
    tty: false,
    handleSigint: false,
    log: (l) => log(`  [${label}] ${l}`),
    callbacks: [timer],
  });
  try {
    const result = await trainer.train();
    const evalTimes = [];
    let final = {};
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      final = await trainer.evaluate();
      evalTimes.push(performance.now() - t0);
    }
    return {
      label,
      parameters: trainer.model.parameterCount(),
      msPerUpdate: median(times.slice(3)),
      evalMs: Math.min(...evalTimes),
      steps: result.steps,
      final,
      checkpoint: listCheckpoints(doc.training.output_dir).at(-1).path,
    };
  } finally {
    trainer.dispose();
  }
}

const pretrain = readConfig('bert-pretrain.yaml');
const steps = pretrain.training.max_steps;
const pretrainRun = (label, model, extra = {}) =>
  train(label, {
    ...pretrain,
    backend: values.backend,
    model: { ...pretrain.model, ...model },
    training: { ...pretrain.training, output_dir: join(dir, label), save_steps: steps, save_total_limit: 1 },
    ...extra,
  });

const teacher = await pretrainRun('teacher', { num_hidden_layers: 4 });
const tokenizer = { path: join(teacher.checkpoint, 'tokenizer.json') };
const student = await pretrainRun(
  'student',
  { num_hidden_layers: 2 },
  // KL on the masked tokens (DistilBERT's restrict_ce_to_mask): on native, log-softmax over
  // every position's 1,500 logits falls back to the cpu kernels and would dominate the step.
  { tokenizer, adapter: { name: 'distillation', teacher: teacher.checkpoint, every: 2, kl_positions: 'labels' } },
);
const baseline = await pretrainRun('baseline', { num_hidden_layers: 2 }, { tokenizer });

const classify = readConfig('bert-classify.yaml');
const fineTune = (label, from) =>
  train(label, {
    ...classify,
    backend: values.backend,
    tokenizer,
    // The bases' position tables have bert-pretrain's 64 positions.
    data: { ...classify.data, block_size: 64 },
    model: {
      name: 'bert',
      head: 'sequence-classification',
      from,
      allow_missing: ['classifier.*'],
      ignore_unexpected: ['cls.*'],
      hidden_dropout_prob: 0.1,
    },
    training: {
      ...classify.training,
      output_dir: join(dir, label),
      early_stopping_patience: null,
      save_total_limit: 1,
    },
  });
const tuned = {
  teacher: await fineTune('teacher-classify', teacher.checkpoint),
  student: await fineTune('student-classify', student.checkpoint),
  baseline: await fineTune('baseline-classify', baseline.checkpoint),
};

const rows = [teacher, student, baseline].map((r) => ({ ...r, classify: tuned[r.label] }));
if (values.json) console.log(JSON.stringify(rows, null, 2));
const pct = (a, b) => `${((100 * a) / b).toFixed(0)} %`;
console.log(`backend ${values.backend}; bert-pretrain ${steps} updates, then bert-classify`);
console.log(
  '| model | layers | parameters | ms / update (pretraining) | eval pass ms | MLM loss | MLM accuracy (share of teacher) | spam accuracy after fine-tuning (share of teacher) |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows)
  console.log(
    `| ${r.label} | ${r.label === 'teacher' ? 4 : 2} | ${r.parameters.toLocaleString('en-US')} (${pct(r.parameters, teacher.parameters)}) | ${r.msPerUpdate.toFixed(1)} | ${r.evalMs.toFixed(0)} (${pct(r.evalMs, teacher.evalMs)}) | ${r.final.loss.toFixed(3)} | ${r.final.accuracy.toFixed(3)} (${pct(r.final.accuracy, teacher.final.accuracy)}) | ${r.classify.final.accuracy.toFixed(3)} (${pct(r.classify.final.accuracy, tuned.teacher.final.accuracy)}) |`,
  );
