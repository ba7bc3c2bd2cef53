// Dynamic int8 vs fp32, in one run (hold the bench lock):
//   flock /tmp/tessera-bench.lock node packages/adapt/bench/int8.mjs [--dir /tmp/tessera-int8-bench] [--fresh] [--gpt-steps 200]
//
// 1. Models (cached in --dir unless --fresh): configs/gpt-pretrain.yaml (--gpt-steps updates)
//    and configs/bert-classify.yaml as it stands, trained on backend native.
// 2. GEMM y = x·Wᵀ at a few shapes: TesseraInt8Linear (native, auto path = VNNI here; also
//    AVX2 and scalar forced) vs fp32 tf.matMul (native: OpenBLAS sgemm), best of N.
// 3. Models: each quantized with quantizeDynamic (every Linear but the tied output), saved
//    with saveQuantized; size on disk, GPT perplexity on held-out blocks and tokens/s of the
//    forward (batch 8 × 64 tokens and batch 1 × 64), BERT accuracy on the validation split
//    and examples/s.
// 4. The PyTorch peer (tools/bench-int8/torch_int8.py) runs right after on the same weights
//    (the fp32 checkpoints' safetensors) and the same inputs (written here): fp32 and
//    torch.ao.quantization.quantize_dynamic (fbgemm), same thread count.
// Prints one Markdown report; --json writes the figures as JSON too.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import '@tessera/kernels-cpu';
import { int8Dispatch, nativeCpuFeatures } from '@tessera/kernels-native';
import '@tessera/transformer';
import '@tessera/optim';
import '@tessera/data';
import { quantizeDynamic, saveQuantized } from '@tessera/adapt';
import { Tokenizer } from '@tessera/data';
import { int8Linear, loadConfig, Rng, tf, useBackend, z } from '@tessera/tensor-core';
import { listCheckpoints, runConfigFrom, Trainer } from '@tessera/trainers';
import { loadPretrained, saveSafetensors } from '@tessera/transformer';

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: '/tmp/tessera-int8-bench' },
    fresh: { type: 'boolean', default: false },
    json: { type: 'string' },
    'gpt-steps': { type: 'string', default: '200' },
    'no-torch': { type: 'boolean', default: false },
  },
});
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const CONFIGS = join(REPO, 'configs');
const dir = values.dir;
if (values.fresh) rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const log = (line) => console.error(line);
const loadBefore = loadavg();
const THREADS = availableParallelism();

const readConfig = (name) => loadConfig(join(CONFIGS, name), { schema: z.record(z.string(), z.unknown()) });

async function trained(name, config, overrides) {
  const out = join(dir, name);
  if (!listCheckpoints(out).length) {
    log(`training ${name} (${config})`);
    const doc = readConfig(config);
    const training = { ...doc.training, output_dir: out, ...overrides };
    const trainer = await Trainer.create(runConfigFrom({ ...doc, backend: 'native', training }, CONFIGS), {
      tty: false,
      handleSigint: false,
      log: () => {},
    });
    try {
      await trainer.train();
    } finally {
      trainer.dispose();
    }
  }
  return listCheckpoints(out).at(-1).path;
}

/** Best wall time of `reps` calls after 2 warm-ups (ms). */
async function best(fn, reps) {
  for (let i = 0; i < 2; i++) await fn();
  let min = Number.POSITIVE_INFINITY;
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await fn();
    min = Math.min(min, performance.now() - t);
  }
  return min;
}

// ---- GEMM ----------------------------------------------------------------------------
const SHAPES = [
  [1, 768, 768],
  [64, 768, 3072],
  [256, 1024, 1024],
  [512, 96, 384],
];

