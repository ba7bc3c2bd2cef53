import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '@tessera/kernels-cpu';
import '@tessera/transformer';
import '@tessera/optim';
import '@tessera/data';
import { ConfigError, registry, tf, z } from '@tessera/tensor-core';
import { BUILTIN_CALLBACKS, runConfigFrom, type TrainerCallback, type TrainerContext } from '@tessera/trainers';
import { run, tinyGptConfig, workspace } from './helpers.js';

// A user callback, registered the way a plugin package does, then named in the config.
const seen: string[] = [];
registry.callback.register(
  'test-stop-at',
  (o: { step: number }): TrainerCallback => ({
    name: 'test-stop-at',
    onTrainBegin: () => void seen.push('begin'),
    onStepEnd(ctx: TrainerContext) {
      seen.push(`step ${ctx.state.step}`);
      if (ctx.state.step === o.step) {
        ctx.control.shouldStop = true;
        ctx.control.shouldSave = true;
        ctx.control.stopReason = 'test';
      }
    },
    onSave: (ctx) => void seen.push(`save ${ctx.state.step} ${ctx.lastCheckpoint?.split('/').at(-1)}`),
    onTrainEnd: () => void seen.push('end'),
  }),
  { options: z.object({ step: z.number().int() }).strict() },
);

describe('callbacks around the loop', () => {
  it('the built-ins are registered callbacks; a config callback runs after them and can stop and save', async () => {
    for (const name of BUILTIN_CALLBACKS) expect(registry.callback.has(name)).toBe(true);
    const dir = workspace();
    seen.length = 0;
    const before = tf.memory().numTensors;
    const result = await run(
      { ...tinyGptConfig(dir, { max_steps: 10 }), callbacks: [{ name: 'test-stop-at', step: 3 }] },
      dir,
    );
    expect(result.steps).toBe(3);
    expect(result.interrupted).toBe(false);
    expect(result.lastCheckpoint).toMatch(/checkpoint-3$/);
    // The checkpointer (built in, earlier in the list) had written the checkpoint when the user callback saw onSave.
    expect(seen).toEqual(['begin', 'step 1', 'step 2', 'step 3', 'save 3 checkpoint-3', 'end']);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('preprocess steps from the registry clean records before tokenization and their drops are counted', async () => {
    const dir = workspace();
    const doc = tinyGptConfig(dir, { max_steps: 2 });
    (doc.data as Record<string, unknown>).preprocess = [{ name: 'lowercase' }, { name: 'exact-dedup' }];
    const result = await run(doc, dir);
    // The corpus repeats each line three times: dedup keeps one of each.
    expect(result.data.skipped['dropped by exact-dedup']).toBeGreaterThan(0);
    expect(result.data.trainRecords + result.data.validationRecords).toBe(8);
    const tokenizer = JSON.parse(readFileSync(join(dir, 'run', 'tokenizer.json'), 'utf8'));
    // Merged tokens (beyond the byte alphabet) come from the lowercased text only.
    const merged = Object.keys(tokenizer.model.vocab).filter((t) => t.length > 1);
    expect(merged.length).toBeGreaterThan(10);
    expect(merged.filter((t) => /[A-Z]/.test(t))).toEqual([]);
  });

  it('every plugin block is checked before anything runs: all problems at once', () => {
    const dir = workspace();
    const doc = tinyGptConfig(dir);
    const bad = {
      ...doc,
      tokenizer: { train: 'bpe', vocab_size: 300, lowercase: true },
      objective: { name: 'causal-lm', probability: 0.2 },
      model: { ...(doc.model as object), n_heads: 4 },
      optimizer: { name: 'adamw', lr: 0.01, betas: [0.9] },
      data: { ...(doc.data as object), preprocess: [{ name: 'normalise' }] },
      callbacks: [{ name: 'test-stop-at' }],
    };
    let error: unknown;
    try {
      runConfigFrom(bad, dir);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const paths = (error as ConfigError).problems.map((p) => p.path).sort();
    expect(paths).toEqual(
      [
        'callbacks[0].step',
        'data.preprocess[0].name',
        'model.n_heads',
        'objective.probability',
        'optimizer.betas',
        'tokenizer.lowercase',
      ].sort(),
    );
    expect((error as Error).message).toMatch(
      /data\.preprocess\[0\]\.name: found "normalise"; expected a registered preprocess \(did you mean "normalize"\?\)/,
    );
  });
});
