import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import '@tessera/kernels-cpu';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  applyLora,
  findTargets,
  kaimingUniformA,
  loadAdapter,
  loraScale,
  saveAdapter,
} from '@tessera/adapt';
import { createOptimizer } from '@tessera/optim';
import { Rng, tf, useBackend, valueAndGrads } from '@tessera/tensor-core';
import { createModel, type ModelInputs, type PretrainedModel, readSafetensors } from '@tessera/transformer';

const noDropout = { resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 };
const gpt = (seed = 1) =>
  createModel(
    'gpt',
    'causal-lm',
    { vocab_size: 50, n_positions: 16, n_embd: 16, n_layer: 2, n_head: 2, ...noDropout },
    new Rng(seed),
  );
const bert = (seed = 1) =>
  createModel(
    'bert',
    'sequence-classification',
    {
      vocab_size: 50,
      hidden_size: 16,
      num_hidden_layers: 2,
      num_attention_heads: 2,
      intermediate_size: 32,
      max_position_embeddings: 16,
      hidden_dropout_prob: 0,
      attention_probs_dropout_prob: 0,
    },
    new Rng(seed),
  );
const t5 = (seed = 1) =>
  createModel(
    't5',
    'seq2seq-lm',
    { vocab_size: 50, d_model: 16, d_kv: 8, d_ff: 24, num_layers: 2, num_heads: 2, dropout_rate: 0 },
    new Rng(seed),
  );

const ids = () =>
  tf.tensor(
    [
      [1, 5, 9, 3, 7, 2],
      [4, 8, 2, 6, 1, 0],
    ],
    undefined,
    'int32',
  );
const inputsFor = (model: PretrainedModel): ModelInputs =>
  model.config.model_type === 't5'
    ? {
        inputIds: ids(),
        decoderInputIds: tf.tensor(
          [
            [0, 3, 5],
            [0, 7, 1],
          ],
          undefined,
          'int32',
        ),
      }
    : { inputIds: ids() };
const logits = (model: PretrainedModel) => tf.tidy(() => model.forward(inputsFor(model)).logits);

