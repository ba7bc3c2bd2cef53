import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import '@tessera/kernels-cpu';
import '@tessera/transformer';
import '@tessera/optim';
import '@tessera/data';
import { disposeMasks, magnitudeMasks, prune, sparsityReport } from '@tessera/adapt';
import { Rng, tf, useBackend } from '@tessera/tensor-core';
import { createModel, loadSafetensors, type PretrainedModel } from '@tessera/transformer';
import { run, tinyGpt, workspace } from './helpers.js';

const gpt = () =>
  createModel('gpt', 'causal-lm', { vocab_size: 50, n_positions: 16, n_embd: 16, n_layer: 2, n_head: 2 }, new Rng(1));
const bert = () =>
  createModel(
    'bert',
    'sequence-classification',
    { vocab_size: 50, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32 },
    new Rng(1),
  );

function weights(model: PretrainedModel): Map<string, Float32Array> {
  return new Map(model.namedParameters().map(([n, p]) => [n, p.value.dataSync() as Float32Array]));
}

beforeAll(async () => {
  await useBackend('cpu', { log: () => {} });
});

describe('magnitude pruning', () => {
  it('per layer: each Linear weight loses exactly its smallest share; biases, embeddings, norms and the head are kept', async () => {
    const model = bert();
    const before = weights(model);
    const masks = await prune(model, { sparsity: 0.3 });
    const after = weights(model);
    expect(masks.map((m) => m.name)).not.toContain('classifier.weight');
    expect(masks.map((m) => m.name)).toContain('bert.encoder.layer.0.attention.self.query.weight');
    for (const { name } of masks) {
      const w = before.get(name)!;
      const pruned = after.get(name)!;
      const zeroed = [...pruned.keys()].filter((i) => pruned[i] === 0);
      expect(zeroed.length, name).toBe(Math.floor(0.3 * w.length));
      const largestPruned = Math.max(...zeroed.map((i) => Math.abs(w[i]!)));
      const smallestKept = Math.min(...[...w.keys()].filter((i) => pruned[i] !== 0).map((i) => Math.abs(w[i]!)));
      expect(largestPruned).toBeLessThanOrEqual(smallestKept);
    }
    for (const [name, w] of before) if (!masks.some((m) => m.name === name)) expect(after.get(name), name).toEqual(w);
    const report = await sparsityReport(model);
    expect(report.total.sparsity).toBeCloseTo(0.3, 2);
    disposeMasks(masks);
    model.dispose();
  });

  it('global: one threshold over every targeted weight, so layers end up with different sparsity', async () => {
    const model = gpt();
    // Scale one layer down so a global threshold must take more of it.
    const fc = model.namedParameters().find(([n]) => n === 'transformer.h.0.mlp.c_fc.weight')![1];
    const scaled = tf.mul(fc.value, 0.1);
    fc.assign(scaled);
    scaled.dispose();
    const masks = await prune(model, { sparsity: 0.5, scope: 'global' });
    const { layers, total } = await sparsityReport(
      model,
      masks.map((m) => m.name),
    );
    expect(total.zeros).toBe(Math.floor(0.5 * total.size));
    const byName = Object.fromEntries(layers.map((l) => [l.name, l.sparsity]));
    expect(byName['transformer.h.0.mlp.c_fc.weight']).toBeGreaterThan(0.9);
    expect(byName['transformer.h.1.mlp.c_fc.weight']).toBeLessThan(0.5);
    disposeMasks(masks);
    model.dispose();
  });

  it('2:4: two of every four consecutive inputs of each output are zero, along the input axis of either layout', async () => {
    for (const model of [bert(), gpt()]) {
      const masks = await prune(model, { pattern: '2:4' });
      for (const { name, param, inputAxis } of masks) {
        const [rows, cols] = param.shape as [number, number];
        const w = param.value.dataSync();
        const outputs = inputAxis === 1 ? rows : cols;
        const inputs = inputAxis === 1 ? cols : rows;
        for (let o = 0; o < outputs; o++)
          for (let g = 0; g < inputs; g += 4) {
            let zeros = 0;
            for (let j = 0; j < 4; j++) if (w[inputAxis === 1 ? o * cols + g + j : (g + j) * cols + o] === 0) zeros++;
            expect(zeros, `${name} output ${o} group ${g}`).toBe(2);
          }
      }
      disposeMasks(masks);
      model.dispose();
    }
    await expect(magnitudeMasks(gpt(), { pattern: '2:4', sparsity: 0.7 })).rejects.toThrow(/2:4 prunes exactly half/);
  });

  it('as a callback: pruned weights stay exactly zero through training, the rest keep learning, no tensors leak', async () => {
    const dir = workspace();
    const before = tf.memory().numTensors;
    const doc = {
      ...tinyGpt(dir, 'pruned', { max_steps: 6, save_steps: 1 }),
      callbacks: [{ name: 'magnitude-pruning', sparsity: 0.6 }],
    };
    const result = await run(doc, dir);
    expect(result.steps).toBe(6);
    expect(tf.memory().numTensors).toBe(before);
    const first = loadSafetensors(join(dir, 'pruned', 'checkpoint-1', 'model.safetensors')).tensors;
    const last = loadSafetensors(join(dir, 'pruned', 'checkpoint-6', 'model.safetensors')).tensors;
    const pruned = Object.keys(first).filter((n) => /\.(c_attn|c_proj|c_fc)\.weight$/.test(n));
    expect(pruned).toHaveLength(8);
    for (const name of pruned) {
      const a = first[name]!.dataSync();
      const b = last[name]!.dataSync();
      const zeroAtStep1 = [...a.keys()].filter((i) => a[i] === 0);
      expect(zeroAtStep1.length, name).toBe(Math.floor(0.6 * a.length));
      // The same entries are zero after 5 more updates (AdamW's momentum would move them otherwise)...
      expect(
        zeroAtStep1.every((i) => b[i] === 0),
        name,
      ).toBe(true);
      expect([...b].filter((v) => v === 0).length, name).toBe(zeroAtStep1.length);
      // ...while the kept weights moved.
      expect(
        [...a.keys()].some((i) => a[i] !== 0 && a[i] !== b[i]),
        name,
      ).toBe(true);
    }
    tf.dispose([...Object.values(first), ...Object.values(last)]);
    const report = JSON.parse(readFileSync(join(dir, 'pruned', 'sparsity.json'), 'utf8'));
    expect(report.layers).toHaveLength(8);
    expect(report.total.sparsity).toBeCloseTo(0.6, 2);
  });

  it('a run resumed from a pruned checkpoint recomputes the same masks and gives the uninterrupted losses', async () => {
    const dir = workspace();
    const doc = (output: string, steps: number) => ({
      ...tinyGpt(dir, output, { max_steps: steps, save_steps: 2 }),
      callbacks: [{ name: 'magnitude-pruning', sparsity: 0.5, scope: 'global' }],
    });
    const full = await run(doc('full', 4), dir);
    await run(doc('split', 2), dir);
    const rest = await run(doc('split', 4), dir, join(dir, 'split'));
    expect(rest.losses).toEqual(full.losses.slice(2));
    expect(existsSync(join(dir, 'split', 'checkpoint-4', 'model.safetensors'))).toBe(true);
  });
});
