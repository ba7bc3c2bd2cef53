import {
  adamwOp,
  attentionOp,
  geluOp,
  layerNormOp,
  linearOp,
  opKernelCoverage,
  Rng,
  registry,
  rmsNormOp,
  softmaxCrossEntropyOp,
  type Tensor,
  tf,
  useBackend,
} from '@tessera/tensor-core';
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  getNumThreads,
  type NativeAddon,
  nativeKernelNames,
  nativeStatus,
  setNumThreads,
} from '@tessera/kernels-native';
import { expectClose } from '@tessera/conformance';

// Tolerances, relative to the largest |value| of the cpu result (@tessera/conformance's rule:
// max abs err <= ATOL + rtol * max |cpu|; ATOL for results that are mathematically ~0):
// - MATMUL_RTOL: OpenBLAS accumulates in fp32 in its own blocking order, tfjs-backend-cpu
//   in float64; the difference grows like sqrt(K)·ulp, so 2e-6·sqrt(K) covers every K here.
// - FUSED_RTOL: norms, cross-entropy, AdamW and the data movement kernels accumulate in
//   float64 like the reference kernels: they agree to a few ulps.
// - ATTN_RTOL / GELU_RTOL: attention's dot products and GELU's tanh/exp run in fp32
//   (vectorised) where the reference uses float64: 1e-5 (≈ 80 ulp of the output's scale).
const MATMUL_RTOL = (K: number) => 2e-6 * Math.max(4, Math.sqrt(K));
const FUSED_RTOL = 2e-6;
const ATTN_RTOL = 1e-5;
const GELU_RTOL = 1e-5;
const ATOL = 1e-7;

const rng = new Rng('kernels-native');

beforeAll(async () => {
  expect(nativeStatus().available, nativeStatus().reason).toBe(true);
  await useBackend('native', { log: () => {} });
});

interface Input {
  data: Float32Array | Int32Array;
  shape: number[];
  dtype: 'float32' | 'int32';
}
const randn = (shape: number[], std = 1): Input => ({
  data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal() * std),
  shape,
  dtype: 'float32',
});
const ints = (shape: number[], n: number): Input => ({
  data: Int32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.int(n)),
  shape,
  dtype: 'int32',
});

/**
 * Runs `fn` on fresh tensors of `inputs` under `backend` and returns its outputs' values.
 * Tensors are created inside, so each backend computes from its own storage.
 */
async function runOn(
  backend: string,
  inputs: Input[],
  fn: (...xs: Tensor[]) => Tensor | Tensor[],
): Promise<{ shape: number[]; dtype: string; values: Float32Array | Int32Array }[]> {
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const results = tf.tidy(() => {
    const xs = inputs.map((i) => tf.tensor(i.data, i.shape, i.dtype));
    const out = fn(...xs);
    return (Array.isArray(out) ? out : [out]).map((t) => ({
      shape: t.shape,
      dtype: t.dtype,
      values: t.dataSync() as Float32Array | Int32Array,
    }));
  });
  expect(tf.memory().numTensors, `${backend} leaked tensors`).toBe(before);
  await tf.setBackend('native');
  return results;
}

/** The same computation on native and cpu, compared output by output. */
async function compare(label: string, inputs: Input[], fn: (...xs: Tensor[]) => Tensor | Tensor[], rtol: number) {
  const native = await runOn('native', inputs, fn);
  const cpu = await runOn('cpu', inputs, fn);
  expect(native.length).toBe(cpu.length);
  native.forEach((n, i) => {
    expectClose(n, cpu[i]!, { rtol, atol: ATOL }, `${label} output ${i}`);
  });
}

/** Forward value and the gradient of sum(out · w) with respect to every float input. */
function withGrads(f: (...xs: Tensor[]) => Tensor, diff: number[]) {
  return (...xs: Tensor[]) => {
    const y = f(...xs);
    const w = tf.sin(tf.reshape(tf.range(0, y.size), y.shape)); // fixed, non-uniform weights
    const grads = tf.grads((...ds: Tensor[]) => {
      const args = [...xs];
      diff.forEach((k, i) => {
        args[k] = ds[i]!;
      });
      return tf.sum(tf.mul(f(...args), w));
    })(diff.map((k) => xs[k]!));
    return [y, ...grads];
  };
}

