import { execFileSync } from 'node:child_process';
import {
  linearOp,
  MATMUL_TOLERANCE,
  Rng,
  matmulPrecisionSupport,
  setMatmulPrecision,
  tf,
  useBackend,
  withMatmulPrecision,
} from '@tessera/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { nativeCpuFeatures, setNumThreads } from '@tessera/kernels-native';
// @ts-expect-error: the bench model is plain ESM JavaScript without declarations.
import { AdamW, GPT, gptTrainStep, randomBatch } from '../bench/gpt.mjs';

const hasBf16 = (() => {
  try {
    const f = nativeCpuFeatures();
    return f.avx512f && f.avx512bw && f.avx512vl && f.avx512bf16;
  } catch {
    return false;
  }
})();

function uniform(shape: number[], rng: Rng, scale = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => (rng.uniform() * 2 - 1) * scale),
    shape,
  );
}

/** C = op(a)·op(b) in float64 from the fp32 inputs, with batch broadcasting over the leading dims. */
function reference(a: tf.Tensor, b: tf.Tensor, tA: boolean, tB: boolean): { values: Float64Array; shape: number[] } {
  const av = a.dataSync();
  const bv = b.dataSync();
  const [ar, br] = [a.shape.length, b.shape.length];
  const M = tA ? a.shape[ar - 1]! : a.shape[ar - 2]!;
  const K = tA ? a.shape[ar - 2]! : a.shape[ar - 1]!;
  const N = tB ? b.shape[br - 2]! : b.shape[br - 1]!;
  const batchA = av.length / (M * K);
  const batchB = bv.length / (K * N);
  const batch = Math.max(batchA, batchB);
  const out = new Float64Array(batch * M * N);
  for (let q = 0; q < batch; q++) {
    const ao = (batchA === 1 ? 0 : q) * M * K;
    const bo = (batchB === 1 ? 0 : q) * K * N;
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++)
          s += av[ao + (tA ? k * M + i : i * K + k)]! * bv[bo + (tB ? j * K + k : k * N + j)]!;
        out[(q * M + i) * N + j] = s;
      }
  }
  const outer = (batchA >= batchB ? a.shape : b.shape).slice(0, -2);
  return { values: out, shape: [...outer, M, N] };
}

const maxAbs = (x: ArrayLike<number>) =>
  Array.prototype.reduce.call(x, (m: number, v) => Math.max(m, Math.abs(v as number)), 0) as number;

// [aShape, bShape, transposeA, transposeB]: odd sizes, the micro-tile edges (12 rows, 32
// columns, 256-deep slices), K = 1, an odd K across slices, batch broadcasting both ways.
const CASES: [number[], number[], boolean, boolean][] = [
  [[1, 1], [1, 1], false, false],
  [[13, 7], [7, 33], false, false],
  [[37, 257], [65, 257], false, true],
  [[300, 29], [300, 31], true, false],
  [[45, 513], [19, 45], true, true],
  [[3, 12, 64], [3, 64, 32], false, false],
  [[2, 3, 17, 9], [9, 40], false, false],
  [[5, 25], [4, 25, 11], false, false],
  [[2, 40, 11], [2, 23, 40], true, true],
  [[4, 130, 96], [96, 70], false, false],
  // K deep enough that B is packed in two column chunks (a panel holds all of K), odd K tail.
  [[13, 4101], [4101, 300], false, false],
];