async function gemm() {
  await useBackend('native', { log: () => {} });
  const rng = new Rng('int8-bench');
  const rows = [];
  const exported = {};
  for (const [M, K, N] of SHAPES) {
    const x = tf.tensor2d(
      Float32Array.from({ length: M * K }, () => rng.normal()),
      [M, K],
    );
    const wf = tf.tensor2d(
      Float32Array.from({ length: N * K }, () => rng.normal() * 0.02),
      [N, K],
    );
    const q = tf.tensor2d(
      Int32Array.from({ length: N * K }, () => rng.int(255) - 127),
      [N, K],
      'int32',
    );
    const s = tf.fill([N], 0.0002);
    const reps = M * K * N > 5e7 ? 10 : 50;
    const flops = 2 * M * K * N;
    const run = async (f) => {
      const y = f();
      await y.data();
      y.dispose();
    };
    const fp32 = await best(() => run(() => tf.matMul(x, wf, false, true)), reps);
    const paths = {};
    const f = nativeCpuFeatures();
    for (const path of ['vnni', 'avx2', 'scalar']) {
      if (path === 'vnni' && !(f.avx512vnni && f.avx512bw)) continue;
      if (path === 'avx2' && !f.avx2) continue;
      if (path === 'scalar' && M * K * N > 5e7) continue; // minutes; the scalar path is the portable anchor, not a contender
      int8Dispatch.set(path);
      paths[path] = await best(() => run(() => int8Linear(x, q, s)), reps);
    }
    int8Dispatch.set('auto');
    const name = `${M}x${K}x${N}`;
    exported[`${name}.x`] = x;
    exported[`${name}.w`] = wf;
    rows.push({ shape: name, flops, fp32, paths });
    tf.dispose([q, s]);
  }
  await saveSafetensors(join(dir, 'gemm.safetensors'), exported);
  tf.dispose(Object.values(exported));
  return rows;
}

// ---- models --------------------------------------------------------------------------
const bytesOf = (d) => statSync(join(d, 'model.safetensors')).size + statSync(join(d, 'config.json')).size;

async function gptBench(checkpoint) {
  await useBackend('native', { log: () => {} });
  const tokenizer = await Tokenizer.fromFile(join(checkpoint, 'tokenizer.json'));
  // Held-out text: the end of the corpus (the config's validation split is its last 5 %).
  const text = readFileSync(join(REPO, 'packages/data/corpus/moby-dick-ch1-12.txt'), 'utf8');
  const ids = tokenizer.encode(text.slice(-Math.floor(text.length * 0.05))).ids;
  const T = 64;
  const nBlocks = Math.min(32, Math.floor(ids.length / T));
  const blocks = Int32Array.from(ids.slice(0, nBlocks * T));
  const batch = tf.tensor2d(blocks, [nBlocks, T], 'int32');
  await saveSafetensors(join(dir, 'gpt-blocks.safetensors'), { input_ids: batch });
  const measure = async (model) => {
    model.eval();
    const loss = tf.tidy(() => model.forward({ inputIds: batch, labels: batch }).loss.dataSync()[0]);
    const b8 = tf.slice(batch, [0, 0], [8, T]);
    const b1 = tf.slice(batch, [0, 0], [1, T]);
    const fwd = (b) => async () => {
      const y = tf.tidy(() => model.forward({ inputIds: b }).logits);
      await y.data();
      y.dispose();
    };
    const ms8 = await best(fwd(b8), 20);
    const ms1 = await best(fwd(b1), 40);
    tf.dispose([b8, b1]);
    return { ppl: Math.exp(loss), tokPerS8: (8 * T) / (ms8 / 1000), tokPerS1: T / (ms1 / 1000) };
  };
  const { model } = loadPretrained(checkpoint);
  const fp32 = await measure(model);
  const q = quantizeDynamic(model);
  const int8Dir = join(dir, 'gpt-int8');
  await saveQuantized(model, int8Dir);
  const int8 = await measure(model);
  const layers = q.report.counts;
  model.dispose();
  batch.dispose();
  return { fp32, int8, fp32Bytes: bytesOf(checkpoint), int8Bytes: bytesOf(int8Dir), layers, blocks: nBlocks, T };
}

/**
 * BERT on the validation split as explicit batches (written for the PyTorch peer, so both
 * run the same ids): [CLS] text [SEP] as the tokenizer encodes it, cut to the block size,
 * padded with 0 under an attention mask. Accuracy is the argmax against the labels; the
 * trainer's own evaluation (its objective's batching) is reported beside it.
 */