describe('backend "native"', () => {
  it('is registered with priority 20, available, and chosen by auto', async () => {
    const entry = registry.backend.entries().find((e) => e.name === 'native')!;
    expect((entry.meta as { priority: number }).priority).toBe(20);
    let notice = '';
    const choice = await useBackend('auto', { log: (l) => (notice = l) });
    expect(choice.name).toBe('native');
    expect(notice).toMatch(/^tessera: backend auto -> native \(.*OpenBLAS/);
  });

  it('has its own kernel for every Tessera fused op', () => {
    expect(opKernelCoverage('native').filter((c) => !c.kernel)).toEqual([]);
    expect(nativeKernelNames).toEqual(expect.arrayContaining(['BatchMatMul', 'GatherV2', 'UnsortedSegmentSum']));
  });
});

describe('matmul (OpenBLAS and our own GEMM) matches cpu', () => {
  const cases: [number[], number[], boolean, boolean][] = [
    [[1, 1], [1, 1], false, false],
    [[7, 5], [5, 3], false, false],
    [[9, 6], [9, 4], true, false],
    [[6, 9], [4, 9], false, true],
    [[9, 6], [4, 9], true, true],
    [[2, 3, 5, 4], [4, 6], false, false], // rank 4 x rank 2: folded into one sgemm
    [[2, 3, 4, 5], [6, 4], true, true],
    [[3, 5, 4], [3, 4, 6], false, false],
    [[1, 5, 4], [3, 4, 6], false, false], // batch 1 on the left broadcasts
    [[3, 5, 4], [1, 6, 4], false, true],
    [[4, 1], [1, 3], false, false], // K = 1
    [[130, 257], [257, 67], false, false], // odd sizes over OpenBLAS's blocking
    // Small products run on the pool's threads, split by rows or, when wider than tall, by
    // columns, in slices of 16 (PoolGemm): every transpose on both sides of the split.
    [[20, 33], [33, 150], false, false],
    [[33, 20], [150, 33], true, true],
    [[33, 20], [33, 150], true, false],
    [[5, 40], [150, 40], false, true], // fewer rows than one slice
    [[150, 40], [40, 5], false, false],
    // From 2^22 multiply-adds per item our own GEMM takes over (native/gemm.cc, AVX-512F):
    // rows not a multiple of its 6-row tile, columns not of its 64-column panel, K over
    // more than one 384 block, and both ways of splitting the work between threads.
    [[150, 300], [300, 130], false, false],
    [[301, 151], [301, 97], true, false], // Aᵀ: its rows are packed
    [[140, 700], [70, 700], false, true], // Bᵀ: panels gathered; two K blocks
    [[600, 77], [130, 600], true, true],
    [[5, 1000], [1000, 1000], false, false], // one row tile: the panels are split instead
    [[1100, 50], [1100, 1000], true, false], // a B over 2^20 floats: each thread packs its own panels
    [[2, 100, 300], [2, 300, 150], false, false], // a batch, item by item
  ];
  for (const [sa, sb, ta, tb] of cases) {
    it(`[${sa}]${ta ? 'ᵀ' : ''} x [${sb}]${tb ? 'ᵀ' : ''}`, async () => {
      const K = ta ? sa[sa.length - 2]! : sa[sa.length - 1]!;
      // tfjs's BatchMatMul gradient does not reduce broadcast batch dims (on any backend),
      // so gradients are compared where the batch dims agree.
      const sameBatch = sa.slice(0, -2).join() === sb.slice(0, -2).join();
      const f = (a?: Tensor, b?: Tensor) => tf.matMul(a!, b!, ta, tb);
      await compare('matmul', [randn(sa), randn(sb)], sameBatch ? withGrads(f, [0, 1]) : f, MATMUL_RTOL(K));
    });
  }

  it('broadcasts batch dims on both sides ([2,1] x [1,3]) like an explicit tile', async () => {
    const a = randn([2, 1, 5, 4]);
    const b = randn([1, 3, 4, 6]);
    const native = await runOn('native', [a, b], (x, y) => tf.matMul(x!, y!));
    const tiled = await runOn('cpu', [a, b], (x, y) => tf.matMul(tf.tile(x!, [1, 3, 1, 1]), tf.tile(y!, [2, 1, 1, 1])));
    expectClose(native[0]!, tiled[0]!, { rtol: MATMUL_RTOL(4), atol: ATOL }, 'broadcast matmul');
  });

  it('K = 0 gives zeros; int32 falls back to the cpu kernel', async () => {
    const [z] = await runOn('native', [randn([3, 0]), randn([0, 4])], (a, b) => tf.matMul(a!, b!));
    expect(Array.from(z!.values)).toEqual(new Array(12).fill(0));
    await compare('int matmul', [ints([3, 4], 5), ints([4, 2], 5)], (a, b) => tf.matMul(a!, b!), 0);
  });

  for (const [rows, inF, outF, transposeWeight] of [
    [20, 33, 150, false],
    [150, 33, 20, true],
    [3, 7, 5, false],
    [200, 300, 100, false], // own GEMM: C starts from the bias row
    [130, 400, 90, true],
    [900, 96, 80, false], // dW's K (rows) over three GEMM K blocks: db summed across them
    [800, 70, 100, true],
    // dW's Aᵀ shorter than wide with dy over 2^20 floats: the threads pack Aᵀ's rows once into
    // a shared buffer and split the panels (OwnGemm's shared-rows path); 390 rows are two of
    // the AVX2 row blocks (384). db from dy's packed panels, then (transposed) from Aᵀ's rows.
    [1500, 390, 700, false],
    [1500, 700, 390, true],
  ] as const) {
    it(`linear [${rows},${inF}]·${transposeWeight ? `[${outF},${inF}]ᵀ` : `[${inF},${outF}]`} + bias (the bias rows accumulated onto)`, async () => {
      const f = (x?: Tensor, w?: Tensor, b?: Tensor) =>
        linearOp({ x: x!, weight: w!, bias: b! }, { transposeWeight })[0]!;
      await compare(
        'linear',
        [randn([rows, inF]), randn(transposeWeight ? [outF, inF] : [inF, outF]), randn([outF])],
        withGrads(f, [0, 1, 2]),
        MATMUL_RTOL(inF),
      );
    });
  }

  for (const [rows, inF, outF, transposeWeight] of [
    [40, 9, 6, true],
    [900, 96, 80, false],
  ] as const) {
    it(`linear [${rows},${inF}]→${outF} without bias: dx and dW (TesseraLinearGrad with no bias output)`, async () => {
      const f = (x?: Tensor, w?: Tensor) => linearOp({ x: x!, weight: w! }, { transposeWeight })[0]!;
      await compare(
        'linear no bias',
        [randn([rows, inF]), randn(transposeWeight ? [outF, inF] : [inF, outF])],
        withGrads(f, [0, 1]),
        MATMUL_RTOL(Math.max(rows, inF, outF)),
      );
    });
  }

  it("inner-dimension mismatch throws tfjs's own error", async () => {
    await expect(runOn('native', [randn([2, 3]), randn([4, 2])], (a, b) => tf.matMul(a!, b!))).rejects.toThrow(
      /inner shapes/,
    );
    await tf.setBackend('native');
  });
});

describe('embedding gather and scatter-add match cpu', () => {
  it('gather [V, E] by [B, T] ids, and its gradient (UnsortedSegmentSum) with repeated ids', async () => {
    await compare(
      'gather',
      [randn([11, 7]), ints([3, 5], 11)],
      (table, ids) => {
        const f = (t: Tensor) => tf.gather(t, ids!);
        const w = tf.sin(tf.reshape(tf.range(0, 3 * 5 * 7), [3, 5, 7]));
        return [f(table!), tf.grad((t: Tensor) => tf.sum(tf.mul(f(t), w)))(table!)];
      },
      FUSED_RTOL,
    );
  });

  it('unsortedSegmentSum drops out-of-range ids; gather rejects them', async () => {
    const ids: Input = { data: Int32Array.from([0, 3, -1, 3, 7, 1]), shape: [6], dtype: 'int32' };
    await compare('segment sum', [randn([6, 4]), ids], (x, s) => tf.unsortedSegmentSum(x!, s!, 5), FUSED_RTOL);
    const bad: Input = { data: Int32Array.from([0, 9]), shape: [2], dtype: 'int32' };
    await expect(runOn('native', [randn([4, 3]), bad], (x, i) => tf.gather(x!, i!))).rejects.toThrow(
      /index value 9 is not in \[0, 3\]/,
    );
    await tf.setBackend('native');
  });
});

describe('data movement and elementwise kernels match cpu', () => {
  it('transpose, slice, split, concat', async () => {
    await compare(
      'movement',
      [randn([2, 5, 3, 4])],
      (x) => [
        tf.transpose(x!, [0, 2, 1, 3]),
        tf.transpose(x!, [3, 1, 0, 2]),
        tf.slice(x!, [1, 1, 0, 1], [1, 3, -1, 2]),
        ...tf.split(x!, [1, 2, 2], 1),
        tf.concat([x!, tf.mul(x!, 2)], 2),
      ],
      0,
    );
  });

  it("concat and slice reject inconsistent shapes with tfjs's error (no write past the output)", () => {
    const a = tf.zeros([2, 2]);
    const b = tf.zeros([1, 2]);
    const c = tf.zeros([2, 2, 1]);
    expect(() => tf.concat([a, b], 1)).toThrow(/does not match/);
    expect(() => tf.concat([b, a], 1)).toThrow(/does not match/);
    expect(() => tf.concat([a, c], 0)).toThrow(/rank/i);
    expect(() => tf.slice(a, [1, 0], [2, 2])).toThrow(/slice/i);
    tf.dispose([a, b, c]);
  });

  it('the addon throws a RangeError, never writes out of bounds, when given inconsistent sizes', () => {
    const addon = createRequire(import.meta.url)('../dist/native/tessera_native.node') as NativeAddon;
    const f = (n: number) => new Float32Array(n);
    const d = (...v: number[]) => Float64Array.from(v);
    expect(() => addon.stridedCopy(f(4), 0, d(2, 1), f(4), 2, d(2, 1), d(2, 2))).toThrow(/stridedCopy: out view/);
    expect(() => addon.stridedCopy(f(4), 1, d(2, 1), f(4), 0, d(2, 1), d(2, 2))).toThrow(/stridedCopy: x view/);
    expect(() => addon.reduceSum(f(6), 2, 3, 1, f(1))).toThrow(RangeError);
    expect(() => addon.binary(0, f(6), f(4), f(6))).toThrow(/binary/);
    expect(() => addon.matmul(f(6), f(5), f(4), d(0), d(0), 2, 2, 3, false, false)).toThrow(/matmul: b/);
    expect(() => addon.gelu(f(8), f(4), true)).toThrow(/gelu/);
    expect(() => addon.layerNorm(f(6), f(2), null, f(6), 2, 3, 1e-5)).toThrow(/layerNorm: gamma/);
    expect(() => addon.gather(f(6), 3, Int32Array.of(0, 1), f(3), 2)).toThrow(/gather: out/);
    expect(() =>
      addon.attention(f(8), f(8), f(8), f(4), Int32Array.of(1, 1, 2, 2, 4, 4, 1, 1, 1, 1), 1, false, null, null),
    ).toThrow(/attention: out/);
  });

  it('sum over leading, trailing, middle and all axes, with keepDims', async () => {
    await compare(
      'sum',
      [randn([4, 6, 5])],
      (x) => [tf.sum(x!, 0), tf.sum(x!, -1), tf.sum(x!, 1, true), tf.sum(x!, [0, 1]), tf.sum(x!), tf.sum(x!, [0, 2])],
      FUSED_RTOL,
    );
  });

  it('column sums over many rows (bias gradients), in blocks and with a partial last block', async () => {
    await compare(
      'column sums',
      // 263 rows: a last block of 7, summed four rows at a time and then 3 one by one.
      [randn([300, 40]), randn([2, 129, 17]), randn([127, 64]), randn([263, 33])],
      (x, y, z, w) => [tf.sum(x!, 0), tf.sum(y!, 1), tf.sum(z!, 0), tf.sum(y!, [0, 1]), tf.sum(w!, 0)],
      FUSED_RTOL,
    );
  });

  it('add, sub, mul with equal shapes, bias broadcasts and scalars (and their gradients)', async () => {
    await compare(
      'binary',
      [randn([4, 3, 5]), randn([5]), randn([3, 5]), randn([4, 3, 5])],
      (x, b, c, y) => [
        tf.add(x!, b!),
        tf.sub(c!, x!),
        tf.mul(x!, y!),
        tf.mul(x!, 3),
        tf.add(x!, tf.reshape(b!, [1, 1, 5])),
        ...tf.grads((p: Tensor, q: Tensor) => tf.sum(tf.mul(tf.add(p, q), p)))([x!, b!]),
      ],
      FUSED_RTOL,
    );
  });
});

describe('relu, step and pad (T5 feed-forward, slice gradients) match cpu', () => {
  it('relu and its gradient (step), step with alpha, constant pad and the gradient of slice', async () => {
    await compare(
      'relu/step/pad',
      [randn([7, 33, 5]), randn([6, 9])],
      (x, y) => [
        tf.relu(x!),
        tf.step(x!),
        tf.step(x!, 0.25),
        tf.grad((p: Tensor) => tf.sum(tf.mul(tf.relu(p), p)))(x!),
        tf.pad(y!, [
          [1, 2],
          [0, 3],
        ]),
        tf.pad(
          y!,
          [
            [2, 0],
            [1, 1],
          ],
          -1.5,
        ),
        tf.grad((p: Tensor) => tf.sum(tf.mul(tf.slice(p, [1, 2], [4, 5]), 3)))(y!),
      ],
      0,
    );
  });

  it('relu and step keep NaN as NaN, as the cpu kernels do', async () => {
    await tf.setBackend('native');
    const [relu, step] = tf.tidy(() => {
      const x = tf.tensor1d([Number.NaN, -1, 0, 2]);
      return [Array.from(tf.relu(x).dataSync()), Array.from(tf.step(x, 0.5).dataSync())];
    });
    expect(relu).toEqual([Number.NaN, 0, 0, 2]);
    expect(step).toEqual([Number.NaN, 0.5, 0.5, 1]);
  });
});

describe('fused ops on native match the cpu reference kernels (forward and gradient)', () => {
  for (const approximate of ['none', 'tanh'] as const) {
    for (const shape of [[1], [7], [3, 5], [2, 3, 1000]]) {
      it(`gelu ${approximate} [${shape}]`, async () => {
        await compare(
          'gelu',
          [randn(shape, 3)],
          withGrads((x) => geluOp({ x: x! }, { approximate })[0]!, [0]),
          GELU_RTOL,
        );
      });
    }
  }

  // |x| up to ~30: where tanh rounds to ±1 in fp32, 1 - tanh² must still come out ~0, not one ulp.
  it('gelu tanh gradient at extreme |x|', async () => {
    const x = Float32Array.from({ length: 64 }, (_, i) => -30 + (60 * i) / 63);
    await compare(
      'gelu extreme',
      [{ data: x, shape: [64], dtype: 'float32' }],
      withGrads((t) => geluOp({ x: t! }, { approximate: 'tanh' })[0]!, [0]),
      GELU_RTOL,
    );
  });

  for (const shape of [
    [1, 1],
    [3, 7],
    [2, 5, 128],
    [9, 4096],
  ]) {
    const C = shape[shape.length - 1]!;
    it(`layer norm [${shape}] with and without beta`, async () => {
      await compare(
        'layerNorm',
        [randn(shape, 2), randn([C]), randn([C])],
        (x, g, b) => [
          ...withGrads((xx, gg, bb) => layerNormOp({ x: xx!, gamma: gg!, beta: bb! }, { eps: 1e-5 })[0]!, [0, 1, 2])(
            x!,
            g!,
            b!,
          ),
          ...withGrads((xx, gg) => layerNormOp({ x: xx!, gamma: gg! }, { eps: 1e-5 })[0]!, [0, 1])(x!, g!),
        ],
        C >= 4096 ? 2 * FUSED_RTOL : FUSED_RTOL,
      );
    });
    it(`rms norm [${shape}]`, async () => {
      await compare(
        'rmsNorm',
        [randn(shape, 2), randn([C])],
        withGrads((x, g) => rmsNormOp({ x: x!, gamma: g! }, { eps: 1e-6 })[0]!, [0, 1]),
        C >= 4096 ? 2 * FUSED_RTOL : FUSED_RTOL,
      );
    });
  }

  for (const [shape, reduction, ignore] of [
    [[1, 1], 'mean', false],
    [[6, 11], 'mean', true],
    [[2, 5, 65], 'sum', true],
    [[4, 3, 1000], 'mean', false],
    [[3, 2048], 'sum', false], // a BERT/T5-sized vocabulary
  ] as const) {
    it(`softmax cross-entropy [${shape}] ${reduction}${ignore ? ' with ignored positions' : ''}`, async () => {
      const V = shape[shape.length - 1]!;
      const labels = ints(shape.slice(0, -1), V);
      if (ignore) (labels.data as Int32Array)[0] = -100;
      await compare(
        'crossEntropy',
        [randn([...shape], 3), labels],
        (logits, y) =>
          withGrads((l) => softmaxCrossEntropyOp({ logits: l!, labels: y! }, { reduction })[0]!, [0])(logits!),
        FUSED_RTOL,
      );
    });
  }

  it('cross-entropy: -Inf logits (a masked vocabulary) and wide logits agree with cpu; a NaN logit makes the loss NaN', async () => {
    const V = 300;
    const wide = randn([4, V], 30); // exp arguments down to about -200
    const masked = randn([4, V], 2);
    for (let v = 0; v < V; v += 3) masked.data[V + v] = Number.NEGATIVE_INFINITY; // row 1, never its label
    const labels: Input = { data: Int32Array.from([5, 7, 8, 299]), shape: [4], dtype: 'int32' };
    for (const logits of [wide, masked]) {
      await compare(
        'crossEntropy special',
        [logits, labels],
        (l, y) =>
          withGrads((x) => softmaxCrossEntropyOp({ logits: x!, labels: y! }, { reduction: 'sum' })[0]!, [0])(l!),
        FUSED_RTOL,
      );
    }
    const poisoned = randn([4, V], 2);
    poisoned.data[2 * V + 17] = Number.NaN;
    for (const backend of ['native', 'cpu']) {
      const [loss] = await runOn(backend, [poisoned, labels], (l, y) =>
        softmaxCrossEntropyOp({ logits: l!, labels: y! }, { reduction: 'sum' }),
      );
      expect(Number.isNaN(loss!.values[0]), backend).toBe(true);
    }
  });

  it('cross-entropy rejects a label outside the vocabulary with the reference message', async () => {
    const labels: Input = { data: Int32Array.from([1, 7]), shape: [2], dtype: 'int32' };
    await expect(
      runOn('native', [randn([2, 5]), labels], (l, y) => softmaxCrossEntropyOp({ logits: l!, labels: y! })[0]!),
    ).rejects.toThrow(/label 7 at position 1 is outside the vocabulary \[0, 5\)/);
    await tf.setBackend('native');
  });

  const attentionCases: {
    name: string;
    q: number[];
    Tk?: number;
    Dv?: number;
    causal: boolean;
    mask?: boolean;
    bias?: number[];
  }[] = [
    { name: 'size 1', q: [1, 1, 1, 1], causal: false },
    { name: 'causal GPT-like', q: [2, 3, 9, 8], causal: true },
    { name: 'causal, Tk > Tq (KV cache)', q: [1, 2, 3, 4], Tk: 7, causal: true },
    { name: 'padding mask with a fully masked row', q: [3, 2, 5, 4], causal: false, mask: true },
    { name: 'full bias, Dv != D', q: [2, 2, 4, 3], Dv: 5, causal: false, bias: [2, 2, 4, 4] },
    { name: 'T5 bias broadcast over batch', q: [3, 2, 6, 4], causal: true, bias: [1, 2, 6, 6] },
    {
      name: 'bias broadcast over heads and queries',
      q: [2, 3, 4, 2],
      Tk: 6,
      causal: false,
      mask: true,
      bias: [2, 1, 1, 6],
    },
    // Past one 60-row query block and one 64-column tile of the products, widths that are
    // not multiples of 16 (masked lanes), row tiles that do not divide by 6.
    { name: 'causal, three query blocks, head 24', q: [1, 2, 150, 24], causal: true },
    {
      name: 'padding mask, Tk 200 (four key tiles), Dv 70',
      q: [2, 1, 130, 20],
      Tk: 200,
      Dv: 70,
      causal: false,
      mask: true,
    },
    { name: 'causal, Tk > Tq over two query blocks (KV cache)', q: [1, 1, 100, 16], Tk: 180, causal: true },
    { name: 'full bias over two query blocks', q: [1, 2, 80, 12], Tk: 90, causal: false, bias: [1, 2, 80, 90] },
  ];
  for (const c of attentionCases) {
    it(`attention: ${c.name}`, async () => {
      const [B, H, Tq, D] = c.q as [number, number, number, number];
      const Tk = c.Tk ?? Tq;
      const inputs = [randn(c.q), randn([B, H, Tk, D]), randn([B, H, Tk, c.Dv ?? D])];
      if (c.mask) {
        const m = Float32Array.from({ length: B * Tk }, (_, i) => (i % 3 === 2 ? 0 : 1));
        if (B > 1) m.fill(0, Tk, 2 * Tk); // batch 1: nothing to attend to
        inputs.push({ data: m, shape: [B, Tk], dtype: 'float32' });
      }
      if (c.bias) inputs.push(randn(c.bias));
      const diff = c.bias ? [0, 1, 2, inputs.length - 1] : [0, 1, 2];
      await compare(
        'attention',
        inputs,
        withGrads((q, k, v, ...rest) => {
          const mask = c.mask ? rest[0] : undefined;
          const bias = c.bias ? rest[rest.length - 1] : undefined;
          return attentionOp(
            { q: q!, k: k!, v: v!, ...(mask ? { mask } : {}), ...(bias ? { bias } : {}) },
            { causal: c.causal, scale: null },
          )[0]!;
        }, diff),
        ATTN_RTOL,
      );
    });
  }

  it('attention: a NaN or +Inf score makes its row NaN, as in PyTorch (it used to vanish into a zero weight)', async () => {
    // Causal, NaN in query row 3 of head (0, 1); +Inf in the bias at (row 1, key 4) of another
    // case without causality. Only those rows turn NaN, on native as on cpu.
    const [B, H, T, D] = [2, 2, 6, 4];
    const q = randn([B, H, T, D]);
    q.data[(1 * T + 3) * D + 2] = Number.NaN; // b 0, h 1, i 3
    const causal = await runOn('native', [q, randn([B, H, T, D]), randn([B, H, T, D])], (q, k, v) =>
      attentionOp({ q: q!, k: k!, v: v! }, { causal: true, scale: null }),
    );
    const bias = randn([1, 1, T, T]);
    bias.data[1 * T + 4] = Number.POSITIVE_INFINITY;
    const withBias = [randn([B, H, T, D]), randn([B, H, T, D]), randn([B, H, T, D]), bias];
    const biased = await runOn('native', withBias, (q, k, v, b) =>
      attentionOp({ q: q!, k: k!, v: v!, bias: b! }, { causal: false, scale: null }),
    );
    const nanRows = (y: Float32Array | Int32Array) =>
      Array.from({ length: B * H * T }, (_, r) => y.slice(r * D, (r + 1) * D))
        .map((row, r) => (row.every(Number.isNaN) ? r : row.every(Number.isFinite) ? -1 : -2))
        .filter((r) => r !== -1);
    expect(nanRows(causal[0]!.values)).toEqual([1 * T + 3]);
    expect(nanRows(biased[0]!.values)).toEqual([0, 1, 2, 3].map((bh) => bh * T + 1));
    await compare(
      'attention NaN',
      [q, randn([B, H, T, D]), randn([B, H, T, D])],
      (q, k, v) => attentionOp({ q: q!, k: k!, v: v! }, { causal: true, scale: null }),
      ATTN_RTOL,
    );
    await compare(
      'attention +Inf bias',
      withBias,
      (q, k, v, b) => attentionOp({ q: q!, k: k!, v: v!, bias: b! }, { causal: false, scale: null }),
      ATTN_RTOL,
    );
  });

  it('AdamW update', async () => {
    const shape = [37, 5];
    const v: Input = { ...randn(shape), data: Float32Array.from(randn(shape).data, (x) => x * x) };
    await compare(
      'adamw',
      [randn(shape), randn(shape), randn(shape, 0.1), v],
      (p, g, m, vv) =>
        adamwOp({ param: p!, grad: g!, m: m!, v: vv! }, { lr: 1e-2, weightDecay: 0.1, step: 3, beta2: 0.95 }),
      FUSED_RTOL,
    );
  });
});

describe('threads and determinism', () => {
  it('fused kernels give bit-identical results for 1 and 2 threads; matmul for a given count', async () => {
    const original = getNumThreads();
    const inputs = [
      randn([2, 4, 33, 16]),
      randn([2, 4, 33, 16]),
      randn([2, 4, 33, 16]),
      randn([64, 96]),
      randn([96, 80]),
    ];
    const attn = withGrads(
      (q, k, v) => attentionOp({ q: q!, k: k!, v: v! }, { causal: true, scale: null })[0]!,
      [0, 1, 2],
    );
    const fn = (q?: Tensor, k?: Tensor, v?: Tensor, a?: Tensor, b?: Tensor) => [
      ...attn(q!, k!, v!),
      ...withGrads((x, g) => layerNormOp({ x: x!, gamma: g! }, { eps: 1e-5 })[0]!, [0, 1])(
        tf.matMul(a!, b!),
        tf.ones([80]),
      ),
    ];
    try {
      const runs: Float32Array[][] = [];
      for (const n of [1, 2, 2]) {
        setNumThreads(n);
        runs.push((await runOn('native', inputs, fn)).map((r) => r.values as Float32Array));
      }
      // The arrays are views (the pool starts them on a 64-byte boundary): compare their bytes.
      const bytes = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      // Same count, same bits (everything, matmul included).
      runs[1]!.forEach((v, i) => {
        expect(Buffer.compare(bytes(v), bytes(runs[2]![i]!))).toBe(0);
      });
      // 1 vs 2 threads: attention's gradients (which do not involve matmul) are identical.
      for (const i of [1, 2, 3]) {
        expect(Buffer.compare(bytes(runs[0]![i]!), bytes(runs[1]![i]!))).toBe(0);
      }
    } finally {
      setNumThreads(original);
    }
  });

  it('setNumThreads validates its argument', () => {
    expect(() => setNumThreads(0)).toThrow(/integer >= 1/);
  });
});
