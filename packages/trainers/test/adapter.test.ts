import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '@tessera/kernels-cpu';
import '@tessera/transformer';
import '@tessera/optim';
import '@tessera/data';
import { ConfigError, registry, tf, z } from '@tessera/tensor-core';
import { type AdapterContext, listCheckpoints, type ModelAdapter, runConfigFrom } from '@tessera/trainers';
import { loadSafetensors, type PretrainedModel, saveSafetensors } from '@tessera/transformer';
import { run, tinyGptConfig, workspace } from './helpers.js';

/**
 * BitFit (train the biases only) as a test adapter: the trainer must drive any registered
 * adapter through ModelAdapter alone, never by its name.
 */
const seen: AdapterContext[] = [];
registry.adapter.register(
  'test-bitfit',
  (options: { file: string }, context: AdapterContext): ModelAdapter => {
    seen.push(context);
    const isBias = (name: string) => name.endsWith('.bias');
    return {
      name: 'test-bitfit',
      apply(model: PretrainedModel) {
        for (const [name, p] of model.namedParameters()) p.trainable = isBias(name);
      },
      async save(model, dir) {
        const biases = Object.fromEntries(model.namedParameters().filter(([n]) => isBias(n)));
        await saveSafetensors(
          join(dir, options.file),
          Object.fromEntries(Object.entries(biases).map(([n, p]) => [n, p.value])),
        );
      },
      load(model, dir) {
        const { tensors } = loadSafetensors(join(dir, options.file));
        model.loadStateDict(tensors, { strict: false });
        tf.dispose(Object.values(tensors));
      },
      isSavedIn: (dir) => existsSync(join(dir, options.file)),
    };
  },
  { options: z.object({ file: z.string().default('bitfit.safetensors') }).strict() },
);

const withAdapter = (dir: string, training: Record<string, unknown>) => ({
  ...tinyGptConfig(dir, training),
  adapter: { name: 'test-bitfit' },
});

describe('Trainer with an adapter', () => {
  it('trains only what the adapter leaves trainable and checkpoints the adapter alone', async () => {
    const dir = workspace();
    const result = await run(withAdapter(dir, { max_steps: 3, save_steps: 3 }), dir);
    expect(result.steps).toBe(3);
    expect(seen.at(-1)).toEqual({ baseModel: 'gpt' });
    const [checkpoint] = listCheckpoints(join(dir, 'run'));
    const files = ['bitfit.safetensors', 'optimizer.json', 'trainer_state.json', 'tokenizer.json'];
    for (const f of files) expect(existsSync(join(checkpoint!.path, f)), f).toBe(true);
    expect(existsSync(join(checkpoint!.path, 'model.safetensors'))).toBe(false);
    const optimizerParams = Object.keys(
      JSON.parse(readFileSync(join(checkpoint!.path, 'optimizer.json'), 'utf8')).state,
    );
    expect(optimizerParams.length).toBeGreaterThan(0);
    expect(optimizerParams.every((n) => n.endsWith('.bias'))).toBe(true);
  });

  it('resumes exactly from an adapter-only checkpoint', async () => {
    const a = workspace();
    const full = await run(withAdapter(a, { max_steps: 5 }), a);
    const b = workspace();
    await run(withAdapter(b, { max_steps: 2 }), b);
    const rest = await run(withAdapter(b, { max_steps: 5 }), b, join(b, 'run'));
    expect(rest.losses).toEqual(full.losses.slice(2));
  });

  it('checks the adapter block with the rest of the config', () => {
    const dir = workspace();
    const bad = { ...tinyGptConfig(dir), adapter: { name: 'test-bitfit', file: 3 } };
    expect(() => runConfigFrom(bad, dir)).toThrow(ConfigError);
    expect(() => runConfigFrom(bad, dir)).toThrow(/adapter\.file/);
    const unknown = { ...tinyGptConfig(dir), adapter: { name: 'test-bitfits' } };
    expect(() => runConfigFrom(unknown, dir)).toThrow(/a registered adapter \(did you mean "test-bitfit"\?\)/);
  });
});
