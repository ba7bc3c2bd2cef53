// CudaBackend's host side over a fake device (test/fake_device.ts): the data-id lifecycle,
// which kernels run on the device and which through host staging, and the device kernels'
// arguments, checked against the cpu backend. Registered with the package's own
// registerCudaKernels, as backend "cudafake".
import { createCpuBackend } from '@tessera/kernels-cpu';
import { FALLBACK_FUSED_KERNELS, gelu, layerNorm, opKernelCoverage, tf } from '@tessera/tensor-core';
import * as tfc from '@tessera/tensor-core/tfjs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CudaBackend } from '../src/backend.js';
import { HOST_FALLBACK } from '../src/fallback.js';
import { registerCudaKernels } from '../src/register.js';
import { FakeDevice, fakeKernels } from './fake_device.js';

const NAME = 'cudafake';
const dev = new FakeDevice();
let backend: CudaBackend;
let registered: { device: string[]; host: string[] };

beforeAll(async () => {
  registered = registerCudaKernels(NAME, fakeKernels(dev));
  tfc.registerBackend(NAME, () => new CudaBackend(dev, createCpuBackend()), 0);
  await tf.setBackend(NAME);
  backend = tf.backend() as unknown as CudaBackend;
});
afterAll(async () => {
  await tf.setBackend('cpu');
  tfc.removeBackend(NAME);
});
beforeEach(() => {
  backend.fallbacks.clear();
  dev.calls = [];
});

/** `f` on the cpu backend and on cudafake: both results as plain arrays. */
async function both(f: () => tf.Tensor): Promise<{ cpu: number[]; cuda: number[]; shape: number[] }> {
  await tf.setBackend('cpu');
  const c = tf.tidy(f);
  const cpu = Array.from(await c.data());
  c.dispose();
  await tf.setBackend(NAME);
  const g = tf.tidy(f);
  const cuda = Array.from(await g.data());
  const shape = g.shape;
  g.dispose();
  return { cpu, cuda, shape };
}

function expectClose(r: { cpu: number[]; cuda: number[] }, digits: number): void {
  expect(r.cuda.length).toBe(r.cpu.length);
  for (let i = 0; i < r.cpu.length; i++) expect(r.cuda[i]).toBeCloseTo(r.cpu[i]!, digits);
}

const seq = (shape: number[], scale = 0.1) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, (_, i) => Math.sin(i + 1) * scale * 10),
    shape,
  );
};

describe('data ids and memory', () => {
  it('keeps written data on the host until a device kernel needs it, then uploads it once', () => {
    const m0 = dev.mallocs;
    const a = tf.tensor([1, 2, 3]);
    expect(dev.mallocs).toBe(m0); // lazy
    expect(Array.from(a.dataSync())).toEqual([1, 2, 3]);
    const b = tf.add(a, a); // device kernel: a uploads, b is allocated
    expect(dev.mallocs).toBe(m0 + 2);
    const c = tf.add(a, b);
    expect(dev.mallocs).toBe(m0 + 3); // a is not uploaded again
    expect(Array.from(c.dataSync())).toEqual([3, 6, 9]);
    tf.dispose([a, b, c]);
  });

  it('reads device data with dataSync (pinned, synchronous) and data() (async), caching the host copy', async () => {
    const a = tf.mul(tf.tensor([1, 2, 3, 4]), tf.scalar(2));
    const d0 = dev.downloads;
    expect(Array.from(await a.data())).toEqual([2, 4, 6, 8]);
    expect(Array.from(a.dataSync())).toEqual([2, 4, 6, 8]);
    expect(dev.downloads).toBe(d0 + 1);
    a.dispose();
  });

  it('frees device memory on dispose: tensors, data ids and buffers stay flat over many steps', () => {
    const w = tf.variable(seq([8, 8]));
    const step = () =>
      tf.tidy(() => {
        const x = seq([4, 8]);
        const y = tf.sin(tf.matMul(x, w)); // device GEMM, then a host fallback
        return tf.sum(tf.add(y, tf.scalar(1)));
      });
    step().dispose();
    const tensors = tf.memory().numTensors;
    const ids = backend.numDataIds();
    const buffers = dev.buffers.size;
    for (let i = 0; i < 200; i++) step().dispose();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(backend.numDataIds()).toBe(ids);
    expect(dev.buffers.size).toBe(buffers);
    w.dispose();
  });

  it('reshape shares the data id and allocates nothing', () => {
    const a = tf.add(tf.tensor([1, 2, 3, 4]), tf.scalar(0));
    const m0 = dev.mallocs;
    const r = tf.reshape(a, [2, 2]);
    expect(dev.mallocs).toBe(m0);
    expect(r.dataId).toBe(a.dataId);
    a.dispose();
    expect(Array.from(r.dataSync())).toEqual([1, 2, 3, 4]); // still referenced by r
    r.dispose();
    expect(backend.refCount(a.dataId)).toBe(0);
  });

  it('moves tensors made on another backend', async () => {
    await tf.setBackend('cpu');
    const a = tf.tensor([5, 6]);
    await tf.setBackend(NAME);
    const b = tf.add(a, tf.scalar(1));
    expect(Array.from(b.dataSync())).toEqual([6, 7]);
    tf.dispose([a, b]);
  });

  it('says what went wrong when disposed data is read', () => {
    const a = tf.add(tf.tensor([1]), tf.scalar(1));
    const id = a.dataId;
    a.dispose();
    expect(() => backend.readSync(id)).toThrow(/used after its data was disposed/);
  });

  it('reports the allocator through tf.memory()', () => {
    const a = tf.add(tf.ones([256]), tf.scalar(1));
    const mem = tf.memory() as unknown as { numBytesInGPU: number; unreliable: boolean };
    expect(mem.unreliable).toBe(false);
    expect(mem.numBytesInGPU).toBeGreaterThanOrEqual(1024);
    a.dispose();
  });
});

