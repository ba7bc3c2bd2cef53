// Streaming vs in-memory training on the same model, in one run:
//   node packages/trainers/bench/streaming.mjs [--gb 1] [--steps 200] [--dir /tmp/tessera-stream]
// Writes (once) a corpus of uint16 token shards of --gb gigabytes, then trains the same GPT
// twice for --steps updates: from the shards (read on demand), and from the same kind of
// windows held in memory (a dataset plugin over a Uint16Array of one shard's size).
// Prints tokens/s of both, their ratio, and the peak RSS of each run.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import '@tessera/kernels-cpu';
import '@tessera/transformer';
import '@tessera/optim';
import { trainByteLevelBpe, writeShards } from '@tessera/data';
import { registry, z } from '@tessera/tensor-core';
import { runConfigFrom, Trainer } from '@tessera/trainers';

const { values } = parseArgs({
  options: {
    gb: { type: 'string', default: '1' },
    steps: { type: 'string', default: '200' },
    dir: { type: 'string', default: '/tmp/tessera-stream' },
    backend: { type: 'string', default: 'native' },
  },
});
const tokens = Math.round((Number(values.gb) * 2 ** 30) / 2);
const dir = values.dir;
const VOCAB = 512;

function* randomDocs(total, seed) {
  // A Markov-ish stream (not uniform noise) so the model has something to learn.
  let x = seed >>> 0;
  let prev = 0;
  for (let left = total; left > 0; ) {
    const doc = new Uint16Array(Math.min(left, 1 << 20));
    for (let i = 0; i < doc.length; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      prev = (prev * 7 + (x >>> 16)) % VOCAB;
      doc[i] = prev;
    }
    left -= doc.length;
    yield doc;
  }
}

mkdirSync(dir, { recursive: true });
const shards = join(dir, `shards-${values.gb}gb`);
if (!existsSync(join(shards, 'index.json'))) {
  const t0 = performance.now();
  await writeShards(randomDocs(tokens, 1), { dir: shards, shardTokens: 1 << 26 });
  console.log(
    `wrote ${tokens.toLocaleString('en-US')} tokens to ${shards} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
}
const tokenizerPath = join(dir, 'tokenizer.json');
if (!existsSync(tokenizerPath)) await (await trainByteLevelBpe(['a b c'], { vocabSize: VOCAB })).save(tokenizerPath);

// The in-memory peer: the same windows, from an array instead of files.
const memory = Uint16Array.from(randomDocs(1 << 24, 2).next().value);
registry.dataset.register(
  'token-array',
  () => ({
    length: memory.length,
    windows(size, overlap = 0) {
      const stride = size - overlap;
      const length = Math.floor((memory.length - size) / stride) + 1;
      return { length, dropped: 0, get: (i) => Array.from(memory.subarray(i * stride, i * stride + size)) };
    },
  }),
  { options: z.object({}).strict() },
);

async function run(train) {
  const doc = {
    backend: values.backend,
    seed: 1,
    tokenizer: { name: 'hf-json', path: tokenizerPath },
    data: { train, validation_fraction: 0.0001, block_size: 128 },
    objective: { name: 'causal-lm' },
    model: {
      name: 'gpt',
      n_embd: 128,
      n_layer: 4,
      n_head: 4,
      resid_pdrop: 0,
      embd_pdrop: 0,
      attn_pdrop: 0,
      vocab_size: VOCAB,
    },
    optimizer: { name: 'adamw', lr: 0.001 },
    training: {
      output_dir: join(dir, `run-${train.name}`),
      max_steps: Number(values.steps),
      per_device_train_batch_size: 8,
      logging_steps: 1000,
      save_steps: null,
      // Evaluation is not what is measured: two batches on both sides.
      max_eval_batches: 2,
    },
  };
  const trainer = await Trainer.create(runConfigFrom(doc, dir), { tty: false, log: () => {}, handleSigint: false });
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  const t0 = performance.now();
  const result = await trainer.train();
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(timer);
  trainer.dispose();
  return {
    tokensPerSecond: (result.steps * 8 * 128) / seconds,
    peakRssMb: peak / 2 ** 20,
    lastLoss: result.losses.at(-1),
  };
}

// Alternating, twice each: the first run of a process also warms the JIT and the buffer pool.
const runs = { streamed: [], inMemory: [] };
for (let i = 0; i < 2; i++) {
  runs.inMemory.push(await run({ name: 'token-array' }));
  runs.streamed.push(await run({ name: 'token-shards', path: shards }));
}
const streamed = runs.streamed[1];
const inMemory = runs.inMemory[1];
console.log(
  JSON.stringify(
    {
      corpusTokens: tokens,
      corpusGB: Number(values.gb),
      steps: Number(values.steps),
      streamed,
      inMemory,
      firstRuns: { streamed: runs.streamed[0].tokensPerSecond, inMemory: runs.inMemory[0].tokensPerSecond },
      ratio: streamed.tokensPerSecond / inMemory.tokensPerSecond,
    },
    null,
    2,
  ),
);
