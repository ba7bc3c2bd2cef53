import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng, tf, useBackend } from '@tessera/tensor-core';
import '@tessera/kernels-cpu';
import {
  chooseToken,
  type GPT2LMHeadModel,
  generateGpt,
  generateT5,
  KVCache,
  loadPretrained,
  type T5ForConditionalGeneration,
} from '@tessera/transformer';
import { expectClose } from '../../../tools/testing/compare.js';
import { FIXTURES } from './helpers.js';

beforeAll(async () => {
  await useBackend('cpu', { log: () => {} });
});

describe('KV cache', () => {
  it('GPT: incremental decoding gives the logits of recomputing the full sequence', () => {
    const model = loadPretrained(join(FIXTURES, 'gpt2')).model as GPT2LMHeadModel;
    model.eval();
    const ids = [
      [98, 12, 45, 7, 33, 81, 5, 60, 11, 2],
      [98, 3, 71, 71, 20, 9, 52, 14, 14, 1],
    ];
    const full = model.forward({ inputIds: tf.tensor2d(ids, [2, 10], 'int32') }).logits; // [2, 10, V]
    const cache = new KVCache();
    const steps: tf.Tensor[] = [];
    // A 4-token prompt, then one token at a time.
    steps.push(
      tf.tidy(
        () =>
          model.forward({
            inputIds: tf.tensor2d(
              ids.map((r) => r.slice(0, 4)),
              [2, 4],
              'int32',
            ),
            cache,
          }).logits,
      ),
    );
    for (let t = 4; t < 10; t++) {
      steps.push(
        tf.tidy(
          () =>
            model.forward({
              inputIds: tf.tensor2d(
                ids.map((r) => [r[t]!]),
                [2, 1],
                'int32',
              ),
              cache,
            }).logits,
        ),
      );
    }
    const incremental = tf.concat(steps, 1);
    expect(cache.length('h.0')).toBe(10);
    expectClose(incremental, full, { atol: 1e-5 }, 'incremental logits');
    tf.dispose([full, incremental, ...steps]);
    cache.dispose();
    model.dispose();
  });

  it('T5: incremental decoder (self cache + static cross cache) equals full decoding', () => {
    const model = loadPretrained(join(FIXTURES, 't5-v1_1')).model as T5ForConditionalGeneration;
    model.eval();
    const inputIds = tf.tensor2d(
      [
        [13, 57, 8, 90, 22, 35, 71, 6, 1],
        [44, 9, 63, 18, 1, 0, 0, 0, 0],
      ],
      [2, 9],
      'int32',
    );
    const mask = tf.tensor2d(
      [
        [1, 1, 1, 1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1, 0, 0, 0, 0],
      ],
      [2, 9],
      'int32',
    );
    const dec = [
      [0, 27, 5, 82, 40, 11, 96],
      [0, 52, 30, 1, 0, 0, 0],
    ];
    const encoded = model.encode(inputIds, mask);
    const full = model.decode(tf.tensor2d(dec, [2, 7], 'int32'), encoded, mask);
    const cache = new KVCache();
    const steps = dec[0]!.map((_, t) =>
      tf.tidy(() =>
        model.decode(
          tf.tensor2d(
            dec.map((r) => [r[t]!]),
            [2, 1],
            'int32',
          ),
          encoded,
          mask,
          cache,
        ),
      ),
    );
    const incremental = tf.concat(steps, 1);
    expectClose(incremental, full, { atol: 1e-5 }, 'incremental logits');
    tf.dispose([inputIds, mask, encoded, full, incremental, ...steps]);
    cache.dispose();
    model.dispose();
  });
});

describe('generation', () => {
  it('GPT greedy: cached and uncached agree; stop tokens end a row; no tensors leak', async () => {
    const model = loadPretrained(join(FIXTURES, 'gpt2')).model as GPT2LMHeadModel;
    const before = tf.memory().numTensors;
    const prompts = [
      [98, 12, 45],
      [98, 3, 71],
    ];
    const cached = await generateGpt(model, prompts, { maxNewTokens: 8 });
    const uncached = await generateGpt(model, prompts, { maxNewTokens: 8, useCache: false });
    expect(cached).toEqual(uncached);
    expect(cached.map((r) => r.length)).toEqual([8, 8]);
    const stopAt = cached[0]![2]!;
    const stopped = await generateGpt(model, prompts, { maxNewTokens: 8, stopTokens: [stopAt] });
    expect(stopped[0]).toEqual(cached[0]!.slice(0, cached[0]!.indexOf(stopAt) + 1));
    expect(tf.memory().numTensors).toBe(before);
    expect(model.training).toBe(true);
    model.dispose();
  });

  it('sampling is reproducible for a seed and honours top-k / top-p', async () => {
    const model = loadPretrained(join(FIXTURES, 'gpt2')).model as GPT2LMHeadModel;
    const options = { maxNewTokens: 10, temperature: 1.0, topK: 20, topP: 0.9, seed: 7 };
    const a = await generateGpt(model, [[98, 12]], options);
    const b = await generateGpt(model, [[98, 12]], options);
    const c = await generateGpt(model, [[98, 12]], { ...options, seed: 8 });
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    model.dispose();
    const rng = new Rng(1);
    const logits = [0, 5, 4, -1, 3];
    for (let i = 0; i < 50; i++)
      expect([1, 2]).toContain(chooseToken(logits, { maxNewTokens: 1, temperature: 1, topK: 2 }, rng));
    for (let i = 0; i < 50; i++)
      expect(chooseToken(logits, { maxNewTokens: 1, temperature: 1, topP: 0.5 }, rng)).toBe(1);
    expect(chooseToken(logits, { maxNewTokens: 1 }, rng)).toBe(1);
    await expect(generateGpt(model, [[1]], { maxNewTokens: 1, topP: 0 })).rejects.toThrow(/topP must be in \(0, 1\]/);
  });

  it('T5: greedy with and without cache agree; beam search of width 1 is greedy; wider beams score at least as well', async () => {
    const model = loadPretrained(join(FIXTURES, 't5-v1_0')).model as T5ForConditionalGeneration;
    const before = tf.memory().numTensors;
    const input = [[13, 57, 8, 90, 22, 35, 71, 6, 1]];
    const greedy = await generateT5(model, input, { maxNewTokens: 6 });
    expect(await generateT5(model, input, { maxNewTokens: 6, useCache: false })).toEqual(greedy);
    expect(await generateT5(model, input, { maxNewTokens: 6, numBeams: 1 })).toEqual(greedy);
    const beams = await generateT5(model, input, { maxNewTokens: 6, numBeams: 3 });
    expect(beams[0]!.length).toBeGreaterThan(0);
    const score = (tokens: number[]) =>
      tf.tidy(() => {
        const ids = tf.tensor2d([input[0]!], [1, 9], 'int32');
        const dec = tf.tensor2d([[0, ...tokens.slice(0, -1)]], [1, tokens.length], 'int32');
        const logp = tf.logSoftmax(model.decode(dec, model.encode(ids), undefined)).arraySync() as number[][][];
        return tokens.reduce((s, t, i) => s + logp[0]![i]![t]!, 0) / (tokens.length + 1);
      });
    expect(score(beams[0]!)).toBeGreaterThanOrEqual(score(greedy[0]!) - 1e-6);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
