import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng, registry, tf, useBackend } from '@tessera/tensor-core';
import '@tessera/kernels-cpu';
import {
  CheckpointError,
  SafetensorsError,
  loadPretrained,
  loadSafetensors,
  readSafetensors,
  savePretrained,
  saveSafetensors,
} from '@tessera/transformer';
import { FIXTURES } from './helpers.js';

const CASES = ['gpt2', 'bert-pretraining', 'bert-classification', 't5-v1_0', 't5-v1_1'];
const tmp = () => mkdtempSync(join(tmpdir(), 'tessera-ckpt-'));

beforeAll(async () => {
  await useBackend('cpu', { log: () => {} });
});

function tensorBytes(path: string): Map<string, string> {
  const file = readSafetensors(path);
  return new Map(
    [...file.entries].map(([n, e]) => [
      n,
      `${e.dtype}${JSON.stringify(e.shape)}${file.data.subarray(e.begin, e.end).toString('hex')}`,
    ]),
  );
}

describe('HF checkpoint import/export', () => {
  for (const name of CASES) {
    it(`${name}: import -> export is bit-exact and reloads`, async () => {
      const { model } = loadPretrained(join(FIXTURES, name));
      const out = tmp();
      await savePretrained(model, out);
      const original = tensorBytes(join(FIXTURES, name, 'model.safetensors'));
      const exported = tensorBytes(join(out, 'model.safetensors'));
      expect([...exported.keys()].sort()).toEqual([...original.keys()].sort());
      for (const [key, bytes] of original) expect(exported.get(key), key).toBe(bytes);
      const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
      const source = JSON.parse(readFileSync(join(FIXTURES, name, 'config.json'), 'utf8'));
      for (const [key, value] of Object.entries(source)) expect(config[key], key).toEqual(value);
      const again = loadPretrained(out);
      expect(again.model.architecture).toBe(model.architecture);
      again.model.dispose();
      model.dispose();
    });
  }

  it('reports every missing, unexpected and mis-shaped tensor at once', async () => {
    const { model } = loadPretrained(join(FIXTURES, 'gpt2'));
    const state = { ...model.stateDict() };
    delete state['transformer.ln_f.bias'];
    delete state['transformer.h.1.mlp.c_fc.bias'];
    const extra = tf.zeros([3]);
    const wrong = tf.zeros([32, 32]);
    const dir = tmp();
    copyFileSync(join(FIXTURES, 'gpt2', 'config.json'), join(dir, 'config.json'));
    await saveSafetensors(join(dir, 'model.safetensors'), {
      ...state,
      'transformer.h.0.attn.c_attn.weight': wrong,
      'transformer.extra.weight': extra,
    });
    expect(() => loadPretrained(dir)).toThrow(CheckpointError);
    try {
      loadPretrained(dir);
    } catch (err) {
      const message = (err as Error).message;
      expect(message).toContain('transformer.h.0.attn.c_attn.weight: expected [32, 96] float32, got [32, 32] float32');
      expect(message).toMatch(/missing \(2\): .*transformer\.h\.1\.mlp\.c_fc\.bias/);
      expect(message).toContain('unexpected (1): transformer.extra.weight');
    }
    tf.dispose([extra, wrong]);
    model.dispose();
  });

  it('a new head: pretraining checkpoint into a classifier with allowMissing / ignoreUnexpected', () => {
    const dir = join(FIXTURES, 'bert-pretraining');
    expect(() => loadPretrained(dir, { head: 'sequence-classification' })).toThrow(
      /missing \(2\): classifier\.weight, classifier\.bias[\s\S]*unexpected \(\d+\): cls\./,
    );
    const { model, report } = loadPretrained(dir, {
      head: 'sequence-classification',
      allowMissing: ['classifier.*'],
      ignoreUnexpected: ['cls.*'],
      configOverrides: { num_labels: 4 },
    });
    expect(model.architecture).toBe('BertForSequenceClassification');
    expect(report.initialised).toEqual(['classifier.weight', 'classifier.bias']);
    expect(report.ignored.length).toBeGreaterThan(0);
    expect(model.stateDict()['classifier.weight']!.shape).toEqual([4, 32]);
    model.dispose();
  });

  it('accepts legacy GPT-2 names (no transformer. prefix) and skips, and reports, old attn.bias buffers', async () => {
    const { tensors } = loadSafetensors(join(FIXTURES, 'gpt2', 'model.safetensors'));
    const legacy: Record<string, tf.Tensor> = {};
    for (const [name, t] of Object.entries(tensors)) legacy[name.replace(/^transformer\./, '')] = t;
    legacy['h.0.attn.bias'] = tf.ones([1, 1, 16, 16]);
    legacy['h.1.attn.bias'] = tf.ones([1, 1, 16, 16]);
    const dir = tmp();
    copyFileSync(join(FIXTURES, 'gpt2', 'config.json'), join(dir, 'config.json'));
    await saveSafetensors(join(dir, 'model.safetensors'), legacy);
    const { model, report } = loadPretrained(dir);
    expect(report.skippedBuffers.sort()).toEqual(['h.0.attn.bias', 'h.1.attn.bias']);
    expect(report.loaded).toBe(28);
    tf.dispose(Object.values(legacy));
    model.dispose();
  });

  it('explains a directory without config.json or weights, and an unknown model_type', () => {
    const dir = tmp();
    expect(() => loadPretrained(dir)).toThrow(/config\.json is missing/);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama' }));
    copyFileSync(join(FIXTURES, 'gpt2', 'model.safetensors'), join(dir, 'model.safetensors'));
    expect(() => loadPretrained(dir)).toThrow(/model_type "llama"; supported: bert, gpt2, t5/);
    writeFileSync(join(dir, 'config.json'), '{ not json');
    expect(() => loadPretrained(dir)).toThrow(/not a valid config\.json/);
  });

  it('bad family configs list every problem with its path', () => {
    expect(() =>
      registry.model.create('gpt', { vocab_size: 10, n_embd: 30, n_layer: 0, n_head: 4 }, new Rng(1)),
    ).toThrow(/Invalid GPT config:\n\s+- n_layer: found 0; expected a number > 0/);
    expect(() =>
      registry.model.create('gpt', { vocab_size: 10, n_embd: 30, n_layer: 1, n_head: 4 }, new Rng(1)),
    ).toThrow(/n_embd \(30\) must be divisible by n_head \(4\)/);
    expect(() => registry.model.create('bert', { head: 'pooling' }, new Rng(1))).toThrow(
      /head: found "pooling"; expected one of/,
    );
    expect(() =>
      registry.model.create(
        't5',
        { vocab_size: 10, d_model: 8, d_kv: 2, d_ff: 8, num_layers: 1, num_heads: 2, feed_forward_proj: 'gated-swish' },
        new Rng(1),
      ),
    ).toThrow(/Unknown activation "swish"/);
  });
});

