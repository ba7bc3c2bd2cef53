import { beforeAll, describe, expect, it } from 'vitest';
import {
  Rng,
  adamwOp,
  attentionOp,
  geluOp,
  layerNormOp,
  linearGradOp,
  linearOp,
  packedAttentionOp,
  rmsNormOp,
  seqAttentionOp,
  softmaxCrossEntropyOp,
  sumSquaresOp,
  tf,
  useBackend,
  type FusedOp,
  type Tensor,
} from '@tessera/tensor-core';
import '@tessera/kernels-cpu';
import { expectClose } from '@tessera/conformance';

// The fused kernels accumulate in float64; the reference compositions run op by op in
// float32. Both round to fp32 at the end, so they agree to a few ulps of the output's
// scale: 1e-6 relative (≈ 8 ulp). Sums over a 4096-wide last axis accumulate fp32
// rounding in the composition (≈ sqrt(n)·ulp), so those cases get 4e-6. ATOL is for
// results that are mathematically ~0 (d/dx of a 1-wide norm), where only rounding is left.
const RTOL = 1e-6;
const RTOL_WIDE = 4e-6;
const ATOL = 1e-7;

const rng = new Rng('kernels-cpu');
const randn = (shape: number[], std = 1) => rng.normalTensor(shape, std);

beforeAll(async () => {
  await useBackend('cpu', { log: () => {} });
});

type AnyOp = FusedOp<string, Record<string, unknown>>;

/** Forward: kernel vs reference composition. Gradient: declared gradient (kernel path) vs autodiff of the reference. */
function checkOp(
  op: AnyOp,
  inputs: Record<string, Tensor>,
  attrs: Record<string, unknown>,
  differentiable: string[],
  rtol = RTOL,
) {
  expect(op.hasKernel('cpu')).toBe(true);
  tf.tidy(() => {
    const [kernelOut] = op(inputs, attrs);
    const [refOut] = op.reference(inputs, attrs);
    expectClose(kernelOut!, refOut!, { rtol, atol: ATOL }, `${op.name} forward`);
    if (!differentiable.length) return;
    const weights = rng.normalTensor(refOut!.shape);
    const lossOf =
      (run: (ins: Record<string, Tensor>) => Tensor[]) =>
      (...xs: Tensor[]) => {
        const ins = { ...inputs };
        differentiable.forEach((n, i) => {
          ins[n] = xs[i]!;
        });
        return tf.sum(tf.mul(run(ins)[0]!, weights));
      };
    const xs = differentiable.map((n) => inputs[n]!);
    const kernelGrads = tf.grads(lossOf((ins) => op(ins, attrs)))(xs);
    const refGrads = tf.grads(lossOf((ins) => op.reference(ins, attrs)))(xs);
    differentiable.forEach((n, i) => {
      expectClose(kernelGrads[i]!, refGrads[i]!, { rtol, atol: ATOL }, `${op.name} d${n}`);
    });
  });
}

