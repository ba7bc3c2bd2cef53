// DistilBERT-style distillation, measured on the bundled labelled task, in one run:
//   flock /tmp/tessera-bench.lock node packages/adapt/bench/distill.mjs [--backend native]
//     [--dir /tmp/tessera-distill-bench] [--seeds 11,12,13] [--teacher-layers 4] [--few 64] [--json]
//
// The task: configs/bert-classify.yaml (spam vs ham, 640 training / 160 held-out messages,
// balanced: the majority-class baseline is 0.5). Per seed, every run 120 updates of 16
// (3 epochs of the 640), same schedule and tokenizer:
// 1. Teacher: bert-classify with --teacher-layers (4) layers on all 640 labelled messages, its
//    tokenizer trained as the config says.
// Then, in two settings: the students see all 640 messages, or only --few (64) of them (every
// tenth, 32 per class), the teacher still trained on all 640 (where its knowledge can show):
// 2. Distilled student: half the layers, started from teacher layers 0, 2, ... (embeddings copied)
//    and trained with adapter: { name: distillation } (KL of the class logits at T 2 × T²,
//    the classification loss, hidden-state cosine; weights 5 / 2 / 1).
// 3. Initialised only: the same student started from the teacher's layers, trained on the labels
//    alone (alpha_ce 0, alpha_cos 0): what the copied layers give without the soft targets.
// 4. Alone: the same student size from a random initialisation, labels only (no teacher).
// Reported: accuracy and macro F1 on the held-out split (mean and range over seeds), the share
// of the teacher's accuracy, parameters, median ms per update, and the inference time of a pass
// over the held-out split (teacher and students timed interleaved, best of 5).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
    seeds: { type: 'string', default: '11,12,13' },
    'teacher-layers': { type: 'string', default: '4' },
    few: { type: 'string', default: '64' },
    json: { type: 'boolean', default: false },
  },
});
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const CONFIGS = join(REPO, 'configs');
const dir = values.dir;
const seeds = values.seeds.split(',').map(Number);
const teacherLayers = Number(values['teacher-layers']);
const studentLayers = teacherLayers / 2;
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const log = (line) => console.error(line);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const classify = loadConfig(join(CONFIGS, 'bert-classify.yaml'), { schema: z.record(z.string(), z.unknown()) });
const trainFile = resolve(CONFIGS, classify.data.train.path);
const records = readFileSync(trainFile, 'utf8').trim().split('\n');
const stride = Math.floor(records.length / Number(values.few));
const fewFile = join(dir, `train-${values.few}.jsonl`);
writeFileSync(
  fewFile,
  `${records
    .filter((_, i) => i % stride === 0)
    .slice(0, Number(values.few))
    .join('\n')}\n`,
);
const SETTINGS = [
  { name: `all ${records.length} labelled messages`, train: trainFile },
  { name: `${values.few} labelled messages`, train: fewFile },
];

/** Trains one run; the trainer is returned alive, so its model can be timed next to the others. */
async function train(label, seed, model, extra = {}) {
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
  const output = join(dir, `${label}-${seed}`);
  const doc = {
    ...classify,
    backend: values.backend,
    seed,
    model: { ...classify.model, ...model },
    // Every run makes the same 120 updates (3 epochs of the 640): the comparison is at equal updates.
    training: {
      ...classify.training,
      output_dir: output,
      max_steps: 120,
      early_stopping_patience: null,
      save_total_limit: 1,
    },
    ...extra,
  };
  const trainer = await Trainer.create(runConfigFrom(doc, CONFIGS), {
    tty: false,
    handleSigint: false,
    log: (l) => log(`  [${label} ${seed}] ${l}`),
    callbacks: [timer],
  });
  const result = await trainer.train();
  const final = await trainer.evaluate();
  return {
    label,
    seed,
    trainer,
    parameters: trainer.model.parameterCount(),
    msPerUpdate: median(times.slice(3)),
    steps: result.steps,
    accuracy: final.accuracy,
    f1: final.macro_f1,
    checkpoint: listCheckpoints(output).at(-1).path,
  };
}

