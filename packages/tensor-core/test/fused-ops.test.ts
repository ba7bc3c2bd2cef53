import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  OpInputError,
  Rng,
  adamwUpdate,
  attention,
  attentionOp,
  defineOp,
  gelu,
  layerNorm,
  opKernelCoverage,
  registerOpKernel,
  rmsNorm,
  softmaxCrossEntropy,
  tf,
} from '@tessera/tensor-core';
import { registerCpuDerivedBackend } from '@tessera/kernels-cpu';
import { expectClose } from '../../../tools/testing/compare.js';

// "plain" shares tfjs-backend-cpu's kernels but has none of Tessera's fused kernels,
// like a third-party backend that has not written them yet.
const PLAIN = 'plaincpu';

const rng = new Rng('fused-ops');

/** Runs fn on a backend and returns plain arrays (so results outlive the backend switch). */
async function on(backend: string, fn: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const out = fn();
  const values = out.map((t) => Float32Array.from(t.dataSync()));
  tf.dispose(out);
  return values;
}

beforeAll(async () => {
  registerCpuDerivedBackend(PLAIN, { withFusedKernels: false });
});
afterAll(async () => {
  await tf.setBackend('cpu');
  tf.removeBackend(PLAIN);
});

describe('fused ops fall back to their reference composition', () => {
  it('a backend without kernels reports reference composition for every fused op', async () => {
    const coverage = opKernelCoverage(PLAIN);
    expect(coverage.length).toBeGreaterThanOrEqual(11);
    expect(coverage.every((c) => !c.kernel)).toBe(true);
    expect(opKernelCoverage('cpu').every((c) => c.kernel)).toBe(true);
    await tf.setBackend(PLAIN);
    expect(attentionOp.hasKernel()).toBe(false);
    expect(attentionOp.hasKernel('cpu')).toBe(true);
  });

  it('forward values and gradients on the fallback equal the cpu kernels', async () => {
    const x = rng.normalTensor([2, 5, 8]).arraySync() as number[][][];
    const g = rng.normalTensor([8]).arraySync() as number[];
    const qkv = rng.normalTensor([3, 2, 2, 5, 4]).arraySync() as number[][][][][];
    const logits = rng.normalTensor([10, 7], 3).arraySync() as number[][];
    const labels = [0, 1, 2, 3, 4, 5, 6, -100, 2, 1];
    const mask = [1, 1, 1, 0, 0, 1, 1, 1, 1, 1];
    const program = () => {
      const xs = tf.tensor(x);
      const gamma = tf.tensor(g);
      const [q, k, v] = qkv.map((t) => tf.tensor(t));
      const m = tf.tensor2d(mask, [2, 5], 'int32');
      const f = (a: tf.Tensor, w: tf.Tensor, qq: tf.Tensor) =>
        tf.add(
          tf.add(tf.sum(gelu(layerNorm(a, w), 'tanh')), tf.sum(gelu(rmsNorm(a, w)))),
          tf.add(
            tf.sum(attention(qq, k!, v!, { causal: true, mask: m })),
            softmaxCrossEntropy(tf.tensor(logits), tf.tensor1d(labels, 'int32')),
          ),
        );
      const grads = tf.grads(f)([xs, gamma, q!]);
      return [f(xs, gamma, q!), ...grads];
    };
    const onCpu = await on('cpu', program);
    const onPlain = await on(PLAIN, program);
    onCpu.forEach((values, i) => {
      expectClose(tf.tensor(onPlain[i]!), tf.tensor(values), 2e-6, `output ${i}`);
    });
  });

  it('adamw on the fallback equals the cpu kernel', async () => {
    const p = rng.normalTensor([13]).arraySync() as number[];
    const gr = rng.normalTensor([13]).arraySync() as number[];
    const program = () => {
      const out = adamwUpdate(tf.tensor(p), tf.tensor(gr), tf.zeros([13]), tf.zeros([13]), { lr: 0.1, step: 1 });
      return [out.param, out.m, out.v];
    };
    const a = await on('cpu', program);
    const b = await on(PLAIN, program);
    a.forEach((values, i) => {
      expectClose(tf.tensor(b[i]!), tf.tensor(values), 1e-6, `adamw ${i}`);
    });
  });
});