describe('fused kernels on cpu match their reference compositions', () => {
  for (const approximate of ['none', 'tanh']) {
    for (const shape of [[1], [7], [3, 5], [2, 3, 4096]]) {
      it(`gelu ${approximate} [${shape}]`, () => {
        const x = randn(shape, 3);
        checkOp(geluOp as unknown as AnyOp, { x }, { approximate }, ['x']);
        x.dispose();
      });
    }
  }

  for (const shape of [
    [1, 1],
    [3, 7],
    [2, 5, 33],
    [2, 4096],
  ]) {
    it(`layer norm [${shape}] with and without beta`, () => {
      const C = shape[shape.length - 1]!;
      const x = randn(shape, 2);
      const gamma = randn([C]);
      const beta = randn([C]);
      const rtol = C >= 4096 ? RTOL_WIDE : RTOL;
      checkOp(layerNormOp as unknown as AnyOp, { x, gamma, beta }, { eps: 1e-5 }, ['x', 'gamma', 'beta'], rtol);
      checkOp(layerNormOp as unknown as AnyOp, { x, gamma }, { eps: 1e-5 }, ['x', 'gamma'], rtol);
      tf.dispose([x, gamma, beta]);
    });

    it(`rms norm [${shape}]`, () => {
      const C = shape[shape.length - 1]!;
      const x = randn(shape, 2);
      const gamma = randn([C]);
      checkOp(rmsNormOp as unknown as AnyOp, { x, gamma }, { eps: 1e-6 }, ['x', 'gamma'], C >= 4096 ? RTOL_WIDE : RTOL);
      tf.dispose([x, gamma]);
    });
  }

  it('layer norm of a constant row (variance 0, tiny eps) stays finite and matches', () => {
    const x = tf.fill([2, 9], 3.5);
    const gamma = randn([9]);
    checkOp(layerNormOp as unknown as AnyOp, { x, gamma }, { eps: 1e-12 }, ['gamma']);
    tf.dispose([x, gamma]);
  });

  for (const [N, V] of [
    [1, 1],
    [5, 7],
    [16, 65],
    [3, 4096],
  ] as const) {
    it(`softmax cross-entropy [${N}, ${V}] mean and sum, with ignored positions`, () => {
      const logits = randn([N, V], 4);
      const ids = Array.from({ length: N }, (_, i) => (i % 3 === 1 ? -100 : rng.int(V)));
      const labels = tf.tensor1d(ids, 'int32');
      for (const reduction of ['mean', 'sum']) {
        checkOp(
          softmaxCrossEntropyOp as unknown as AnyOp,
          { logits, labels },
          { ignoreIndex: -100, reduction },
          ['logits'],
          V >= 4096 ? RTOL_WIDE : RTOL,
        );
      }
      tf.dispose([logits, labels]);
    });
  }

  it('softmax cross-entropy with large logits stays finite; all-ignored gives 0', () => {
    const logits = tf.mul(randn([4, 9]), 1e4);
    const labels = tf.tensor1d([1, 2, 3, 4], 'int32');
    checkOp(softmaxCrossEntropyOp as unknown as AnyOp, { logits, labels }, {}, ['logits']);
    const ignored = tf.tensor1d([-100, -100, -100, -100], 'int32');
    const [loss] = softmaxCrossEntropyOp({ logits, labels: ignored });
    expect(loss!.dataSync()[0]).toBe(0);
    tf.dispose([logits, labels, ignored, loss!]);
  });

  it('softmax cross-entropy rejects a label outside the vocabulary with a clear error', () => {
    const logits = randn([2, 5]);
    const labels = tf.tensor1d([1, 5], 'int32');
    expect(() => softmaxCrossEntropyOp({ logits, labels })).toThrow(
      /label 5 at position 1 is outside the vocabulary \[0, 5\)/,
    );
    tf.dispose([logits, labels]);
  });

  const attentionCases = [
    { name: 'self, no mask', B: 1, H: 1, Tq: 1, Tk: 1, D: 1, causal: false },
    { name: 'causal', B: 2, H: 3, Tq: 7, Tk: 7, D: 5, causal: true },
    { name: 'causal with a KV cache (Tq < Tk)', B: 1, H: 2, Tq: 3, Tk: 8, D: 4, causal: true },
    { name: 'cross attention, padding mask', B: 2, H: 2, Tq: 5, Tk: 6, D: 8, causal: false, mask: true },
    {
      name: 'padding mask with a fully masked row + causal',
      B: 2,
      H: 2,
      Tq: 4,
      Tk: 4,
      D: 3,
      causal: true,
      mask: 'leading',
    },
    {
      name: 'T5-style bias [1, H, Tq, Tk], scale 1',
      B: 2,
      H: 2,
      Tq: 5,
      Tk: 5,
      D: 4,
      causal: false,
      bias: 'head',
      scale: 1,
    },
    { name: 'full bias + mask + causal', B: 2, H: 2, Tq: 6, Tk: 6, D: 4, causal: true, bias: 'full', mask: true },
    { name: 'wide head', B: 1, H: 1, Tq: 3, Tk: 3, D: 512, causal: false },
  ] as const;
  for (const c of [
    { name: 'causal', B: 2, T: 7, nHead: 3, D: 4, causal: true, mask: false },
    { name: 'padding mask, not causal', B: 2, T: 6, nHead: 2, D: 5, causal: false, mask: true },
    { name: 'causal + padding mask, one head', B: 3, T: 5, nHead: 1, D: 8, causal: true, mask: true },
  ]) {
    it(`packed attention: ${c.name}`, () => {
      const qkv = randn([c.B, c.T, 3 * c.nHead * c.D]);
      const inputs: Record<string, Tensor> = { qkv };
      if (c.mask) {
        const m = Array.from({ length: c.B * c.T }, (_, i) => (i % c.T >= c.T - Math.floor(i / c.T) ? 0 : 1));
        inputs.mask = tf.tensor2d(m, [c.B, c.T], 'int32');
      }
      checkOp(packedAttentionOp as unknown as AnyOp, inputs, { nHead: c.nHead, causal: c.causal, scale: null }, [
        'qkv',
      ]);
      tf.dispose(Object.values(inputs));
    });
  }

  for (const c of [
    { name: 'causal', B: 2, Tq: 6, Tk: 6, H: 3, D: 4, causal: true, mask: false, bias: false },
    { name: 'cross attention, padding mask', B: 2, Tq: 3, Tk: 5, H: 2, D: 5, causal: false, mask: true, bias: false },
    { name: 'bias per head, scale 1 (T5)', B: 2, Tq: 4, Tk: 4, H: 2, D: 3, causal: false, mask: false, bias: true },
  ]) {
    it(`sequence-major attention: ${c.name}`, () => {
      const E = c.H * c.D;
      const inputs: Record<string, Tensor> = {
        q: randn([c.B, c.Tq, E]),
        k: randn([c.B, c.Tk, E]),
        v: randn([c.B, c.Tk, E]),
      };
      const differentiable = ['q', 'k', 'v'];
      if (c.mask) {
        const m = Array.from({ length: c.B * c.Tk }, (_, i) => (i % c.Tk >= c.Tk - Math.floor(i / c.Tk) ? 0 : 1));
        inputs.mask = tf.tensor2d(m, [c.B, c.Tk], 'int32');
      }
      if (c.bias) {
        inputs.bias = randn([1, c.H, c.Tq, c.Tk]);
        differentiable.push('bias');
      }
      const attrs = { nHead: c.H, causal: c.causal, scale: c.bias ? 1 : null };
      checkOp(seqAttentionOp as unknown as AnyOp, inputs, attrs, differentiable);
      tf.dispose(Object.values(inputs));
    });
  }

  it('attention: a NaN score makes its query row NaN, as PyTorch does, and leaves the other rows alone', () => {
    const [B, H, T, D] = [1, 2, 5, 3];
    const qv = Float32Array.from({ length: B * H * T * D }, (_, i) => Math.sin(i));
    qv[(1 * T + 2) * D] = Number.NaN; // head 1, query 2
    const q = tf.tensor4d(qv, [B, H, T, D]);
    const k = randn([B, H, T, D]);
    const v = randn([B, H, T, D]);
    const [y] = attentionOp({ q, k, v }, { causal: true, scale: null });
    const values = y!.dataSync();
    for (let r = 0; r < B * H * T; r++) {
      const row = Array.from(values.slice(r * D, (r + 1) * D));
      expect(row.every(r === 1 * T + 2 ? Number.isNaN : Number.isFinite), `row ${r}: ${row}`).toBe(true);
    }
    tf.dispose([q, k, v, y!]);
  });

  for (const c of attentionCases) {
    it(`attention: ${c.name}`, () => {
      const q = randn([c.B, c.H, c.Tq, c.D]);
      const k = randn([c.B, c.H, c.Tk, c.D]);
      const v = randn([c.B, c.H, c.Tk, c.D]);
      const inputs: Record<string, Tensor> = { q, k, v };
      const differentiable = ['q', 'k', 'v'];
      if ('mask' in c) {
        const m = Array.from({ length: c.B * c.Tk }, (_, i) => {
          const [b, j] = [Math.floor(i / c.Tk), i % c.Tk];
          if (c.mask === 'leading') return b === 1 && j < 2 ? 0 : 1; // query 0,1 of batch 1 see nothing
          return j >= c.Tk - b ? 0 : 1;
        });
        inputs.mask = tf.tensor2d(m, [c.B, c.Tk], 'int32');
      }
      if ('bias' in c) {
        inputs.bias = randn(c.bias === 'head' ? [1, c.H, c.Tq, c.Tk] : [c.B, c.H, c.Tq, c.Tk]);
        differentiable.push('bias');
      }
      const attrs = { causal: c.causal, scale: 'scale' in c ? c.scale : null };
      checkOp(attentionOp as unknown as AnyOp, inputs, attrs, differentiable);
      if (c.mask === 'leading') {
        const [out] = attentionOp(inputs, attrs);
        const row = out!.slice([1, 0, 0, 0], [1, c.H, 2, c.D]);
        expect(Array.from(row.dataSync()).every((x) => x === 0)).toBe(true);
        tf.dispose([out!, row]);
      }
      tf.dispose(Object.values(inputs));
    });
  }

  it('sum of squares and finiteness probe match their reference, NaN and ±Inf included', () => {
    const cases: [string, number[]][] = [
      ['random', tf.tidy(() => Array.from(randn([999]).dataSync()))],
      ['NaN', [1, 2, Number.NaN, 4]],
      ['+Inf', [1, Number.POSITIVE_INFINITY]],
      ['-Inf', [Number.NEGATIVE_INFINITY, 0]],
      ['square overflows float32', [3e38, 1]],
      ['empty', []],
    ];
    for (const [name, xs] of cases) {
      tf.tidy(() => {
        const x = tf.tensor1d(xs);
        const [s, p] = sumSquaresOp({ x });
        const [rs, rp] = sumSquaresOp.reference({ x });
        expectClose(s!, rs!, { rtol: RTOL_WIDE, atol: ATOL }, `sumSquares ${name}`);
        expectClose(p!, rp!, { rtol: 0, atol: 0 }, `probe ${name}`);
        const finite = xs.every(Number.isFinite);
        expect(p!.dataSync()[0]).toBe(finite ? 0 : Number.NaN);
      });
    }
  });

  for (const [rows, K, N] of [
    [1, 1, 1],
    [7, 33, 5],
    [12, 512, 40],
  ] as const) {
    for (const transposeWeight of [false, true]) {
      it(`linear [${rows}, ${K}]·${transposeWeight ? `[${N}, ${K}]ᵀ` : `[${K}, ${N}]`} with and without bias`, () => {
        const x = randn([rows, K]);
        const weight = randn(transposeWeight ? [N, K] : [K, N], 1 / Math.sqrt(K));
        const bias = randn([N]);
        // K-term fp32 dot products in the composition: the wide tolerance from 512 terms on.
        const rtol = K >= 512 ? RTOL_WIDE : RTOL;
        checkOp(linearOp as unknown as AnyOp, { x, weight, bias }, { transposeWeight }, ['x', 'weight', 'bias'], rtol);
        checkOp(linearOp as unknown as AnyOp, { x, weight }, { transposeWeight }, ['x', 'weight'], rtol);
        tf.dispose([x, weight, bias]);
      });
    }
  }

  for (const [rows, K, N] of [
    [1, 1, 1],
    [9, 70, 13],
  ] as const) {
    for (const transposeWeight of [false, true]) {
      it(`linear gradient [${rows}, ${K}]→${N} (${transposeWeight ? '[out, in]' : '[in, out]'}): every output, with and without bias`, () => {
        tf.tidy(() => {
          const x = randn([rows, K]);
          const weight = randn(transposeWeight ? [N, K] : [K, N]);
          const dy = randn([rows, N]);
          for (const withBias of [true, false]) {
            const got = linearGradOp({ x, weight, dy }, { transposeWeight, withBias });
            const want = linearGradOp.reference({ x, weight, dy }, { transposeWeight, withBias });
            expect(got.map((t) => t.shape)).toEqual(want.map((t) => t.shape));
            expect(got).toHaveLength(withBias ? 3 : 2);
            ['dx', 'dWeight', 'dBias'].slice(0, got.length).forEach((name, i) => {
              expectClose(got[i]!, want[i]!, { rtol: RTOL, atol: ATOL }, `linear grad ${name}`);
            });
          }
        });
      });
    }
  }

  it("linear gradient names a dy that is not the forward output's shape", () => {
    tf.tidy(() => {
      const x = tf.zeros([2, 3]);
      const weight = tf.zeros([3, 5]);
      expect(() => linearGradOp({ x, weight, dy: tf.zeros([2, 4]) }, {})).toThrow(
        /TesseraLinearGrad: dy must be the forward output's shape \[2, 5\]; got \[2, 4\]/,
      );
      expect(() => linearGradOp({ x, weight: tf.zeros([4, 5]), dy: tf.zeros([2, 5]) }, {})).toThrow(
        /TesseraLinearGrad: x has 3 features/,
      );
    });
  });

  it('linear names a feature mismatch and a wrong bias before running', () => {
    const x = tf.zeros([2, 3]);
    const w = tf.zeros([4, 5]);
    const w2 = tf.zeros([3, 5]);
    const b = tf.zeros([4]);
    expect(() => linearOp({ x, weight: w }, { transposeWeight: false })).toThrow(
      /x has 3 features but weight \[4, 5\]/,
    );
    expect(() => linearOp({ x, weight: w2, bias: b }, {})).toThrow(/bias must be \[5\]/);
    tf.dispose([x, w, w2, b]);
  });

  it('adamw update matches its reference over several steps', () => {
    let param = randn([3, 17]);
    let m = tf.zerosLike(param);
    let v = tf.zerosLike(param);
    for (let step = 1; step <= 5; step++) {
      const grad = randn([3, 17]);
      const attrs = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step };
      checkOp(adamwOp as unknown as AnyOp, { param, grad, m, v }, attrs, []);
      const [p1, m1, v1] = adamwOp({ param, grad, m, v }, attrs);
      const [rp, rm, rv] = adamwOp.reference({ param, grad, m, v }, attrs);
      expectClose(m1!, rm!, { rtol: RTOL, atol: ATOL }, 'adamw m');
      expectClose(v1!, rv!, { rtol: RTOL, atol: ATOL }, 'adamw v');
      tf.dispose([param, m, v, grad, rp!, rm!, rv!]);
      [param, m, v] = [p1!, m1!, v1!];
    }
    tf.dispose([param, m, v]);
  });
});