describe.runIf(hasBf16)('bf16 matmul on AVX-512 BF16', () => {
  beforeAll(async () => {
    await useBackend('native', { log: () => {} });
  });

  it.each(
    CASES,
  )('op(%j)·op(%j) (tA %s, tB %s) within 2^-6·√K·max|a|·max|b| of float64, and not fp32', async (as, bs, tA, tB) => {
    const rng = new Rng(`bf16/${as}/${bs}/${tA}/${tB}`);
    const a = uniform(as, rng, 3);
    const b = uniform(bs, rng, 0.5);
    const K = tA ? as[as.length - 2]! : as[as.length - 1]!;
    const want = reference(a, b, tA, tB);
    const c = await withMatmulPrecision('bf16', () => tf.matMul(a, b, tA, tB));
    const c32 = tf.matMul(a, b, tA, tB);
    expect(c.shape).toEqual(want.shape);
    const bound = MATMUL_TOLERANCE.bf16 * Math.sqrt(K) * maxAbs(a.dataSync()) * maxAbs(b.dataSync());
    const got = c.dataSync();
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want.values[i]!));
    expect(worst, `max error ${worst} vs bound ${bound}`).toBeLessThanOrEqual(bound);
    // The bf16 path ran: its error is bf16-sized, far above fp32's (~1e-7 relative).
    const fp32Err = maxAbs(Float64Array.from(c32.dataSync(), (v, i) => v - want.values[i]!));
    if (K > 1) expect(worst).toBeGreaterThan(20 * fp32Err);
    tf.dispose([a, b, c, c32]);
  });

  it('rounds operands to bf16 to nearest even, and sums exactly-representable products exactly', async () => {
    // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: even is 1. 1 + 3·2^-8 is
    // halfway between 1 + 2^-7 and 1 + 2^-6: even is 1 + 2^-6. 1 + 2^-8 + 2^-12 rounds up.
    const a = tf.tensor2d([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -12, -(1 + 2 ** -8)], [4, 1]);
    const one = tf.tensor2d([1], [1, 1]);
    const c = await withMatmulPrecision('bf16', () => tf.matMul(a, one));
    expect(Array.from(c.dataSync())).toEqual([1, 1 + 2 ** -6, 1 + 2 ** -7, -1]);
    // Small integers are exact in bf16 and their products and sums exact in fp32.
    const ints = tf.tensor2d(
      Array.from({ length: 6 * 300 }, (_, i) => (i % 7) - 3),
      [6, 300],
    );
    const intsT = tf.tensor2d(
      Array.from({ length: 300 * 5 }, (_, i) => (i % 5) - 2),
      [300, 5],
    );
    const exact = await withMatmulPrecision('bf16', () => tf.matMul(ints, intsT));
    expect(Array.from(exact.dataSync())).toEqual(Array.from(tf.matMul(ints, intsT).dataSync()));
    tf.dispose([a, one, c, ints, intsT, exact]);
  });

  it('gives the same bits for 1 and 2 threads', async () => {
    const rng = new Rng('bf16/threads');
    const a = uniform([300, 700], rng);
    const b = uniform([700, 200], rng);
    const run = async (n: number) => {
      setNumThreads(n);
      const c = await withMatmulPrecision('bf16', () => tf.matMul(a, b));
      const v = Float32Array.from(c.dataSync());
      c.dispose();
      return v;
    };
    const one = await run(1);
    const two = await run(2);
    setNumThreads();
    expect(Buffer.from(two.buffer).equals(Buffer.from(one.buffer))).toBe(true);
    tf.dispose([a, b]);
  });

  it('runs both gradient products in bf16 (within the bound), weights and the rest fp32', async () => {
    const rng = new Rng('bf16/grad');
    const x = uniform([40, 70], rng);
    const w = uniform([70, 30], rng);
    const dy = uniform([40, 30], rng);
    const grads = (p: 'fp32' | 'bf16') =>
      withMatmulPrecision(p, () =>
        tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(tf.matMul(xx, ww), dy)))([x, w]),
      );
    const [dx16, dw16] = await grads('bf16');
    const [dx32, dw32] = await grads('fp32');
    // dx = dy·wᵀ (K = 30), dw = xᵀ·dy (K = 40).
    const check = (g: tf.Tensor, ref: tf.Tensor, K: number, s: number) => {
      const d = maxAbs(tf.sub(g, ref).dataSync());
      expect(d).toBeLessThanOrEqual(MATMUL_TOLERANCE.bf16 * Math.sqrt(K) * s);
      expect(d).toBeGreaterThan(0); // not the fp32 product
    };
    check(dx16!, dx32!, 30, maxAbs(dy.dataSync()) * maxAbs(w.dataSync()));
    check(dw16!, dw32!, 40, maxAbs(x.dataSync()) * maxAbs(dy.dataSync()));
    tf.dispose([x, w, dy, dx16!, dw16!, dx32!, dw32!]);
  });
});

