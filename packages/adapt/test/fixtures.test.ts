import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import '@tessera/kernels-cpu';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, loadAdapter, saveAdapter } from '@tessera/adapt';
import { tf, useBackend } from '@tessera/tensor-core';
import {
  disposeModelInputs,
  type HfModelInputs,
  loadPretrained,
  loadSafetensors,
  modelInputsFromHf,
} from '@tessera/transformer';

// Written by tools/fixtures-adapt/generate.py (plain PyTorch LoRA over the verified
// PyTorch GPT-2 / BERT / T5 of tools/fixtures-transformer). Tolerances: logits within
// 1e-4 absolute (as the model fixtures); merged weights within 1e-5 absolute (float32
// rounding of W + scale·B·A, whose entries are below 10).
const FIXTURES = join(import.meta.dirname, 'fixtures');
const LOGITS_ATOL = 1e-4;
const WEIGHT_ATOL = 1e-5;

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  expect(a.shape).toEqual(b.shape);
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

beforeAll(async () => {
  await useBackend('cpu', { log: () => {} });
});

describe('LoRA against the PyTorch fixtures', () => {
  // *-bias: peft's bias "lora_only" (GPT-2: the c_attn biases) and "all" (BERT: every bias), trained and saved.
  const names = ['gpt2-lora', 'bert-classification-lora', 't5-lora', 'gpt2-lora-bias', 'bert-classification-lora-bias'];
  for (const name of names) {
    it(`${name}: base + peft adapter gives PyTorch's logits; merge-and-unload gives its merged weights; save writes the same file`, async () => {
      const dir = join(FIXTURES, name);
      const { model } = loadPretrained(join(dir, 'base'));
      model.eval();
      const inputs = modelInputsFromHf(JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8')) as HfModelInputs);
      const { tensors: expected } = loadSafetensors(join(dir, 'expected.safetensors'));
      const forward = () => tf.tidy(() => model.forward(inputs).logits);
      try {
        const base = forward();
        expect(maxAbsDiff(base, expected.base_logits!)).toBeLessThan(LOGITS_ATOL);
        const lora = loadAdapter(model, join(dir, 'adapter'));
        const adapted = forward();
        expect(maxAbsDiff(adapted, expected.logits!)).toBeLessThan(LOGITS_ATOL);
        // The adapter matters: the expected logits are far from the base's.
        expect(maxAbsDiff(base, expected.logits!)).toBeGreaterThan(100 * LOGITS_ATOL);

        // Round trip: saving the loaded adapter writes the fixture's names, shapes and values.
        const out = mkdtempSync(join(tmpdir(), 'tessera-lora-fixture-'));
        await saveAdapter(lora, out, '../base');
        const original = loadSafetensors(join(dir, 'adapter', ADAPTER_WEIGHTS)).tensors;
        const written = loadSafetensors(join(out, ADAPTER_WEIGHTS)).tensors;
        expect(Object.keys(written).sort()).toEqual(Object.keys(original).sort());
        for (const key of Object.keys(original)) expect(maxAbsDiff(written[key]!, original[key]!), key).toBe(0);
        const config = JSON.parse(readFileSync(join(out, ADAPTER_CONFIG), 'utf8'));
        const fixtureConfig = JSON.parse(readFileSync(join(dir, 'adapter', ADAPTER_CONFIG), 'utf8'));
        expect(config).toEqual(fixtureConfig);
        // The biases the file holds are the ones that train, and only with bias "all" / "lora_only".
        const savedBiases = Object.keys(original).filter((k) => k.endsWith('.bias') && !k.includes('classifier'));
        const trainableBiases = model
          .namedParameters({ trainableOnly: true })
          .map(([n]) => n)
          .filter((n) => n.endsWith('.bias') && !n.startsWith('classifier'));
        expect(savedBiases.length > 0).toBe(fixtureConfig.bias !== 'none');
        expect(trainableBiases.map((n) => `base_model.model.${n}`).sort()).toEqual(savedBiases.sort());
        tf.dispose([...Object.values(original), ...Object.values(written)]);

        const plain = lora.mergeAndUnload();
        const own = new Map(plain.namedParameters());
        const mergedNames = Object.keys(expected).filter((k) => k.startsWith('merged.'));
        expect(mergedNames.length).toBeGreaterThan(0);
        for (const key of mergedNames) {
          const p = own.get(key.slice('merged.'.length));
          expect(p, key).toBeDefined();
          expect(maxAbsDiff(p!.value, expected[key]!), key).toBeLessThan(WEIGHT_ATOL);
        }
        const merged = forward();
        expect(maxAbsDiff(merged, expected.logits!)).toBeLessThan(LOGITS_ATOL);
        tf.dispose([base, adapted, merged]);
      } finally {
        disposeModelInputs(inputs);
        tf.dispose(Object.values(expected));
        model.dispose();
      }
    });
  }
});
