import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdamW } from '@tessera/optim';
import { Rng, loadConfig, tf, trainStep, useBackend, z } from '@tessera/tensor-core';
import { TinyLm } from './tiny_lm.js';

/** Where the packaged configs live (apps/cli/configs). */
export const CONFIG_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'configs');
export const DEFAULT_SMOKE_CONFIG = resolve(CONFIG_DIR, 'smoke.yaml');

export const smokeConfigSchema = z
  .object({
    backend: z.string().default('auto'),
    seed: z.union([z.number().int(), z.string()]).default(1337),
    plugins: z.array(z.string()).default([]),
    corpus: z.string().describe('text file, relative to the config file'),
    model: z
      .object({
        blockSize: z.number().int().positive(),
        nLayer: z.number().int().positive(),
        nHead: z.number().int().positive(),
        nEmbd: z.number().int().positive(),
        dropout: z.number().min(0).lt(1).default(0),
      })
      .strict(),
    training: z
      .object({
        steps: z.number().int().positive(),
        batchSize: z.number().int().positive(),
        learningRate: z.number().positive(),
        weightDecay: z.number().min(0).default(0.01),
        logEvery: z.number().int().positive().default(10),
      })
      .strict(),
  })
  .strict();
export type SmokeConfig = z.output<typeof smokeConfigSchema>;

export interface SmokeResult {
  backend: string;
  losses: number[];
  firstLoss: number;
  lastLoss: number;
  parameters: number;
  tokensPerSecond: number;
  sample: string;
}

/**
 * The smoke job: trains a tiny character-level GPT (@tessera/transformer's) on the bundled
 * corpus with @tessera/optim's AdamW (the fused update), printing the loss as it falls.
 */
export async function runSmoke(
  configFile: string = DEFAULT_SMOKE_CONFIG,
  overrides: string[] = [],
  log: (line: string) => void = (l) => console.log(l),
): Promise<SmokeResult> {
  const config = loadConfig(configFile, { schema: smokeConfigSchema, overrides });
  const { registry } = await import('@tessera/tensor-core');
  await registry.loadPlugins(config.plugins);
  const backend = await useBackend(config.backend, { log });

  const text = readFileSync(resolve(dirname(configFile), config.corpus), 'utf8');
  const chars = [...new Set(text)].sort();
  const index = new Map(chars.map((c, i) => [c, i]));
  const data = Int32Array.from(text, (c) => index.get(c)!);
  const { blockSize } = config.model;
  if (data.length <= blockSize + 1) {
    throw new Error(`The corpus has ${data.length} characters; it needs more than blockSize + 1 = ${blockSize + 1}.`);
  }

  const rng = new Rng(config.seed);
  const model = new TinyLm({ ...config.model, vocabSize: chars.length }, rng.fork('init'));
  const dataRng = rng.fork('data');
  const { steps, batchSize, learningRate, weightDecay, logEvery } = config.training;
  log(
    `smoke: tiny GPT, ${model.parameterCount().toLocaleString('en-US')} parameters, vocabulary ${chars.length} characters, ` +
      `${data.length.toLocaleString('en-US')} characters of text, ${steps} steps of batch ${batchSize}x${blockSize}`,
  );

  const optimizer = new AdamW(model, { lr: learningRate, weightDecay });
  const parameters = model.namedParameters().length;
  const batch = () => {
    const x = new Int32Array(batchSize * blockSize);
    const y = new Int32Array(batchSize * blockSize);
    for (let b = 0; b < batchSize; b++) {
      const start = dataRng.int(data.length - blockSize - 1);
      x.set(data.subarray(start, start + blockSize), b * blockSize);
      y.set(data.subarray(start + 1, start + blockSize + 1), b * blockSize);
    }
    return { x: tf.tensor2d(x, [batchSize, blockSize], 'int32'), y: tf.tensor2d(y, [batchSize, blockSize], 'int32') };
  };

  const losses: number[] = [];
  const started = performance.now();
  for (let step = 1; step <= steps; step++) {
    const { x, y } = batch();
    const loss = trainStep(
      model,
      () => model.loss(x, y),
      (grads) => optimizer.step(grads),
    );
    tf.dispose([x, y]);
    losses.push(loss);
    if (step === 1 || step % logEvery === 0 || step === steps)
      log(`step ${String(step).padStart(4)}  loss ${loss.toFixed(4)}`);
  }
  const seconds = (performance.now() - started) / 1000;
  const tokensPerSecond = (steps * batchSize * blockSize) / seconds;

  const sample = generate(model, data.subarray(0, 8), 64, chars);
  const firstLoss = mean(losses.slice(0, Math.min(5, losses.length)));
  const lastLoss = mean(losses.slice(-Math.min(5, losses.length)));
  log(
    `smoke: loss ${firstLoss.toFixed(3)} -> ${lastLoss.toFixed(3)} (mean of first and last 5 steps) on ${backend.name}, ` +
      `${Math.round(tokensPerSecond).toLocaleString('en-US')} tokens/s`,
  );
  log(`smoke: sample: ${JSON.stringify(sample)}`);
  optimizer.dispose();
  model.dispose();
  return { backend: backend.name, losses, firstLoss, lastLoss, parameters, tokensPerSecond, sample };
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Greedy continuation of `prompt`, for a glance at what the model learned. */
function generate(model: TinyLm, prompt: Int32Array, length: number, chars: string[]): string {
  model.eval();
  const ids = Array.from(prompt);
  for (let i = 0; i < length; i++) {
    const context = ids.slice(-model.shape.blockSize);
    const next = tf.tidy(() => {
      const logits = model.logits(tf.tensor2d(context, [1, context.length], 'int32')); // [1, T, V]
      return tf.argMax(tf.reshape(tf.slice(logits, [0, context.length - 1, 0], [1, 1, -1]), [-1])).dataSync()[0]!;
    });
    ids.push(next);
  }
  model.train();
  return ids.map((i) => chars[i]).join('');
}
