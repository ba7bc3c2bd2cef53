import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '@tessera/kernels-cpu';
import { tf } from '@tessera/tensor-core';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSafetensors, readSafetensors, saveSafetensors } from '@tessera/transformer';

const dir = mkdtempSync(join(tmpdir(), 'st-int8-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('safetensors I8', () => {
  it('writes int32 tensors named in dtypes as I8 (1 byte each) and reads them back exactly', async () => {
    const path = join(dir, 'q.safetensors');
    const values = [-128, -127, -1, 0, 1, 126, 127, 5];
    const q = tf.tensor2d(values, [2, 4], 'int32');
    const s = tf.tensor1d([0.5, 0.25]);
    await saveSafetensors(
      path,
      { 'a.weight': q, 'a.weight_scale': s },
      { format: 'pt' },
      { dtypes: { 'a.weight': 'I8' } },
    );
    const file = readSafetensors(path);
    const entry = file.entries.get('a.weight')!;
    expect(entry.dtype).toBe('I8');
    expect(entry.end - entry.begin).toBe(8);
    expect(file.entries.get('a.weight_scale')!.dtype).toBe('F32');
    const { tensors } = loadSafetensors(path);
    expect(tensors['a.weight']!.dtype).toBe('int32');
    expect(Array.from(await tensors['a.weight']!.data())).toEqual(values);
    // The raw bytes are two's complement int8, as PyTorch's torch.int8 / safetensors "I8".
    const raw = readFileSync(path);
    const headerLen = Number(raw.readBigUInt64LE(0));
    expect(Array.from(new Int8Array(raw.buffer, raw.byteOffset + 8 + headerLen + entry.begin, 8))).toEqual(values);
    tf.dispose([q, s, ...Object.values(tensors)]);
  });

  it('refuses a value outside int8 and a float tensor named as I8', async () => {
    const big = tf.tensor1d([1, 200], 'int32');
    const f = tf.tensor1d([1.5]);
    await expect(saveSafetensors(join(dir, 'x.safetensors'), { w: big }, {}, { dtypes: { w: 'I8' } })).rejects.toThrow(
      /element 1 is 200, outside \[-128, 127\]/,
    );
    await expect(saveSafetensors(join(dir, 'y.safetensors'), { w: f }, {}, { dtypes: { w: 'I8' } })).rejects.toThrow(
      /it is float32; only int32 tensors narrow/,
    );
    tf.dispose([big, f]);
  });
});
