import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '@tessera/kernels-cpu';
import '@tessera/transformer';
import '@tessera/optim';
import '@tessera/data';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, loadAdapter } from '@tessera/adapt';
import { tf } from '@tessera/tensor-core';
import { listCheckpoints, runConfigFrom, Trainer } from '@tessera/trainers';
import { loadPretrained, loadSafetensors } from '@tessera/transformer';
import { quiet, run, tinyGpt, workspace } from './helpers.js';

describe('LoRA from a run config', () => {
  it('fine-tunes a base run with adapter: { name: lora }, saves only the adapter, and resumes exactly', async () => {
    const dir = workspace();
    await run(tinyGpt(dir, 'base', { save_steps: 4 }), dir);
    const base = listCheckpoints(join(dir, 'base')).at(-1)!.path;
    const lora = (output: string, maxSteps: number) => ({
      ...tinyGpt(dir, output, { max_steps: maxSteps, save_steps: 2 }),
      tokenizer: { path: join(base, 'tokenizer.json') },
      model: { name: 'gpt', from: base, resid_pdrop: 0.1, embd_pdrop: 0.1 },
      adapter: { name: 'lora', r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: ['c_attn'] },
    });
    const full = await run(lora('lora', 4), dir);
    expect(full.losses).toHaveLength(4);
    const checkpoint = listCheckpoints(join(dir, 'lora')).at(-1)!.path;
    const files = readdirSync(checkpoint).sort();
    expect(files).toEqual(
      [
        ADAPTER_CONFIG,
        ADAPTER_WEIGHTS,
        'optimizer.json',
        'optimizer.safetensors',
        'tokenizer.json',
        'trainer_state.json',
      ].sort(),
    );
    const config = JSON.parse(readFileSync(join(checkpoint, ADAPTER_CONFIG), 'utf8'));
    expect(config).toMatchObject({ peft_type: 'LORA', r: 4, base_model_name_or_path: base, fan_in_fan_out: true });
    // The optimizer held state for the adapter alone.
    const optimizerState = JSON.parse(readFileSync(join(checkpoint, 'optimizer.json'), 'utf8')).state;
    expect(Object.keys(optimizerState).sort()).toEqual([
      'transformer.h.0.attn.c_attn.lora_A.weight',
      'transformer.h.0.attn.c_attn.lora_B.weight',
      'transformer.h.1.attn.c_attn.lora_A.weight',
      'transformer.h.1.attn.c_attn.lora_B.weight',
    ]);
    // It learned something: lora_B moved off zero, and the base + adapter loads back for inference.
    const { tensors } = loadSafetensors(join(checkpoint, ADAPTER_WEIGHTS));
    const bNorm = tf.tidy(
      () => tf.norm(tensors['base_model.model.transformer.h.0.attn.c_attn.lora_B.weight']!).dataSync()[0]!,
    );
    expect(bNorm).toBeGreaterThan(0);
    tf.dispose(Object.values(tensors));
    const { model } = loadPretrained(base);
    loadAdapter(model, checkpoint);
    expect(model.namedParameters({ trainableOnly: true })).toHaveLength(4);
    model.dispose();

    // Exact resume from the adapter-only checkpoint at step 2.
    await run(lora('resumed', 2), dir);
    const rest = await run(lora('resumed', 4), dir, join(dir, 'resumed'));
    expect(rest.losses).toEqual(full.losses.slice(2));
    expect(existsSync(join(dir, 'resumed', 'checkpoint-4', 'model.safetensors'))).toBe(false);
  });

  it('LoRA on a pruned base: the masks on the base stay through training, the adapters train', async () => {
    const dir = workspace();
    await run(tinyGpt(dir, 'base', { save_steps: 4 }), dir);
    const base = listCheckpoints(join(dir, 'base')).at(-1)!.path;
    const doc = {
      ...tinyGpt(dir, 'lora-pruned', { max_steps: 4, save_steps: 4 }),
      tokenizer: { path: join(base, 'tokenizer.json') },
      model: { name: 'gpt', from: base },
      adapter: { name: 'lora', r: 4, lora_alpha: 8, target_modules: ['c_attn'] },
      callbacks: [{ name: 'magnitude-pruning', sparsity: 0.5 }],
    };
    const trainer = await Trainer.create(runConfigFrom(doc, dir), quiet);
    try {
      await trainer.train();
      const own = new Map(trainer.model.namedParameters());
      // Every pruned base weight (c_attn, c_proj, c_fc; never the adapters) is half zeros after the updates.
      const pruned = [...own.keys()].filter((n) => /\.(c_attn|c_proj|c_fc)\.weight$/.test(n));
      expect(pruned).toHaveLength(8);
      for (const name of pruned) {
        const values = own.get(name)!.value.dataSync();
        expect([...values].filter((v) => v === 0).length, name).toBe(Math.floor(0.5 * values.length));
      }
      // lora_B starts at zero: it moved, so the adapters trained.
      const adapters = [...own.keys()].filter((n) => /lora_B\.weight$/.test(n));
      expect(adapters).toHaveLength(2);
      for (const name of adapters)
        expect(
          own
            .get(name)!
            .value.dataSync()
            .some((v) => v !== 0),
          name,
        ).toBe(true);
      const report = JSON.parse(readFileSync(join(dir, 'lora-pruned', 'sparsity.json'), 'utf8'));
      expect(report.layers.map((l: { name: string }) => l.name).some((n: string) => n.includes('lora_'))).toBe(false);
    } finally {
      trainer.dispose();
    }
  });

  it('rejects a bad adapter block with the rest of the config', async () => {
    const dir = workspace();
    const doc = { ...tinyGpt(dir, 'x'), adapter: { name: 'lora', r: 0, target_modules: [], lora_alpha: 'big' } };
    await expect(run(doc, dir)).rejects.toThrow(
      /3 problems[\s\S]*adapter\.r: found 0[\s\S]*adapter\.lora_alpha[\s\S]*adapter\.target_modules/,
    );
  });
});