/** Trains a seeded GPT for `steps` AdamW steps with native's matmuls in `precision`; losses and live tensors per step. */
async function trainGpt(precision: 'fp32' | 'bf16', steps: number) {
  await useBackend('native', { log: () => {} });
  const cfg = { nLayer: 2, nHead: 2, nEmbd: 64, blockSize: 32, vocabSize: 65 };
  const model = new GPT(cfg, 'bf16-training');
  const optimizer = new AdamW(model, { lr: 3e-3 });
  const { idx, targets } = randomBatch(cfg, 4, 'bf16-training-batch');
  const losses: number[] = [];
  const counts: number[] = [];
  try {
    await withMatmulPrecision(precision, () => {
      for (let s = 0; s < steps; s++) {
        losses.push(gptTrainStep(model, optimizer, idx, targets));
        counts.push(tf.memory().numTensors);
      }
    });
  } finally {
    tf.dispose([idx, targets]);
    optimizer.dispose();
    model.dispose();
  }
  return { losses, counts };
}

const hasAmx = hasBf16 && nativeCpuFeatures().amxBf16;

/** Products of CASES[i] in bf16, each as a plain array, from a child process with `env`. */
function childProducts(env: Record<string, string>, indices: number[]): { amx: boolean; products: number[][] } {
  const script = `
    import { Rng, tf, useBackend, withMatmulPrecision } from '@tessera/tensor-core';
    import { nativeCpuFeatures } from '@tessera/kernels-native';
    await useBackend('native', { log: () => {} });
    const cases = ${JSON.stringify(indices.map((i) => CASES[i]))};
    // As this file's uniform(): the same Rng draws, so the parent rebuilds the same operands.
    const uniform = (shape, rng, scale) => {
      const n = shape.reduce((x, y) => x * y, 1);
      return tf.tensor(Float32Array.from({ length: n }, () => (rng.uniform() * 2 - 1) * scale), shape);
    };
    const products = [];
    for (const [as, bs, tA, tB] of cases) {
      const rng = new Rng('amx/' + as + '/' + bs);
      const a = uniform(as, rng, 3), b = uniform(bs, rng, 0.5);
      const c = await withMatmulPrecision('bf16', () => tf.matMul(a, b, tA, tB));
      products.push(Array.from(c.dataSync()));
    }
    console.log(JSON.stringify({ amx: nativeCpuFeatures().amxBf16, products }));`;
  const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: new URL('..', import.meta.url),
    env: { ...process.env, ...env },
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

describe.runIf(hasAmx)('bf16 on AMX tiles against vdpbf16ps (TESSERA_NATIVE_DISABLE=amx)', () => {
  it('the two engines agree within twice the bound on every edge case, and only the first uses tiles', async () => {
    await useBackend('native', { log: () => {} });
    const indices = CASES.map((_, i) => i);
    const tiles = childProducts({}, indices);
    const vector = childProducts({ TESSERA_NATIVE_DISABLE: 'amx' }, indices);
    expect(tiles.amx).toBe(true);
    expect(vector.amx).toBe(false);
    indices.forEach((ci, n) => {
      const [as, bs, tA] = CASES[ci]!;
      const rng = new Rng(`amx/${as}/${bs}`);
      const a = uniform(as, rng, 3);
      const b = uniform(bs, rng, 0.5);
      const K = tA ? as[as.length - 2]! : as[as.length - 1]!;
      const bound = MATMUL_TOLERANCE.bf16 * Math.sqrt(K) * maxAbs(a.dataSync()) * maxAbs(b.dataSync());
      const x = tiles.products[n]!;
      const y = vector.products[n]!;
      expect(x.length).toBe(y.length);
      let worst = 0;
      for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
      expect(worst, `case ${ci}: ${worst} vs ${2 * bound}`).toBeLessThanOrEqual(2 * bound);
      tf.dispose([a, b]);
    });
  });
});

describe.runIf(hasBf16)('bf16 linear (bias accumulated onto the product)', () => {
  it.each([
    [1, 1, 1, false],
    [37, 257, 65, true],
    [300, 29, 31, false],
    [70, 384, 1152, true],
  ])('[%i, %i]·W → %i (W [out, in]: %s) with bias, within the bound of float64', async (rows, K, N, tW) => {
    await useBackend('native', { log: () => {} });
    const rng = new Rng(`bf16-linear/${rows}/${K}/${N}`);
    const x = uniform([rows, K], rng, 3);
    const w = uniform(tW ? [N, K] : [K, N], rng, 0.5);
    const bias = uniform([N], rng, 4);
    const want = reference(x, w, false, tW);
    const bv = bias.dataSync();
    const y = await withMatmulPrecision('bf16', () => linearOp({ x, weight: w, bias }, { transposeWeight: tW })[0]!);
    const got = y.dataSync();
    const bound = MATMUL_TOLERANCE.bf16 * Math.sqrt(K) * maxAbs(x.dataSync()) * maxAbs(w.dataSync()) + 1e-6 * 4;
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - (want.values[i]! + bv[i % N]!)));
    expect(worst, `max error ${worst} vs bound ${bound}`).toBeLessThanOrEqual(bound);
    tf.dispose([x, w, bias, y]);
  });
});