async function bertBench(checkpoint) {
  await useBackend('native', { log: () => {} });
  const doc = readConfig('bert-classify.yaml');
  const tokenizer = await Tokenizer.fromFile(join(checkpoint, 'tokenizer.json'));
  const T = doc.data.block_size;
  const records = readFileSync(join(REPO, 'data/spam-assassin/test.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const n = records.length;
  const ids = new Int32Array(n * T);
  const mask = new Int32Array(n * T);
  const labels = Int32Array.from(records, (r) => doc.objective.labels.indexOf(r.label));
  records.forEach((r, i) => {
    const e = tokenizer.encode(r.text).ids.slice(0, T);
    ids.set(e, i * T);
    mask.fill(1, i * T, i * T + e.length);
  });
  const inputIds = tf.tensor2d(ids, [n, T], 'int32');
  const attentionMask = tf.tensor2d(mask, [n, T], 'int32');
  await saveSafetensors(join(dir, 'bert-batch.safetensors'), {
    input_ids: inputIds,
    attention_mask: attentionMask,
    labels: tf.tensor1d(labels, 'int32'),
  });
  const measure = async (model) => {
    model.eval();
    const pred = tf.tidy(() => tf.argMax(model.forward({ inputIds, attentionMask }).logits, -1).dataSync());
    const accuracy = pred.reduce((a, p, i) => a + (p === labels[i] ? 1 : 0), 0) / n;
    const ms = await best(async () => {
      const y = tf.tidy(() => model.forward({ inputIds, attentionMask }).logits);
      await y.data();
      y.dispose();
    }, 10);
    return { accuracy, examplesPerS: n / (ms / 1000) };
  };
  const trainerAccuracy = async (adapter) => {
    const run = {
      ...doc,
      backend: 'native',
      model: { ...doc.model, from: checkpoint },
      tokenizer: { path: join(checkpoint, 'tokenizer.json') },
      // Never trained: max_steps only has to pass the schedule's warmup check.
      training: { ...doc.training, output_dir: join(dir, 'bert-eval'), max_steps: 20 },
      ...(adapter ? { adapter } : {}),
    };
    const trainer = await Trainer.create(runConfigFrom(run, CONFIGS), {
      tty: false,
      handleSigint: false,
      log: () => {},
    });
    try {
      const m = await trainer.evaluate();
      return { accuracy: m.accuracy, f1: m.macro_f1 };
    } finally {
      trainer.dispose();
    }
  };
  const { model } = loadPretrained(checkpoint);
  const fp32 = { ...(await measure(model)), trainer: await trainerAccuracy(undefined) };
  quantizeDynamic(model);
  const int8Dir = join(dir, 'bert-int8');
  await saveQuantized(model, int8Dir);
  const int8 = {
    ...(await measure(model)),
    trainer: await trainerAccuracy({ name: 'int8-dynamic', checkpoint: int8Dir }),
  };
  model.dispose();
  tf.dispose([inputIds, attentionMask]);
  return { fp32, int8, n, T, fp32Bytes: bytesOf(checkpoint), int8Bytes: bytesOf(int8Dir) };
}

// ---- run -----------------------------------------------------------------------------
const gptCheckpoint = await trained('gpt', 'gpt-pretrain.yaml', {
  max_steps: Number(values['gpt-steps']),
  save_steps: Number(values['gpt-steps']),
});
const bertCheckpoint = await trained('bert', 'bert-classify.yaml', { save_total_limit: 1 });
log('GEMM');
const gemmRows = await gemm();
log('GPT');
const gpt = await gptBench(gptCheckpoint);
log('BERT');
const bert = await bertBench(bertCheckpoint);
let torch;
if (!values['no-torch']) {
  log('PyTorch peer');
  const out = execFileSync(
    '/usr/bin/python3',
    [
      join(REPO, 'tools/bench-int8/torch_int8.py'),
      '--dir',
      dir,
      '--gpt',
      gptCheckpoint,
      '--bert',
      bertCheckpoint,
      '--threads',
      String(THREADS),
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  torch = JSON.parse(out);
}
const loadAfter = loadavg();

// ---- report --------------------------------------------------------------------------
const gf = (flops, ms) => (flops / (ms / 1000) / 1e9).toFixed(1);
const lines = [];
lines.push(
  `Machine: ${THREADS} threads, VNNI ${nativeCpuFeatures().avx512vnni}; load before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`,
);
lines.push(
  '',
  '| GEMM M×K×N | fp32 native (OpenBLAS) | int8 VNNI | int8 AVX2 | int8 scalar | PyTorch fp32 | PyTorch quantize_dynamic |',
);
lines.push('|---|---:|---:|---:|---:|---:|---:|');
for (const r of gemmRows) {
  const t = torch?.gemm?.[r.shape];
  const cell = (ms) => (ms === undefined ? '—' : `${gf(r.flops, ms)} (${ms.toFixed(3)} ms)`);
  lines.push(
    `| ${r.shape} | ${cell(r.fp32)} | ${cell(r.paths.vnni)} | ${cell(r.paths.avx2)} | ${cell(r.paths.scalar)} | ${cell(t?.fp32)} | ${cell(t?.int8)} |`,
  );
}
lines.push('', 'GEMM cells: GFLOP-equivalent/s (2·M·K·N / time), best wall time in parentheses.');
const tp = torch?.gpt;
lines.push('', '| GPT (gpt-pretrain.yaml) | size on disk | perplexity | tokens/s batch 8×64 | tokens/s batch 1×64 |');
lines.push('|---|---:|---:|---:|---:|');
lines.push(
  `| Tessera fp32 (native) | ${gpt.fp32Bytes.toLocaleString('en-US')} B | ${gpt.fp32.ppl.toFixed(3)} | ${gpt.fp32.tokPerS8.toFixed(0)} | ${gpt.fp32.tokPerS1.toFixed(0)} |`,
);
lines.push(
  `| Tessera int8 (native) | ${gpt.int8Bytes.toLocaleString('en-US')} B | ${gpt.int8.ppl.toFixed(3)} | ${gpt.int8.tokPerS8.toFixed(0)} | ${gpt.int8.tokPerS1.toFixed(0)} |`,
);
if (tp) {
  lines.push(
    `| PyTorch fp32 | — | ${tp.fp32.ppl.toFixed(3)} | ${tp.fp32.tokPerS8.toFixed(0)} | ${tp.fp32.tokPerS1.toFixed(0)} |`,
  );
  lines.push(
    `| PyTorch quantize_dynamic | ${tp.int8Bytes.toLocaleString('en-US')} B (state_dict) | ${tp.int8.ppl.toFixed(3)} | ${tp.int8.tokPerS8.toFixed(0)} | ${tp.int8.tokPerS1.toFixed(0)} |`,
  );
}
lines.push(
  '',
  `GPT: ${gpt.blocks} held-out blocks of ${gpt.T} tokens; int8 layers ${gpt.layers.quantizedLayers}, ${gpt.layers.quantizedWeights.toLocaleString('en-US')} weights int8, ${gpt.layers.floatWeights.toLocaleString('en-US')} float32 (embeddings, tied output).`,
);
const tb = torch?.bert;
lines.push(
  '',
  `| BERT (bert-classify.yaml) | size on disk | accuracy (${bert.n} held-out messages) | trainer eval accuracy / macro F1 | examples/s (batch ${bert.n}×${bert.T}) |`,
);
lines.push('|---|---:|---:|---:|---:|');
for (const [label, r, bytes] of [
  ['Tessera fp32 (native)', bert.fp32, bert.fp32Bytes],
  ['Tessera int8 (native)', bert.int8, bert.int8Bytes],
])
  lines.push(
    `| ${label} | ${bytes.toLocaleString('en-US')} B | ${r.accuracy.toFixed(4)} | ${r.trainer.accuracy.toFixed(4)} / ${r.trainer.f1.toFixed(4)} | ${r.examplesPerS.toFixed(0)} |`,
  );
if (tb) {
  lines.push(`| PyTorch fp32 | — | ${tb.fp32.accuracy.toFixed(4)} | — | ${tb.fp32.examplesPerS.toFixed(0)} |`);
  lines.push(
    `| PyTorch quantize_dynamic | ${tb.int8Bytes.toLocaleString('en-US')} B (state_dict) | ${tb.int8.accuracy.toFixed(4)} | — | ${tb.int8.examplesPerS.toFixed(0)} |`,
  );
}
if (torch) lines.push('', `PyTorch ${torch.torch}, quantized engine ${torch.engine}, ${torch.threads} threads.`);
console.log(lines.join('\n'));
if (values.json)
  writeFileSync(values.json, `${JSON.stringify({ gemmRows, gpt, bert, torch, loadBefore, loadAfter }, null, 2)}\n`);
if (!existsSync(join(dir, 'gpt-int8'))) process.exitCode = 1;