/** Wall time of one evaluation pass over the held-out split per model, interleaved, best of `rounds`. */
async function timeInference(runs, rounds = 5) {
  const best = runs.map(() => Number.POSITIVE_INFINITY);
  for (let i = 0; i < rounds; i++)
    for (const [j, r] of runs.entries()) {
      const t0 = performance.now();
      await r.trainer.evaluate();
      best[j] = Math.min(best[j], performance.now() - t0);
    }
  return best;
}

const STUDENTS = ['distilled', 'initialised only', 'alone'];
const key = (setting, label) => (label === 'teacher' ? label : `${setting.name}: ${label}`);
const results = new Map();
const record = (k, r) => results.set(k, [...(results.get(k) ?? []), r]);
let inference;
for (const seed of seeds) {
  const teacher = await train('teacher', seed, { num_hidden_layers: teacherLayers });
  record('teacher', teacher);
  const tokenizer = { path: join(teacher.checkpoint, 'tokenizer.json') };
  const student = { num_hidden_layers: studentLayers };
  const distillation = { name: 'distillation', teacher: teacher.checkpoint, every: 2 };
  const extras = {
    distilled: { adapter: distillation },
    'initialised only': { adapter: { ...distillation, alpha_ce: 0, alpha_cos: 0, alpha_task: 1 } },
    alone: {},
  };
  for (const [s, setting] of SETTINGS.entries())
    for (const label of STUDENTS) {
      const data = { ...classify.data, train: { ...classify.data.train, path: setting.train } };
      const r = await train(`${label}-${s}`, seed, student, { tokenizer, data, ...extras[label] });
      if (inference === undefined && label === 'alone') inference = await timeInference([teacher, r]);
      r.trainer.dispose();
      record(key(setting, label), r);
    }
  teacher.trainer.dispose();
}
for (const rs of results.values()) for (const r of rs) delete r.trainer;

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const teacherAccuracy = mean(results.get('teacher').map((r) => r.accuracy));
const rows = [...results].map(([label, rs]) => {
  const accuracies = rs.map((r) => r.accuracy);
  return {
    label,
    layers: label === 'teacher' ? teacherLayers : studentLayers,
    parameters: rs[0].parameters,
    msPerUpdate: median(rs.map((r) => r.msPerUpdate)),
    accuracy: mean(accuracies),
    accuracyMin: Math.min(...accuracies),
    accuracyMax: Math.max(...accuracies),
    f1: mean(rs.map((r) => r.f1)),
    perSeed: accuracies,
  };
});
if (values.json) console.log(JSON.stringify({ rows, inferenceMs: inference }, null, 2));
const pct = (a, b) => `${((100 * a) / b).toFixed(0)} %`;
console.log(
  `backend ${values.backend}; bert-classify, ${results.get('teacher')[0].steps} updates per run, seeds ${seeds.join(', ')}; majority class 0.500; held-out 160 messages`,
);
console.log(
  `inference, one pass over the 160 held-out messages (best of 5, interleaved): teacher ${inference[0].toFixed(0)} ms, ${studentLayers}-layer student ${inference[1].toFixed(0)} ms (${pct(inference[1], inference[0])})`,
);
console.log(
  '| model | layers | parameters | ms / update | accuracy, mean (range) | share of teacher | macro F1 | accuracy per seed |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---|');
for (const r of rows)
  console.log(
    `| ${r.label} | ${r.layers} | ${r.parameters.toLocaleString('en-US')} (${pct(r.parameters, rows[0].parameters)}) | ${r.msPerUpdate.toFixed(1)} | ${r.accuracy.toFixed(3)} (${r.accuracyMin.toFixed(3)}–${r.accuracyMax.toFixed(3)}) | ${pct(r.accuracy, teacherAccuracy)} | ${r.f1.toFixed(3)} | ${r.perSeed.map((a) => a.toFixed(3)).join(', ')} |`,
  );
