// LoRA vs full fine-tuning, measured on the bundled tasks, in one run:
//   node packages/adapt/bench/adapt.mjs [--backend native] [--dir /tmp/tessera-adapt-bench] [--fresh]
//
// 1. Bases (cached in --dir unless --fresh): configs/bert-pretrain.yaml (MLM + NSP on Moby-Dick)
//    and configs/gpt-pretrain.yaml (causal LM on Moby-Dick), as the configs stand.
// 2. BERT: configs/bert-classify.yaml (spam vs ham) started from the BERT base, fully
//    fine-tuned and with LoRA (r 8, α 16 on query/value; the new classifier trained in full).
// 3. GPT: the GPT base fine-tuned on the spam-assassin messages as text (a new domain),
//    fully and with LoRA (r 8, α 16 on c_attn).
// Each pair runs from the same base, data, seed, schedule and number of updates; LoRA gets
// a larger learning rate (the usual practice: its update is low-rank). Reported per run:
// trainable parameters and their share, optimizer-state bytes (AdamW's two moments, counted
// from the optimizer's state dict), the median wall time of an update (the first 3 left
// out), and the accuracy / perplexity reached. Prints a Markdown table; --json for JSON.
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
import { disposeStateDict } from '@tessera/optim';
import { loadConfig, z } from '@tessera/tensor-core';
import { listCheckpoints, runConfigFrom, Trainer } from '@tessera/trainers';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'native' },
    dir: { type: 'string', default: '/tmp/tessera-adapt-bench' },
    fresh: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    'gpt-steps': { type: 'string', default: '150' },
  },
});
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const CONFIGS = join(REPO, 'configs');
const dir = values.dir;
if (values.fresh) rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const log = (line) => console.error(line);

function readConfig(name) {
  return loadConfig(join(CONFIGS, name), { schema: z.record(z.string(), z.unknown()) });
}

/** Per-update wall times, from a callback around each update. */
function timer() {
  const times = [];
  let started = 0;
  return {
    times,
    callback: {
      name: 'bench-timer',
      onStepBegin() {
        started = performance.now();
      },
      onStepEnd() {
        times.push(performance.now() - started);
      },
    },
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : Number.NaN;
};

async function train(label, doc, { evaluateFirst = false } = {}) {
  const t = timer();
  const trainer = await Trainer.create(runConfigFrom(doc, CONFIGS), {
    tty: false,
    handleSigint: false,
    log: (l) => log(`  [${label}] ${l}`),
    callbacks: [t.callback],
  });
  try {
    const before = evaluateFirst ? await trainer.evaluate() : undefined;
    const result = await trainer.train();
    const total = trainer.model.parameterCount();
    const trainable = trainer.model.parameterCount({ trainableOnly: true });
    const state = trainer.optimizer.stateDict();
    let stateBytes = 0;
    for (const s of Object.values(state.state)) for (const x of Object.values(s.tensors)) stateBytes += x.size * 4;
    disposeStateDict(state);
    const final = await trainer.evaluate();
    return {
      label,
      total,
      trainable,
      share: trainable / total,
      stateBytes,
      msPerUpdate: median(t.times.slice(3)),
      steps: result.steps,
      wallSeconds: result.wallSeconds,
      before,
      final,
    };
  } finally {
    trainer.dispose();
  }
}

async function base(name, config) {
  const out = join(dir, name);
  if (!listCheckpoints(out).length) {
    log(`training the ${name} base (${config})`);
    const doc = readConfig(config);
    await train(name, {
      ...doc,
      backend: values.backend,
      training: { ...doc.training, output_dir: out, save_steps: doc.training.max_steps },
    });
  }
  return listCheckpoints(out).at(-1).path;
}

const LORA = { name: 'lora', r: 8, lora_alpha: 16, lora_dropout: 0.05 };

async function bertPair() {
  const from = await base('bert-base', 'bert-pretrain.yaml');
  const doc = readConfig('bert-classify.yaml');
  const run = (label, extra) =>
    train(label, {
      ...doc,
      backend: values.backend,
      tokenizer: { path: join(from, 'tokenizer.json') },
      // The base's position table has bert-pretrain's 64 positions.
      data: { ...doc.data, block_size: 64 },
      model: {
        name: 'bert',
        head: 'sequence-classification',
        from,
        allow_missing: ['classifier.*'],
        ignore_unexpected: ['cls.*'],
        hidden_dropout_prob: 0.1,
      },
      training: {
        ...doc.training,
        output_dir: join(dir, label),
        early_stopping_patience: null,
        save_total_limit: 2,
      },
      ...extra,
    });
  const full = await run('bert-classify full', {});
  const lora = await run('bert-classify LoRA', {
    adapter: { ...LORA, target_modules: ['query', 'value'] },
    optimizer: { ...doc.optimizer, lr: 0.005 },
  });
  return [full, lora];
}

async function gptPair() {
  const from = await base('gpt-base', 'gpt-pretrain.yaml');
  const doc = readConfig('gpt-pretrain.yaml');
  const steps = Number(values['gpt-steps']);
  const spam = join(REPO, 'data/spam-assassin/train.jsonl');
  const run = (label, extra) =>
    train(
      label,
      {
        ...doc,
        backend: values.backend,
        tokenizer: { path: join(from, 'tokenizer.json') },
        data: { ...doc.data, train: { path: spam, format: 'jsonl', text_field: 'text' }, validation_fraction: 0.1 },
        model: { name: 'gpt', from },
        optimizer: { ...doc.optimizer, lr: 0.001, schedule: { name: 'cosine', warmupSteps: 10, minRatio: 0.1 } },
        training: {
          ...doc.training,
          output_dir: join(dir, label),
          max_steps: steps,
          eval_steps: steps,
          save_steps: steps,
          sample_prompt: '',
          save_total_limit: 2,
        },
        ...extra,
      },
      { evaluateFirst: true },
    );
  const full = await run('gpt fine-tune full', {});
  const lora = await run('gpt fine-tune LoRA', {
    adapter: { ...LORA, target_modules: ['c_attn'] },
    // No weight-decay groups: the biases and norms they name are frozen under LoRA.
    optimizer: {
      name: 'adamw',
      lr: 0.005,
      clipGradNorm: 1,
      schedule: { name: 'cosine', warmupSteps: 10, minRatio: 0.1 },
    },
  });
  return [full, lora];
}

const rows = [...(await bertPair()), ...(await gptPair())];
if (values.json) console.log(JSON.stringify(rows, null, 2));
const fmt = (n) => n.toLocaleString('en-US');
const quality = (r) =>
  r.final.accuracy !== undefined && r.label.startsWith('bert')
    ? `accuracy ${r.final.accuracy.toFixed(3)}, macro F1 ${r.final.macro_f1?.toFixed(3)}`
    : `perplexity ${r.before?.perplexity?.toFixed(1)} → ${r.final.perplexity?.toFixed(1)}`;
console.log(`backend ${values.backend}`);
console.log('| run | trainable parameters | share | optimizer state | ms / update | updates | reached |');
console.log('|---|---:|---:|---:|---:|---:|---|');
for (const r of rows)
  console.log(
    `| ${r.label} | ${fmt(r.trainable)} of ${fmt(r.total)} | ${(100 * r.share).toFixed(2)} % | ${fmt(r.stateBytes)} B | ${r.msPerUpdate.toFixed(1)} | ${r.steps} | ${quality(r)} |`,
  );
