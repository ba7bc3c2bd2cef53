import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runConfigFrom, Trainer, type TrainResult } from '@tessera/trainers';

const TEXT = [
  'The lighthouse keeper climbed the stairs each evening and lit the lamp above the sea.',
  'The ships that passed in the night saw the light and kept away from the rocks.',
  'In the morning the keeper put out the lamp, cleaned the glass, and wrote in the log.',
  'The log said the wind came from the west, the sea was calm, and the ships were safe.',
  'When the storm came the keeper stayed awake all night and watched the light turn.',
  'A small boat came to the island with bread, oil for the lamp, and letters from the town.',
];

/** A temporary directory holding corpus.txt. */
export function workspace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-adapt-'));
  writeFileSync(join(dir, 'corpus.txt'), `${[...TEXT, ...TEXT, ...TEXT].join('\n')}\n`);
  return dir;
}

/** A tiny GPT causal-LM run on cpu over corpus.txt. */
export function tinyGpt(dir: string, output: string, training: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    backend: 'cpu',
    seed: 5,
    tokenizer: { train: 'bpe', vocab_size: 300 },
    data: { train: { path: join(dir, 'corpus.txt') }, validation_fraction: 0.15, block_size: 16 },
    objective: { name: 'causal-lm' },
    model: { name: 'gpt', n_embd: 32, n_layer: 2, n_head: 4, resid_pdrop: 0.1, embd_pdrop: 0.1, attn_pdrop: 0 },
    optimizer: { name: 'adamw', lr: 0.01 },
    metrics: ['loss'],
    training: { output_dir: join(dir, output), max_steps: 4, per_device_train_batch_size: 4, ...training },
  };
}

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