describe('defineOp', () => {
  it('validates inputs and attrs with messages that say what is wrong', async () => {
    await tf.setBackend('cpu');
    const q = tf.zeros([1, 2, 3, 4]);
    const k = tf.zeros([1, 2, 5, 3]);
    expect(() => attention(q, k, k)).toThrow(
      /k \[1, 2, 5, 3\] must match q \[1, 2, 3, 4\] in batch, nHead and headSize/,
    );
    expect(() => attention(q, q, q, { mask: tf.zeros([1, 2]) })).toThrow(/mask must be \[batch, keyLen\] = \[1, 3\]/);
    expect(() => layerNorm(tf.zeros([2, 3]), tf.ones([4]))).toThrow(/"gamma" has shape \[4\]; expected \[3\]/);
    expect(() => gelu(tf.zeros([2], 'int32'))).toThrow(/must be float32; got int32/);
    expect(() => softmaxCrossEntropy(tf.zeros([2, 3]), tf.zeros([2]))).toThrow(/labels" must be int32/);
    expect(() => softmaxCrossEntropy(tf.zeros([2, 3]), tf.zeros([3], 'int32'))).toThrow(
      /labels shape \[3\] must equal/,
    );
    expect(() =>
      adamwUpdate(tf.zeros([2]), tf.zeros([2]), tf.zeros([2]), tf.zeros([2]), { lr: Number.NaN, step: 1 }),
    ).toThrow(/attr lr must be a finite number >= 0; got NaN/);
    expect(() => adamwUpdate(tf.zeros([2]), tf.zeros([2]), tf.zeros([2]), tf.zeros([2]), { lr: 1, step: 0 })).toThrow(
      /step must be an integer >= 1/,
    );
    expect(() => attentionOp({ q, k: q, v: q, extra: q } as never)).toThrow(/unknown input "extra"/);
    expect(() => attentionOp({ q, k: q } as never)).toThrow(OpInputError);
  });

  it('a new op: reference runs everywhere, a registered kernel takes over, the declared gradient is used', async () => {
    await tf.setBackend('cpu');
    let kernelCalls = 0;
    const cube = defineOp<'x', { scale: number }>({
      name: 'TestCube',
      description: 'scale * x^3',
      inputs: ['x'],
      defaults: { scale: 1 },
      inferOutputs: ({ x }) => [{ shape: x!.shape, dtype: 'float32' }],
      reference: ({ x }, { scale }) => tf.mul(tf.pow(x!, 3), scale),
      gradient: ([dy], { inputs, attrs }) => ({ x: tf.mul(dy!, tf.mul(tf.square(inputs.x!), 3 * attrs.scale)) }),
    });
    const x = tf.tensor([1, 2, -3]);
    const viaReference = tf.grad((t: tf.Tensor) => tf.sum(cube({ x: t }, { scale: 2 })[0]!))(x);
    expect(Array.from(viaReference.dataSync())).toEqual([6, 24, 54]);
    registerOpKernel('TestCube', 'cpu', ({ inputs, backend, attrs }) => {
      kernelCalls++;
      const b = backend as unknown as {
        data: { get(id: object): { values: Float32Array } };
        makeTensorInfo: (shape: number[], dtype: string, v: Float32Array) => unknown;
      };
      const v = b.data.get(inputs.x!.dataId).values.map((e) => (attrs!.scale as number) * e ** 3);
      return b.makeTensorInfo(inputs.x!.shape, 'float32', v);
    });
    expect(cube.hasKernel()).toBe(true);
    const y = cube({ x }, { scale: 2 })[0]!;
    expect(Array.from(y.dataSync())).toEqual([2, 16, -54]);
    const viaKernel = tf.grad((t: tf.Tensor) => tf.sum(cube({ x: t }, { scale: 2 })[0]!))(x);
    expect(Array.from(viaKernel.dataSync())).toEqual([6, 24, 54]);
    expect(kernelCalls).toBe(2);
    expect(() => registerOpKernel('TestCubee', 'cpu', () => x)).toThrow(
      /Unknown op "TestCubee".*Did you mean "TestCube"/s,
    );
    expect(() => defineOp({ ...cube.spec, name: 'Bad_Name' })).toThrow(/letters and digits only/);
    tf.unregisterKernel('TestCube', 'cpu');
    tf.dispose([x, y, viaReference, viaKernel]);
  });
});