describe('routing: device kernels and host fallbacks', () => {
  it('runs kernels without a device implementation on the host, counted by name', async () => {
    const r = await both(() => tf.cos(tf.sin(seq([3, 5]))));
    expect(r.cuda).toEqual(r.cpu);
    expect(backend.fallbacks.get('Sin')).toBe(1);
    expect(backend.fallbacks.get('Cos')).toBe(1);
  });

  it('never uploads between host fallbacks; uploads once when a device kernel follows', () => {
    const x = tf.tensor([0.1, 0.2, 0.3]);
    const u0 = backend.transfers.uploads;
    const y = tf.exp(tf.cos(tf.sin(x)).neg()); // Sin, Cos host; Neg, Exp device
    expect(backend.transfers.uploads).toBe(u0 + 1);
    const z = tf.tan(tf.atan(x)); // host only
    expect(backend.transfers.uploads).toBe(u0 + 1);
    expect(Array.from(z.dataSync())[0]).toBeCloseTo(0.1, 6);
    tf.dispose([x, y, z]);
  });

  it('hands cases a device kernel does not cover to the host: int32, non-contiguous axes', async () => {
    const ints = await both(() => tf.add(tf.tensor([1, 2], [2], 'int32'), tf.tensor([3, 4], [2], 'int32')));
    expect(ints.cuda).toEqual([4, 6]);
    expect(backend.fallbacks.get('Add')).toBe(1);
    const r = await both(() => tf.sum(seq([2, 3, 4]), [0, 2]));
    expect(r.cuda).toEqual(r.cpu);
    expect(backend.fallbacks.get('Sum')).toBe(1);
  });

  it('marks host-staged kernels for tools, and has its own kernel for every fused op', () => {
    const kernel = tfc.getKernel('Sin', NAME)!.kernelFunc as unknown as Record<string, unknown>;
    expect(kernel[HOST_FALLBACK]).toBe(true);
    const add = tfc.getKernel('Add', NAME)!.kernelFunc as unknown as Record<string, unknown>;
    expect(add[HOST_FALLBACK]).toBeUndefined();
    expect(registered.device).toEqual(
      expect.arrayContaining(['BatchMatMul', 'Add', 'Transpose', 'Softmax', 'GatherV2']),
    );
    expect(registered.host).toContain('Sin');
    // Every fused op but those whose reference composition is the intended fallback.
    const fallback: readonly string[] = FALLBACK_FUSED_KERNELS;
    expect(
      opKernelCoverage(NAME)
        .filter((c) => c.op.startsWith('Tessera') && !c.kernel)
        .map((c) => c.op)
        .filter((op) => !fallback.includes(op)),
    ).toEqual([]);
  });

  it('runs fused ops on the device, not as the reference composition', async () => {
    const g = await both(() => gelu(seq([2, 4])));
    expectClose(g, 6);
    const l = await both(() => layerNorm(seq([2, 4]), tf.ones([4]), tf.zeros([4])));
    expectClose(l, 5);
    expect(dev.calls).toEqual(expect.arrayContaining(['gelu', 'layerNorm']));
    expect(backend.fallbacks.size).toBe(0);
  });
});