describe('safetensors reader is strict and safe', () => {
  const source = join(FIXTURES, 'bert-classification', 'model.safetensors');
  const bytes = readFileSync(source);

  it('refuses specific corruptions with a clear message naming the file', () => {
    const dir = tmp();
    const write = (name: string, data: Buffer) => {
      const path = join(dir, name);
      writeFileSync(path, data);
      return path;
    };
    const header = (json: string) => {
      const h = Buffer.from(json);
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(h.length));
      return Buffer.concat([len, h]);
    };
    expect(() => readSafetensors(write('tiny', Buffer.from([1, 2, 3])))).toThrow(
      /tiny is not a valid safetensors file: it is 3 bytes long/,
    );
    const huge = Buffer.alloc(16);
    huge.writeBigUInt64LE(2n ** 62n);
    expect(() => readSafetensors(write('huge', huge))).toThrow(/more than the \d+-byte limit/);
    expect(() => readSafetensors(write('trunc', bytes.subarray(0, 100)))).toThrow(/truncated/);
    expect(() => readSafetensors(write('data-trunc', bytes.subarray(0, bytes.length - 4)))).toThrow(
      /spans bytes .* data section has/,
    );
    expect(() => readSafetensors(write('json', header('{"a": ')))).toThrow(/not valid UTF-8 JSON/);
    expect(() =>
      readSafetensors(write('dtype', header('{"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}}'))),
    ).toThrow(/dtype "F8"/);
    expect(() =>
      readSafetensors(write('shape', header('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}'))),
    ).toThrow(/shape \[-1\]/);
    expect(() =>
      readSafetensors(
        write(
          'size',
          Buffer.concat([header('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}'), Buffer.alloc(4)]),
        ),
      ),
    ).toThrow(/has 4 bytes but F32 \[2\] needs 8/);
    expect(() =>
      readSafetensors(
        write(
          'overlap',
          Buffer.concat([
            header(
              '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
            ),
            Buffer.alloc(8),
          ]),
        ),
      ),
    ).toThrow(/overlap/);
    expect(() => readSafetensors(join(dir, 'missing'))).toThrow(/Cannot open/);
  });

  it('fuzz: random truncations and corrupted headers never crash or read out of bounds', () => {
    const rng = new Rng('fuzz');
    const dir = tmp();
    const headerLength = Number(bytes.readBigUInt64LE(0));
    let refused = 0;
    let accepted = 0;
    for (let i = 0; i < 300; i++) {
      const data = Buffer.from(bytes);
      let mutated: Buffer;
      const kind = i % 3;
      if (kind === 0) mutated = data.subarray(0, rng.int(data.length));
      else if (kind === 1) {
        for (let j = 0; j < 1 + rng.int(4); j++) data[8 + rng.int(headerLength)] = rng.int(256);
        mutated = data;
      } else {
        for (let j = 0; j < 8; j++) data[j] = rng.int(256);
        mutated = data;
      }
      const path = join(dir, `f${i}`);
      writeFileSync(path, mutated);
      try {
        const file = readSafetensors(path);
        for (const entry of file.entries.values()) {
          expect(entry.end).toBeLessThanOrEqual(file.data.length);
        }
        accepted++;
      } catch (err) {
        expect(err, String(err)).toBeInstanceOf(SafetensorsError);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(150);
    expect(refused + accepted).toBe(300);
  });

  it('round-trips int32 and float32 tensors and writes an aligned header', async () => {
    const dir = tmp();
    const a = tf.tensor([1.5, -2.25, 3], [3]);
    const b = tf.tensor(
      [
        [1, 2],
        [3, -4],
      ],
      [2, 2],
      'int32',
    );
    await saveSafetensors(join(dir, 'x.safetensors'), { b, a });
    const raw = readFileSync(join(dir, 'x.safetensors'));
    expect((8 + Number(raw.readBigUInt64LE(0))) % 8).toBe(0);
    const { tensors, metadata } = loadSafetensors(join(dir, 'x.safetensors'));
    expect(metadata).toEqual({ format: 'pt' });
    expect(Array.from(tensors.a!.dataSync())).toEqual([1.5, -2.25, 3]);
    expect(tensors.b!.dtype).toBe('int32');
    expect(Array.from(tensors.b!.dataSync())).toEqual([1, 2, 3, -4]);
    tf.dispose([a, b, ...Object.values(tensors)]);
  });
});
