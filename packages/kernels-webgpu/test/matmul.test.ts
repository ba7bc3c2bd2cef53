import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng, tf, useBackend } from '@tessera/tensor-core';
import '@tessera/kernels-cpu';
import {
  setWebGpuMatMulTiling,
  useWebGpuMatMul,
  webgpuMatMul,
  webgpuStatus,
  webgpuSubgroupSize,
} from '@tessera/kernels-webgpu';
import { expectClose, type HostTensor, toHost } from '@tessera/conformance';

// Tessera's WGSL BatchMatMul (src/matmul.ts) against the cpu backend. Tolerance: each output
// within 1e-5 of the cpu result's max |value| (+1e-6): the two sum K products in different
// orders (fma, 4 k at a time), which for K ≤ 600 moves results by a few ulps of the largest.
const TOL = { rtol: 1e-5, atol: 1e-6 };
// lavapipe's first compile of each layout variant of the unrolled 8 × 8 block takes seconds
// (tens under load; Mesa caches them on disk), and a test may compile several.
const COMPILES = { timeout: 600_000 };

const status = await webgpuStatus();
const SKIP_REASON = status.available ? undefined : `no WebGPU adapter: ${status.reason}`;
const gpu = describe.skipIf(!!SKIP_REASON && process.env.TESSERA_REQUIRE_WEBGPU !== '1');

const rng = new Rng('kernels-webgpu-matmul');
function randn(shape: number[]): HostTensor {
  const t = rng.normalTensor(shape);
  const values = Float32Array.from(t.dataSync());
  t.dispose();
  return { shape, dtype: 'float32', values };
}

interface Backendish {
  numDataIds(): number;
}

/** fn on `backend` with fresh copies of the inputs; every output read back; nothing left behind. */
async function runOn(backend: string, inputs: HostTensor[], fn: (...xs: tf.Tensor[]) => tf.Tensor[]) {
  await tf.setBackend(backend);
  const tensors = tf.memory().numTensors;
  const dataIds = (tf.engine().backend as unknown as Backendish).numDataIds();
  const xs = inputs.map((h) => tf.tensor(h.values, h.shape, h.dtype));
  const outs = tf.tidy(() => fn(...xs));
  const values = await Promise.all(outs.map(toHost));
  tf.dispose([...outs, ...xs]);
  expect(tf.memory().numTensors, `${backend} leaked tensors`).toBe(tensors);
  expect((tf.engine().backend as unknown as Backendish).numDataIds(), `${backend} leaked data`).toBe(dataIds);
  return values;
}

async function compare(
  label: string,
  inputs: HostTensor[],
  fn: (...xs: tf.Tensor[]) => tf.Tensor[],
  reference: (...xs: tf.Tensor[]) => tf.Tensor[] = fn,
) {
  const ref = await runOn('cpu', inputs, reference);
  const got = await runOn('webgpu', inputs, fn);
  ref.forEach((r, i) => {
    expect(got[i]!.shape, `${label} output ${i} shape`).toEqual(r.shape);
    expectClose(got[i]!, r, TOL, `${label} output ${i}`);
  });
}

/** Stored shapes of a and b for C[M, N] = op(A)·op(B) with the given transposes. */
const operands = (M: number, K: number, N: number, tA: boolean, tB: boolean, batchA: number[], batchB: number[]) => [
  randn([...batchA, ...(tA ? [K, M] : [M, K])]),
  randn([...batchB, ...(tB ? [N, K] : [K, N])]),
];

const COMBOS: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