describe('device kernel arguments (against the cpu backend)', () => {
  it.each([
    ['same shape', [2, 3], [2, 3]],
    ['scalar', [2, 3], []],
    ['row', [4, 3], [3]],
    ['column', [4, 3], [4, 1]],
    ['both ways', [4, 1, 3], [2, 1]],
  ])('broadcasting binary ops: %s', async (_, sa, sb) => {
    for (const op of [tf.add, tf.sub, tf.mul, tf.div, tf.maximum, tf.squaredDifference]) {
      const r = await both(() => op(seq(sa as number[]), tf.add(seq(sb as number[], 0.3), tf.scalar(2))));
      expect(r.cuda).toEqual(r.cpu);
    }
    expect(backend.fallbacks.size).toBe(0);
    expect(dev.calls).toContain('binary');
  });

  it.each([
    ['[M,K]x[K,N]', [3, 4], [4, 5], false, false],
    ['transposed A', [4, 3], [4, 5], true, false],
    ['transposed B', [3, 4], [5, 4], false, true],
    ['both transposed', [4, 3], [5, 4], true, true],
    ['batched', [2, 3, 4], [2, 4, 5], false, false],
    ['batched, shared B (folds into M)', [2, 3, 4], [4, 5], false, false],
    ['batched, shared A', [3, 4], [2, 4, 5], false, false],
    ['batched, transposes', [2, 4, 3], [2, 5, 4], true, true],
  ])('matmul %s', async (_, sa, sb, ta, tb) => {
    const r = await both(() => tf.matMul(seq(sa as number[]), seq(sb as number[]), ta as boolean, tb as boolean));
    expectClose(r, 4);
    expect(backend.fallbacks.get('BatchMatMul')).toBeUndefined();
    expect(dev.calls).toContain('gemm');
  });

  it('matmul batch broadcasting the strided form cannot express goes to the host', async () => {
    const r = await both(() => tf.matMul(seq([2, 1, 3, 4]), seq([1, 3, 4, 2])));
    expectClose(r, 4);
    expect(backend.fallbacks.get('BatchMatMul')).toBe(1);
  });

  it('transpose, slice, concat, pad', async () => {
    const cases: (() => tf.Tensor)[] = [
      () => tf.transpose(seq([2, 3, 4]), [2, 0, 1]),
      () => tf.transpose(seq([2, 3, 4, 5]), [0, 2, 1, 3]),
      () => tf.slice(seq([4, 5, 6]), [1, 2, 0], [2, -1, 3]),
      () => tf.concat([seq([2, 3]), seq([2, 1]), seq([2, 0]), seq([2, 4])], 1),
      () => tf.concat([seq([1, 3]), seq([2, 3])], 0),
      () =>
        tf.pad(
          seq([2, 3]),
          [
            [1, 0],
            [2, 1],
          ],
          7,
        ),
    ];
    for (const f of cases) {
      const r = await both(f);
      expect(r.cuda).toEqual(r.cpu);
    }
    expect(backend.fallbacks.size).toBe(0);
    expect(dev.calls.filter((c) => c === 'stridedCopy').length).toBeGreaterThanOrEqual(8);
  });

  it('reductions over contiguous axes, and softmax', async () => {
    const cases: (() => tf.Tensor)[] = [
      () => tf.sum(seq([3, 4, 5]), 1),
      () => tf.sum(seq([3, 4, 5]), [1, 2], true),
      () => tf.sum(seq([3, 4, 5])),
      () => tf.mean(seq([3, 4]), -1),
      () => tf.max(seq([3, 4]), 0),
      () => tf.min(seq([3, 4, 2]), [0, 1]),
      () => tf.softmax(seq([3, 7])),
    ];
    for (const f of cases) {
      const r = await both(f);
      expectClose(r, 5);
    }
    expect(backend.fallbacks.size).toBe(0);
  });

  it('gradients through device and host kernels agree with cpu', async () => {
    const f = () => {
      const x = seq([3, 4]);
      const w = seq([4, 2], 0.05);
      return tf.grad((w: tf.Tensor) => tf.sum(tf.sin(tf.matMul(x, w))))(w);
    };
    const r = await both(f);
    expectClose(r, 5);
  });
});

describe('addN', () => {
  it('sums on the device, one add per extra input', async () => {
    const r = await both(() => tf.addN([seq([3, 2]), seq([3, 2], 0.2), seq([3, 2], 0.3)]));
    expectClose(r, 6);
    const one = await both(() => tf.addN([seq([4])]));
    expect(one.cuda).toEqual(one.cpu);
    expect(backend.fallbacks.get('AddN')).toBeUndefined();
  });
});