/** Gives every lora_B a random value (B = 0 at the start makes the adapter a no-op). */
function randomiseB(model: PretrainedModel, seed = 3): void {
  const rng = new Rng(seed);
  for (const [name, p] of model.namedParameters())
    if (name.endsWith('lora_B.weight')) {
      const value = rng.normalTensor(p.shape, 0.2);
      p.assign(value);
      value.dispose();
    }
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

beforeAll(async () => {
  await useBackend('cpu', { log: () => {} });
});

describe('LoRA', () => {
  it('targets layers by name suffix or full-match regex, and says which layers exist when none match', () => {
    const model = gpt();
    expect(findTargets(model, ['c_attn']).map(([n]) => n)).toEqual([
      'transformer.h.0.attn.c_attn',
      'transformer.h.1.attn.c_attn',
    ]);
    expect(findTargets(model, 'transformer\\.h\\.1\\..*c_proj').map(([n]) => n)).toEqual([
      'transformer.h.1.attn.c_proj',
      'transformer.h.1.mlp.c_proj',
    ]);
    expect(() => findTargets(model, ['query'])).toThrow(/match no Linear layer.*c_attn, c_fc, c_proj/);
    expect(() => findTargets(model, ['attn'])).toThrow(/not Linear layers: .*GPT2Attention/);
    model.dispose();
  });

  it('freezes the base: only lora_A / lora_B are trainable and the optimizer holds state for them alone', () => {
    const model = bert();
    const lora = applyLora(model, { r: 4, lora_alpha: 8, target_modules: ['query', 'value'], modules_to_save: null });
    const trainable = model.namedParameters({ trainableOnly: true }).map(([n]) => n);
    expect(trainable).toHaveLength(2 * 2 * 2);
    expect(trainable.every((n) => /attention\.self\.(query|value)\.lora_[AB]\.weight$/.test(n))).toBe(true);
    expect(
      model.namedParameters().find(([n]) => n.endsWith('layer.0.attention.self.query.lora_A.weight'))![1].shape,
    ).toEqual([4, 16]);
    expect(
      model.namedParameters().find(([n]) => n.endsWith('layer.0.attention.self.query.lora_B.weight'))![1].shape,
    ).toEqual([16, 4]);
    const optimizer = createOptimizer({ name: 'adamw', lr: 0.01 }, model);
    const inputs = { inputIds: ids(), labels: tf.tensor([0, 1], undefined, 'int32') };
    const { loss, grads } = valueAndGrads(model, () => model.forward(inputs).loss!);
    expect([...grads.keys()].sort()).toEqual([...trainable].sort());
    optimizer.step(grads);
    const state = optimizer.stateDict();
    expect(Object.keys(state.state).sort()).toEqual([...trainable].sort());
    tf.dispose([loss, ...grads.values(), ...Object.values(state.state).flatMap((s) => Object.values(s.tensors))]);
    optimizer.dispose();
    expect(lora.layers.size).toBe(4);
    tf.dispose(Object.values(inputs));
    model.dispose();
  });

  it('a sequence classifier trains its new head in full by default (peft: SEQ_CLS modules_to_save)', () => {
    const model = bert();
    const lora = applyLora(model, { target_modules: ['query', 'value'], r: 2 });
    expect(lora.modulesToSave).toEqual(['classifier']);
    expect(model.namedParameters({ trainableOnly: true }).map(([n]) => n)).toContain('classifier.weight');
    expect(lora.taskType).toBe('SEQ_CLS');
    model.dispose();
  });

  it('starts as the base model (B = 0), with A Kaiming-uniform in ±1/√in', () => {
    const base = gpt();
    const before = logits(base);
    applyLora(base, { r: 4, target_modules: ['c_attn'] });
    const after = logits(base);
    expect(maxAbsDiff(before, after)).toBe(0);
    const a = base.namedParameters().find(([n]) => n.endsWith('h.0.attn.c_attn.lora_A.weight'))![1].value;
    const values = a.dataSync();
    const bound = 1 / Math.sqrt(16);
    expect(Math.max(...values.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...values.map(Math.abs))).toBeGreaterThan(bound * 0.8);
    const sample = kaimingUniformA([8, 100], new Rng(1));
    expect(tf.max(tf.abs(sample)).dataSync()[0]).toBeLessThanOrEqual(0.1);
    tf.dispose([before, after, sample]);
    base.dispose();
  });

  it('scales by α/r, or α/√r with rsLoRA', () => {
    expect(loraScale({ r: 8, loraAlpha: 16, useRslora: false })).toBe(2);
    expect(loraScale({ r: 16, loraAlpha: 16, useRslora: true })).toBe(4);
  });

  for (const [family, build, targets] of [
    ['gpt (Conv1D, fan_in_fan_out)', gpt, ['c_attn', 'c_fc']],
    ['bert', bert, ['query', 'value']],
    ['t5', t5, ['q', 'v']],
  ] as const) {
    it(`${family}: merge gives the unmerged forward, unmerge restores the base weights, merge-and-unload leaves a plain model`, () => {
      const model = build();
      const baseNames = model.namedParameters().map(([n]) => n);
      const baseWeights = Object.fromEntries(model.namedParameters().map(([n, p]) => [n, p.value.clone()]));
      const lora = applyLora(model, { r: 4, lora_alpha: 8, target_modules: [...targets], modules_to_save: null });
      randomiseB(model);
      const unmerged = logits(model);
      const base = logits(model);
      lora.merge();
      const merged = logits(model);
      const scale = tf.tidy(() => tf.max(tf.abs(unmerged)).dataSync()[0]!);
      // Merging reorders float32 sums: agreement to a few ulps of the logits' size.
      expect(maxAbsDiff(merged, unmerged)).toBeLessThan(1e-5 * Math.max(1, scale));
      lora.unmerge();
      for (const [name, p] of model.namedParameters())
        if (baseWeights[name]) expect(maxAbsDiff(p.value, baseWeights[name]!), name).toBeLessThan(1e-6);
      const again = logits(model);
      expect(maxAbsDiff(again, unmerged)).toBeLessThan(1e-5 * Math.max(1, scale));
      const plain = lora.mergeAndUnload();
      expect(plain.namedParameters().map(([n]) => n)).toEqual(baseNames);
      expect(plain.namedParameters({ trainableOnly: true })).toHaveLength(baseNames.length);
      const unloaded = logits(plain);
      expect(maxAbsDiff(unloaded, unmerged)).toBeLessThan(1e-5 * Math.max(1, scale));
      tf.dispose([unmerged, base, merged, again, unloaded, ...Object.values(baseWeights)]);
      plain.dispose();
    });
  }

  it('saves and loads peft files: adapter_config.json and base_model.model.<path>.lora_A.weight [r, in] / lora_B.weight [out, r]', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-lora-'));
    const model = gpt(1);
    const lora = applyLora(model, { r: 4, lora_alpha: 16, lora_dropout: 0.05, target_modules: ['c_attn'] });
    randomiseB(model);
    await saveAdapter(lora, dir, 'runs/gpt-base');
    const config = JSON.parse(readFileSync(join(dir, ADAPTER_CONFIG), 'utf8'));
    expect(config).toMatchObject({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: 'runs/gpt-base',
      r: 4,
      lora_alpha: 16,
      lora_dropout: 0.05,
      target_modules: ['c_attn'],
      bias: 'none',
      fan_in_fan_out: true,
      use_rslora: false,
      modules_to_save: null,
    });
    const file = readSafetensors(join(dir, ADAPTER_WEIGHTS));
    expect(Object.fromEntries([...file.entries].map(([n, e]) => [n, e.shape]))).toEqual({
      'base_model.model.transformer.h.0.attn.c_attn.lora_A.weight': [4, 16],
      'base_model.model.transformer.h.0.attn.c_attn.lora_B.weight': [48, 4],
      'base_model.model.transformer.h.1.attn.c_attn.lora_A.weight': [4, 16],
      'base_model.model.transformer.h.1.attn.c_attn.lora_B.weight': [48, 4],
    });
    const expected = logits(model);
    const fresh = gpt(1);
    loadAdapter(fresh, dir);
    const loaded = logits(fresh);
    expect(maxAbsDiff(expected, loaded)).toBe(0);
    // The importer checks every name and shape: r = 2 cannot take r = 4 tensors.
    const other = gpt(1);
    applyLora(other, { r: 2, target_modules: ['c_attn'] });
    expect(() => loadAdapter(other, dir)).toThrow(
      /mismatched \(4\)[\s\S]*lora_A\.weight: expected \[2, 16\] float32, got \[4, 16\]/,
    );
    const fewer = gpt(1);
    applyLora(fewer, { r: 4, target_modules: ['c_attn', 'c_fc'] });
    expect(() => loadAdapter(fewer, dir)).toThrow(
      /missing \(4\): base_model\.model\.transformer\.h\.0\.mlp\.c_fc\.lora_A\.weight/,
    );
    tf.dispose([expected, loaded]);
    for (const m of [model, fresh, other, fewer]) m.dispose();
  });

  it('bias "lora_only" / "all": those biases train, are saved under their path and load back; "none" keeps them frozen', async () => {
    const c_attn = ['transformer.h.0.attn.c_attn.bias', 'transformer.h.1.attn.c_attn.bias'];
    const biasesOf = (model: PretrainedModel) =>
      model
        .namedParameters({ trainableOnly: true })
        .map(([n]) => n)
        .filter((n) => n.endsWith('.bias'));
    const everyBias = gpt(1)
      .namedParameters()
      .map(([n]) => n)
      .filter((n) => n.endsWith('.bias'));
    expect(everyBias.length).toBeGreaterThan(c_attn.length);
    for (const [bias, expected] of [
      ['none', []],
      ['lora_only', c_attn],
      ['all', everyBias],
    ] as const) {
      const dir = mkdtempSync(join(tmpdir(), 'tessera-lora-bias-'));
      const model = gpt(1);
      const lora = applyLora(model, { r: 2, target_modules: ['c_attn'], bias });
      expect(biasesOf(model).sort(), bias).toEqual([...expected].sort());
      // Train one step: the biases peft trains move, the others do not.
      const optimizer = createOptimizer({ name: 'adamw', lr: 0.05 }, model);
      const before = new Map(model.namedParameters().map(([n, p]) => [n, Array.from(p.value.dataSync())]));
      const inputs = { inputIds: ids(), labels: ids() };
      const { loss, grads } = valueAndGrads(model, () => model.forward(inputs).loss!);
      optimizer.step(grads);
      tf.dispose([loss, ...grads.values(), ...Object.values(inputs)]);
      optimizer.dispose();
      const moved = model
        .namedParameters()
        .filter(
          ([n, p]) => n.endsWith('.bias') && Array.from(p.value.dataSync()).some((v, i) => v !== before.get(n)![i]),
        )
        .map(([n]) => n);
      expect(moved.sort(), bias).toEqual([...expected].sort());
      await saveAdapter(lora, dir);
      expect(JSON.parse(readFileSync(join(dir, ADAPTER_CONFIG), 'utf8')).bias).toBe(bias);
      const names = [...readSafetensors(join(dir, ADAPTER_WEIGHTS)).entries].map(([n]) => n);
      expect(names.filter((n) => n.endsWith('.bias')).sort(), bias).toEqual(
        expected.map((n) => `base_model.model.${n}`).sort(),
      );
      // Loaded onto a fresh base (config from the file), it computes what the trained model does.
      const fresh = gpt(1);
      loadAdapter(fresh, dir);
      const [a, b] = [logits(model), logits(fresh)];
      expect(maxAbsDiff(a, b), bias).toBe(0);
      tf.dispose([a, b]);
      model.dispose();
      fresh.dispose();
    }
  });

  it('dropout on the adapter input draws from the model stream in training only; eval is deterministic', () => {
    const model = gpt();
    applyLora(model, { r: 4, target_modules: ['c_attn'], lora_dropout: 0.5 });
    randomiseB(model);
    model.eval();
    const a = logits(model);
    const b = logits(model);
    expect(maxAbsDiff(a, b)).toBe(0);
    model.train();
    const c = logits(model);
    expect(maxAbsDiff(a, c)).toBeGreaterThan(0);
    tf.dispose([a, b, c]);
    model.dispose();
  });

  it('leaks no tensors over training steps', () => {
    const model = gpt();
    applyLora(model, { r: 4, target_modules: ['c_attn'], lora_dropout: 0.1 });
    const optimizer = createOptimizer({ name: 'adamw', lr: 0.01 }, model);
    const inputs = { inputIds: ids(), labels: ids() };
    const counts: number[] = [];
    for (let step = 0; step < 4; step++) {
      const { loss, grads } = valueAndGrads(model, () => model.forward(inputs).loss!);
      optimizer.step(grads);
      tf.dispose([loss, ...grads.values()]);
      counts.push(tf.memory().numTensors);
    }
    expect(new Set(counts.slice(1)).size).toBe(1);
    tf.dispose(Object.values(inputs));
    optimizer.dispose();
    model.dispose();
  });
});
