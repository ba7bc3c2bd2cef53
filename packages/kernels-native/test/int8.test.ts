import { int8LinearOp, Rng, type Tensor, tf, useBackend } from '@tessera/tensor-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Int8Path, int8Dispatch, nativeCpuFeatures, nativeStatus } from '@tessera/kernels-native';

const rng = new Rng('int8-native');

interface Case {
  rows: number;
  K: number;
  N: number;
  bias: boolean;
}

// Odd sizes on purpose: K not a multiple of 4 (the k-groups) or 64 (a zmm), N not a multiple
// of 16 (a panel) or 64 (a VNNI tile), one row (generation), rows not a multiple of 4 (a tile).
const CASES: Case[] = [
  { rows: 1, K: 1, N: 1, bias: false },
  { rows: 1, K: 7, N: 3, bias: true },
  { rows: 3, K: 64, N: 16, bias: false },
  { rows: 5, K: 67, N: 33, bias: true },
  { rows: 17, K: 130, N: 70, bias: true },
  { rows: 1, K: 768, N: 200, bias: true },
  { rows: 9, K: 1029, N: 129, bias: false },
  { rows: 64, K: 256, N: 96, bias: true },
];

type Arrays = { x: Float32Array; w: Int32Array; scales: Float32Array; bias?: Float32Array };

function makeCase({ rows, K, N, bias }: Case): Arrays {
  const x = Float32Array.from({ length: rows * K }, () => rng.normal() * 3);
  if (rows > 2) x.fill(0, K, 2 * K); // an all-zero row: scale 0, output = bias
  // Exact halves hit the round-half-even rule: x = (n + 0.5)·amax/127 for some elements.
  x[0] = 127;
  if (K > 2) x[1] = 2.5;
  const w = Int32Array.from({ length: N * K }, () => rng.int(255) - 127);
  w[0] = -127; // the extremes of the symmetric range
  if (w.length > 1) w[1] = 127;
  const scales = Float32Array.from({ length: N }, () => 1e-3 + rng.uniform() * 1e-2);
  return { x, w, scales, ...(bias ? { bias: Float32Array.from({ length: N }, () => rng.normal()) } : {}) };
}

async function run(c: Case, a: Arrays, backend: string, reference = false): Promise<Float32Array> {
  await useBackend(backend, { log: () => {} });
  const inputs: Record<string, Tensor> = {
    x: tf.tensor2d(a.x, [c.rows, c.K]),
    weight: tf.tensor2d(a.w, [c.N, c.K], 'int32'),
    scales: tf.tensor1d(a.scales),
    ...(a.bias ? { bias: tf.tensor1d(a.bias) } : {}),
  };
  const [y] = reference ? int8LinearOp.reference(inputs) : int8LinearOp(inputs);
  const values = (await y!.data()) as Float32Array;
  tf.dispose([y!, ...Object.values(inputs)]);
  return values;
}

function paths(): Int8Path[] {
  const f = nativeCpuFeatures();
  return [
    ...(f.avx512f && f.avx512bw && f.avx512vnni ? (['vnni'] as const) : []),
    ...(f.avx2 ? (['avx2'] as const) : []),
    'scalar',
  ];
}

beforeAll(() => {
  expect(nativeStatus().available, nativeStatus().reason).toBe(true);
});
afterEach(() => int8Dispatch.set('auto'));

describe('TesseraInt8Linear on native', () => {
  it('has a native kernel and a cpu reference kernel', async () => {
    expect(int8LinearOp.hasKernel('native')).toBe(true);
    expect(int8LinearOp.hasKernel('cpu')).toBe(true);
  });

  it('auto picks VNNI where the CPU has it, else AVX2', async () => {
    const c = CASES[3]!;
    await run(c, makeCase(c), 'native');
    const f = nativeCpuFeatures();
    expect(int8Dispatch.last()).toBe(f.avx512vnni && f.avx512bw ? 'vnni' : f.avx2 ? 'avx2' : 'scalar');
  });

  for (const path of ['vnni', 'avx2', 'scalar'] as const) {
    it(`${path}: bit-identical to the cpu reference kernel on every shape`, async (ctx) => {
      if (!paths().includes(path)) ctx.skip(); // this CPU lacks it; the paths it has are tested
      for (const c of CASES) {
        const a = makeCase(c);
        const expected = await run(c, a, 'cpu');
        int8Dispatch.set(path);
        const got = await run(c, a, 'native');
        expect(int8Dispatch.last()).toBe(path);
        int8Dispatch.set('auto');
        expect(Array.from(got), `rows ${c.rows}, K ${c.K}, N ${c.N}`).toEqual(Array.from(expected));
      }
    });
  }

  it('the fp32 fallback (reference composition) matches the integer kernel to float32 rounding', async () => {
    for (const c of CASES) {
      const a = makeCase(c);
      const exact = await run(c, a, 'cpu');
      const fallback = await run(c, a, 'cpu', true);
      const scale = Math.max(...exact.map(Math.abs));
      const err = Math.max(...exact.map((v, i) => Math.abs(v - fallback[i]!)));
      // float32 partial sums of integers are exact below 2^24 (here: K·127·|q| mostly far below).
      expect(err, `rows ${c.rows}, K ${c.K}, N ${c.N}`).toBeLessThanOrEqual(1e-6 * scale + 1e-7);
    }
  });

  it('rejects a weight outside [-127, 127] and an unknown path, saying what was wrong', async () => {
    await useBackend('native', { log: () => {} });
    const inputs = { x: tf.ones([2, 4]), weight: tf.fill([3, 4], -128, 'int32'), scales: tf.ones([3]) };
    expect(() => int8LinearOp(inputs)).toThrow(/outside the symmetric int8 range \[-127, 127\]/);
    expect(() => int8Dispatch.set('sse' as Int8Path)).toThrow(/expected one of auto, scalar, avx2, vnni/);
    expect(() => int8LinearOp({ ...inputs, weight: tf.ones([3, 5], 'int32') })).toThrow(/x has 4 features/);
    tf.dispose(Object.values(inputs));
  });

  it('packs each weight once and leaks no tensors over calls', async () => {
    await useBackend('native', { log: () => {} });
    const weight = tf.tensor2d(
      Int32Array.from({ length: 64 * 96 }, () => rng.int(255) - 127),
      [64, 96],
      'int32',
    );
    const scales = tf.fill([64], 0.01);
    const x = tf.randomNormal([8, 96]);
    const first = tf.tidy(() => int8LinearOp({ x, weight, scales })[0]!);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) tf.dispose(int8LinearOp({ x, weight, scales }));
    expect(tf.memory().numTensors).toBe(before);
    const again = int8LinearOp({ x, weight, scales })[0]!;
    expect(Array.from(await again.data())).toEqual(Array.from(await first.data()));
    tf.dispose([weight, scales, x, first, again]);
  });
});