describe.runIf(hasBf16)('GPT training with bf16 matmuls', () => {
  it('tracks the fp32 loss within 2% (relative) at every one of 20 steps, leaking nothing', async () => {
    const before = tf.memory().numTensors;
    const bf16 = await trainGpt('bf16', 20);
    const fp32 = await trainGpt('fp32', 20);
    expect(tf.memory().numTensors).toBe(before);
    expect(new Set(bf16.counts.slice(1)).size, `live tensors per step: ${bf16.counts.join(', ')}`).toBe(1);
    const rel = bf16.losses.map((l, i) => Math.abs(l - fp32.losses[i]!) / fp32.losses[i]!);
    console.log(`bf16 vs fp32 GPT loss, max relative difference over 20 steps: ${Math.max(...rel).toExponential(2)}`);
    for (const [i, r] of rel.entries())
      expect(r, `step ${i}: ${bf16.losses[i]} vs ${fp32.losses[i]}`).toBeLessThan(0.02);
    expect(Math.max(...rel)).toBeGreaterThan(0); // bf16 really ran
    expect(bf16.losses[19]!).toBeLessThan(bf16.losses[0]! * 0.8); // it learns
  });
});

describe('matmul precision where it is not supported', () => {
  it('backend cpu says it has no bf16 matmul', async () => {
    await useBackend('cpu', { log: () => {} });
    const s = matmulPrecisionSupport('cpu', 'bf16');
    expect(s.supported).toBe(false);
    expect(s.reason).toMatch(/backend cpu does not support bf16 matmul/);
    expect(() => setMatmulPrecision('bf16')).toThrow(/backend cpu does not support bf16/);
    expect(() => setMatmulPrecision('fp32')).not.toThrow();
  });

  it('native on a CPU without AVX-512 BF16 (TESSERA_NATIVE_DISABLE=avx512bf16): a clear no, and the kernel refuses', () => {
    const script = `
      import { matmulPrecisionSupport, setMatmulPrecision, useBackend } from '@tessera/tensor-core';
      import { nativeCpuFeatures } from '@tessera/kernels-native';
      await useBackend('native', { log: () => {} });
      const out = { feature: nativeCpuFeatures().avx512bf16, support: matmulPrecisionSupport('native', 'bf16') };
      try { setMatmulPrecision('bf16'); out.set = 'ok'; } catch (e) { out.set = e.message; }
      console.log(JSON.stringify(out));`;
    const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: new URL('..', import.meta.url),
      env: { ...process.env, TESSERA_NATIVE_DISABLE: 'avx512bf16' },
      encoding: 'utf8',
    });
    const out = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(out.feature).toBe(false);
    expect(out.support).toEqual({
      supported: false,
      reason: 'backend native on this CPU lacks AVX-512 BF16 (avx512_bf16); remove bf16 or use a CPU that has it',
    });
    expect(out.set).toMatch(/setMatmulPrecision\("bf16"\): backend native on this CPU lacks AVX-512 BF16/);
  });
});
