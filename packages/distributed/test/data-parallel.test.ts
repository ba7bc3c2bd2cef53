import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '@tessera/kernels-cpu';
import '@tessera/transformer';
import '@tessera/optim';
import '@tessera/data';
import { maxParamDiff, runAlone, runRanks, workspace } from './helpers.js';

/**
 * fp32 tolerance of the equality: 2 ranks sum two half-batch gradients where 1 process sums
 * one batch, so reductions round in another order; Adam's normalised steps carry that into
 * the weights. Measured after 4 updates: GPT 1.4e-7, BERT 6e-8, T5 1.2e-7 (largest |Δ| of
 * any weight). A run that trains on half the data instead differs by > 1e-3 (the control).
 */
const TOLERANCE = 1e-6;

type Family = {
  name: string;
  key: string;
  config: (dir: string, batch: number, steps: number) => Record<string, unknown>;
};

const common = (dir: string, batch: number, steps: number, sub: string) => ({
  backend: 'cpu',
  seed: 11,
  optimizer: { name: 'adamw', lr: 0.003, clipGradNorm: 1, schedule: { name: 'linear', warmupSteps: 2 } },
  metrics: ['loss'],
  training: {
    output_dir: join(dir, sub),
    max_steps: steps,
    per_device_train_batch_size: batch,
    logging_steps: 1,
    save_steps: 2,
  },
});

const FAMILIES: Family[] = [
  {
    name: 'GPT (causal-lm)',
    key: 'gpt',
    config: (dir, batch, steps) => ({
      ...common(dir, batch, steps, `gpt-${batch}`),
      tokenizer: { train: 'bpe', vocab_size: 300 },
      data: { train: { path: join(dir, 'corpus.txt') }, block_size: 16 },
      objective: { name: 'causal-lm' },
      model: { name: 'gpt', n_embd: 32, n_layer: 2, n_head: 4, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 },
    }),
  },
  {
    name: 'BERT (masked LM, masks drawn per example)',
    key: 'bert',
    config: (dir, batch, steps) => ({
      ...common(dir, batch, steps, `bert-${batch}`),
      tokenizer: { train: 'wordpiece', vocab_size: 300 },
      data: { train: { path: join(dir, 'corpus.txt') }, block_size: 24 },
      objective: { name: 'mlm', next_sentence: false },
      model: {
        name: 'bert',
        head: 'masked-lm',
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 64,
        hidden_dropout_prob: 0,
        attention_probs_dropout_prob: 0,
      },
    }),
  },
  {
    name: 'T5 (span corruption)',
    key: 't5',
    config: (dir, batch, steps) => ({
      ...common(dir, batch, steps, `t5-${batch}`),
      tokenizer: { train: 'unigram', vocab_size: 300 },
      data: { train: { path: join(dir, 'corpus.txt') }, block_size: 24 },
      objective: { name: 'span-corruption' },
      model: { name: 't5', d_model: 32, d_kv: 8, d_ff: 64, num_layers: 2, num_heads: 4, dropout_rate: 0 },
    }),
  },
];

describe('data-parallel training under mpirun', () => {
  for (const family of FAMILIES) {
    it(`${family.name}: 2 ranks × batch 2 give the parameters of 1 process × batch 4 after 4 updates`, async () => {
      const dir = workspace();
      const alone = await runAlone(family.config(dir, 4, 4), dir);
      const ranks = runRanks(2, family.config(dir, 2, 4), dir);
      expect(ranks.steps).toBe(4);
      for (let i = 0; i < 4; i++) expect(ranks.losses[i]!).toBeCloseTo(alone.losses[i]!, 4);
      const { diff, name, count } = maxParamDiff(
        join(dir, `${family.key}-4`, 'checkpoint-4', 'model.safetensors'),
        join(dir, `${family.key}-2`, 'checkpoint-4', 'model.safetensors'),
      );
      expect(count).toBeGreaterThan(5);
      expect(diff, `largest difference in ${name}`).toBeLessThan(TOLERANCE);
    }, 240_000);
  }

  it('control: without the all-reduce (one rank of batch 2 alone) the weights differ by far more than the tolerance', async () => {
    const dir = workspace();
    const gpt = FAMILIES[0]!;
    await runAlone(gpt.config(dir, 4, 4), dir);
    await runAlone(gpt.config(dir, 2, 4), dir);
    const { diff } = maxParamDiff(
      join(dir, 'gpt-4', 'checkpoint-4', 'model.safetensors'),
      join(dir, 'gpt-2', 'checkpoint-4', 'model.safetensors'),
    );
    expect(diff).toBeGreaterThan(1e-3);
  }, 120_000);

  it('gradient accumulation: 2 ranks × batch 1 × 2 micro-steps equal 1 process × batch 4 (no sync on the inner step)', async () => {
    const dir = workspace();
    const gpt = FAMILIES[0]!;
    const alone = await runAlone(gpt.config(dir, 4, 4), dir);
    const accumulated = gpt.config(dir, 1, 4) as { training: Record<string, unknown> };
    accumulated.training.gradient_accumulation_steps = 2;
    const ranks = runRanks(2, accumulated, dir);
    // One all-reduce of gradients per update, however many micro-steps it has.
    expect(ranks.timings.steps).toBe(4);
    for (let i = 0; i < 4; i++) expect(ranks.losses[i]!).toBeCloseTo(alone.losses[i]!, 4);
    const { diff } = maxParamDiff(
      join(dir, 'gpt-4', 'checkpoint-4', 'model.safetensors'),
      join(dir, 'gpt-1', 'checkpoint-4', 'model.safetensors'),
    );
    expect(diff).toBeLessThan(TOLERANCE);
  }, 240_000);

  it('resume on another world size: 2 ranks for 2 updates, then 1 process for 2 more, equal 4 updates alone', async () => {
    const dir = workspace();
    const gpt = FAMILIES[0]!;
    // A fixed schedule length, so a run of 2 updates follows the same lr curve as one of 4.
    const config = (batch: number, steps: number, out: string) => {
      const c = gpt.config(dir, batch, steps) as {
        optimizer: { schedule: Record<string, unknown> };
        training: Record<string, unknown>;
      };
      c.optimizer.schedule.totalSteps = 10;
      c.training.output_dir = join(dir, out);
      return c;
    };
    const alone = await runAlone(config(4, 4, 'alone'), dir);
    const first = runRanks(2, config(2, 2, 'two-ranks'), dir);
    expect(first.steps).toBe(2);
    // The checkpoint's data position counts the examples of all ranks: one process of batch 4 continues it.
    const rest = await runAlone(config(4, 4, 'resumed'), dir, join(dir, 'two-ranks', 'checkpoint-2'));
    expect(rest.steps).toBe(4);
    const losses = [...first.losses, ...rest.losses];
    expect(losses).toHaveLength(4);
    for (let i = 0; i < 4; i++) expect(losses[i]!).toBeCloseTo(alone.losses[i]!, 4);
    const { diff } = maxParamDiff(
      join(dir, 'alone', 'checkpoint-4', 'model.safetensors'),
      join(dir, 'resumed', 'checkpoint-4', 'model.safetensors'),
    );
    expect(diff).toBeLessThan(TOLERANCE);
  }, 240_000);
});