gpu('Tessera WGSL BatchMatMul vs cpu', COMPILES, () => {
  beforeAll(async () => {
    await useBackend('webgpu', { log: () => {} });
    tf.env().set('WEBGPU_CPU_FORWARD', false);
  });
  afterAll(async () => {
    setWebGpuMatMulTiling(undefined);
    useWebGpuMatMul('tessera');
    await tf.setBackend('cpu');
  });

  it('is the registered kernel, and TESSERA_WEBGPU_MATMUL-style switching works', () => {
    expect(webgpuMatMul()).toBe('tessera');
    useWebGpuMatMul('upstream');
    expect(webgpuMatMul()).toBe('upstream');
    useWebGpuMatMul('tessera');
    expect(webgpuMatMul()).toBe('tessera');
  });

  // Edges of the 8 × 8 block and of the 4-wide k steps: sizes below, at and past multiples of
  // 4 and 8, K = 1 (no vec4 step at all), K = 5 (one step + a tail), M = 1, N = 1. With
  // subgroups (lavapipe: 8) these run the subgroup kernel (32 rows × 64 columns per
  // workgroup, 32 columns when N ≤ 32): [40,16,72] and [65,20,128] have a partial second
  // column group and row tile, [96,64,256] fills several whole tiles.
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [7, 1, 9],
    [13, 5, 11],
    [16, 8, 8],
    [33, 12, 20],
    [1, 37, 70],
    [65, 3, 1],
    [24, 130, 65],
    [40, 16, 72],
    [65, 20, 128],
    [96, 64, 256],
  ];
  for (const [tA, tB] of COMBOS) {
    it(`transposeA=${tA} transposeB=${tB}: odd and vec4 shapes`, async () => {
      for (const [M, K, N] of shapes) {
        await compare(`[${M},${K},${N}] ${+tA}${+tB}`, operands(M, K, N, tA, tB, [], []), (a, b) => [
          tf.matMul(a!, b!, tA, tB),
        ]);
      }
    });
  }

  it('batches: equal, broadcast from 1, broadcast in both operands, rank 6', async () => {
    const cases: [number[], number[]][] = [
      [[3], [3]],
      [[3], []],
      [[], [4]],
      [[2, 3], [3]],
      [
        [2, 1],
        [1, 3],
      ],
      [
        [1, 2, 1],
        [3, 1, 2],
      ],
      [
        [2, 1, 2, 1],
        [1, 2, 1, 2],
      ],
    ];
    for (const [tA, tB] of COMBOS) {
      for (const [ba, bb] of cases) {
        const [a, b] = operands(9, 6, 10, tA, tB, ba, bb) as [HostTensor, HostTensor];
        const batch = tf.broadcast_util.assertAndGetBroadcastShape(ba, bb);
        // The cpu kernel indexes a broadcast batch as `i % batchSize`, which is the broadcast
        // only when one side is all ones or both are equal; for both-sided broadcasts
        // ([2,1] × [1,3]) the reference broadcasts the operands explicitly first.
        const full = (t: tf.Tensor, h: HostTensor) => tf.broadcastTo(t, [...batch, ...h.shape.slice(-2)]);
        await compare(
          `batch ${ba}×${bb} ${+tA}${+tB}`,
          [a, b],
          (x, y) => [tf.matMul(x!, y!, tA, tB)],
          (x, y) => [tf.matMul(full(x!, a), full(y!, b), tA, tB)],
        );
      }
    }
  });

  it('more batches than workgroups per dispatch dimension (65,535)', async () => {
    await compare('70,000 batches', [randn([70_000, 2, 3]), randn([70_000, 3, 1])], (a, b) => [tf.matMul(a!, b!)]);
  });

  it('gradients (the two transposed products) through tf.grads, GPT linear shapes', async () => {
    const x = randn([2, 24, 32]);
    const w = randn([32, 96]);
    const dy = randn([2, 24, 96]);
    await compare('linear grads', [x, w, dy], (xx, ww, d) => {
      const f = (a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.matMul(tf.reshape(a, [48, 32]), b), tf.reshape(d!, [48, 96])));
      return tf.grads(f)([xx!, ww!]);
    });
    // Attention's batched products: scores q·kᵀ and p·v, and their gradients.
    const q = randn([2, 3, 17, 8]);
    const k = randn([2, 3, 17, 8]);
    await compare('attention-shaped grads', [q, k], (qq, kk) =>
      tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.matMul(a, b, false, true))))([qq!, kk!]),
    );
  });

  it('every tiling in the family computes the same (the tiling sweep compares only these)', async () => {
    const tilings = [
      { lanes: 'cols', rows: 4, colGroups: 1, workgroup: 16 },
      { lanes: 'cols', rows: 8, colGroups: 2, workgroup: 8 },
      { lanes: 'rows', rows: 4, colGroups: 1, workgroup: 64 },
      { lanes: 'rows', rows: 2, colGroups: 3, workgroup: 16 },
    ] as const;
    try {
      for (const t of tilings) {
        setWebGpuMatMulTiling(t);
        for (const [tA, tB] of COMBOS) {
          await compare(
            `${t.lanes}${t.rows}x${t.colGroups} ${+tA}${+tB}`,
            operands(21, 10, 36, tA, tB, [2], [2]),
            (a, b) => [tf.matMul(a!, b!, tA, tB)],
          );
        }
      }
    } finally {
      setWebGpuMatMulTiling(undefined);
    }
  });

  // The subgroup kernel's other tilings (the default, 32 × 2, runs everywhere above): rows a
  // multiple of the subgroup size, one or two column groups; shapes on both sides of each
  // tile edge, packed (every contiguous size a multiple of 4) and unpacked, K with and without
  // a tail, a broadcast batch. 8 × 2 and 16 × 1 are what autoTiling picks under SwiftShader's
  // budget of 16 accumulators (headless Chromium), here at this device's subgroup size.
  it('subgroup tilings 8 × 1, 8 × 2, 16 × 1, 16 × 2, 32 × 1 compute the same', async () => {
    const sg = webgpuSubgroupSize();
    if (!sg) return; // no subgroups on this device: the register kernel runs (tested above)
    const tilings = [
      { lanes: 'subgroup', rows: Math.max(8, sg), colGroups: 1, workgroup: 0 },
      { lanes: 'subgroup', rows: Math.max(8, sg), colGroups: 2, workgroup: 0 },
      { lanes: 'subgroup', rows: Math.max(16, sg), colGroups: 1, workgroup: 0 },
      { lanes: 'subgroup', rows: Math.max(16, sg), colGroups: 2, workgroup: 0 },
      { lanes: 'subgroup', rows: Math.max(32, sg), colGroups: 1, workgroup: 0 },
    ] as const;
    const cases: [number, number, number][] = [
      [17, 9, 36],
      [32, 24, 64],
    ];
    try {
      for (const t of tilings) {
        setWebGpuMatMulTiling(t);
        for (const [tA, tB] of COMBOS)
          for (const [M, K, N] of cases)
            await compare(
              `subgroup ${t.rows}x${t.colGroups} [${M},${K},${N}] ${+tA}${+tB}`,
              operands(M, K, N, tA, tB, [2], []),
              (a, b) => [tf.matMul(a!, b!, tA, tB)],
            );
      }
    } finally {
      setWebGpuMatMulTiling(undefined);
    }
  });

  it('uses subgroups where the device has them; TESSERA_WEBGPU_SUBGROUPS=0 runs the register kernel alike', async () => {
    const adapterSubgroups = status.adapter?.subgroupMinSize;
    if (/llvmpipe|lavapipe/i.test(status.adapter?.description ?? '') && adapterSubgroups) {
      expect(webgpuSubgroupSize()).toBe(adapterSubgroups);
    }
    const inputs = operands(37, 19, 44, true, false, [], []);
    const saved = process.env.TESSERA_WEBGPU_SUBGROUPS;
    try {
      process.env.TESSERA_WEBGPU_SUBGROUPS = '0';
      expect(webgpuSubgroupSize()).toBeUndefined();
      await compare('no subgroups', inputs, (a, b) => [tf.matMul(a!, b!, true, false)]);
    } finally {
      if (saved === undefined) delete process.env.TESSERA_WEBGPU_SUBGROUPS;
      else process.env.TESSERA_WEBGPU_SUBGROUPS = saved;
    }
    await compare('subgroups', inputs, (a, b) => [tf.matMul(a!, b!, true, false)]);
  });

  it('an empty sum (K = 0) is zeros: the weight gradient of an empty batch', async () => {
    await compare('K = 0', [randn([0, 8]), randn([0, 4])], (x, dy) => [tf.matMul(x!, dy!, true, false)]);
    await compare('K = 0, batched', [randn([2, 3, 0]), randn([2, 0, 5])], (a, b) => [tf.matMul(a!, b!)]);
  });

  it('falls back to upstream for what it does not cover (int32, rank 7) with the same results', async () => {
    const ai: HostTensor = { shape: [3, 5], dtype: 'int32', values: Int32Array.from({ length: 15 }, (_, i) => i - 7) };
    const bi: HostTensor = { shape: [5, 2], dtype: 'int32', values: Int32Array.from({ length: 10 }, (_, i) => 3 - i) };
    await compare('int32', [ai, bi], (a, b) => [tf.matMul(a!, b!)]);
    // int32 cast to float32 keeps its int32 buffer on webgpu (a relabel): still upstream's.
    await compare('int32 cast to float32', [ai, bi], (a, b) => [
      tf.matMul(tf.cast(a!, 'float32'), tf.cast(b!, 'float32')),
      tf.matMul(tf.cast(a!, 'float32'), tf.transpose(tf.cast(b!, 'float32')), false, true),
    ]);
    await compare('rank 7', [randn([1, 2, 1, 1, 2, 3, 4]), randn([1, 1, 1, 1, 1, 4, 3])], (a, b) => [
      tf.matMul(a!, b!),
    ]);
  });
});
