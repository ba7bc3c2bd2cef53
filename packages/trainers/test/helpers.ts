import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runConfigFrom, Trainer, type TrainResult } from '@tessera/trainers';

export const TEXT = [
  'The lighthouse keeper climbed the stairs each evening and lit the lamp above the sea.',
  'The ships that passed in the night saw the light and kept away from the rocks.',
  'In the morning the keeper put out the lamp, cleaned the glass, and wrote in the log.',
  'The log said the wind came from the west, the sea was calm, and the ships were safe.',
  'When the storm came the keeper stayed awake all night and watched the light turn.',
  'A small boat came to the island with bread, oil for the lamp, and letters from the town.',
  'The keeper read the letters by the lamp and wrote answers to send back with the boat.',
  'Year after year the keeper climbed the stairs, lit the lamp, and wrote in the log.',
];

/** A temporary directory holding corpus.txt (the lines above, repeated). */
export function workspace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-trainer-'));
  writeFileSync(join(dir, 'corpus.txt'), `${[...TEXT, ...TEXT, ...TEXT].join('\n')}\n`);
  return dir;
}

/** A tiny GPT causal-LM run on cpu over corpus.txt in `dir`. */
export function tinyGptConfig(dir: string, training: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    backend: 'cpu',
    seed: 5,
    tokenizer: { train: 'bpe', vocab_size: 300 },
    data: { train: { path: join(dir, 'corpus.txt') }, validation_fraction: 0.15, block_size: 16 },
    objective: { name: 'causal-lm' },
    model: { name: 'gpt', n_embd: 32, n_layer: 2, n_head: 4, resid_pdrop: 0.1, embd_pdrop: 0.1, attn_pdrop: 0.1 },
    optimizer: {
      name: 'adamw',
      lr: 0.003,
      clipGradNorm: 1,
      schedule: { name: 'cosine', warmupSteps: 2, totalSteps: 20 },
    },
    metrics: ['loss', 'accuracy'],
    training: {
      output_dir: join(dir, 'run'),
      max_steps: 6,
      per_device_train_batch_size: 4,
      logging_steps: 1,
      ...training,
    },
  };
}

/** Trainer options for tests: no output, no terminal, no SIGINT handler. */
export const quiet = { tty: false, log: () => {}, handleSigint: false };

/** Runs a config document to the end (optionally resuming) and frees the trainer. */
export async function run(doc: Record<string, unknown>, dir: string, resume?: string): Promise<TrainResult> {
  const trainer = await Trainer.create(runConfigFrom(doc, dir), { ...quiet, ...(resume ? { resume } : {}) });
  try {
    return await trainer.train();
  } finally {
    trainer.dispose();
  }
}
