import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adamwUpdate,
  attention,
  attentionGradOp,
  FALLBACK_FUSED_KERNELS,
  FUSED_KERNELS,
  gelu,
  layerNorm,
  opKernelCoverage,
  registry,
  Rng,
  rmsNorm,
  softmaxCrossEntropy,
  tf,
  useBackend,
} from '@tessera/tensor-core';
import '@tessera/kernels-cpu';
import { describeWebGpu, fusedKernelNames, webgpuStatus } from '@tessera/kernels-webgpu';
import { createModel, type PretrainedModel } from '@tessera/transformer';
import { expectClose, type HostTensor as ReadBack, toHost } from '@tessera/conformance';

// These tests need a WebGPU adapter (a GPU's Vulkan driver, or Mesa >= 25's lavapipe:
// `node packages/kernels-webgpu/scripts/setup-lavapipe.mjs`). Without one they skip and
// say why; TESSERA_REQUIRE_WEBGPU=1 (set it in CI that installs lavapipe) makes that a failure.
const status = await webgpuStatus();
const SKIP_REASON = status.available ? undefined : `no WebGPU adapter: ${status.reason}`;
if (SKIP_REASON) console.warn(`[@tessera/kernels-webgpu] skipping GPU tests — ${SKIP_REASON}`);
const gpu = describe.skipIf(!!SKIP_REASON);

// Each output within rtol of the cpu result's max |value| plus ATOL (@tessera/conformance's
// rule); ATOL for results that are ~0, where WGSL's approximations differ in absolute terms.
const ATOL = 1e-6;

interface HostTensor {
  shape: number[];
  dtype: 'float32' | 'int32';
  values: Float32Array | Int32Array;
}

/** Runs `fn` on `backend` with the inputs uploaded there; returns every output, read asynchronously. */
async function runOn(
  backend: string,
  inputs: Record<string, HostTensor>,
  fn: (x: Record<string, tf.Tensor>) => tf.Tensor[],
): Promise<ReadBack[]> {
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const xs = Object.fromEntries(
    Object.entries(inputs).map(([k, v]) => [k, tf.tensor(v.values, v.shape, v.dtype)]),
  ) as Record<string, tf.Tensor>;
  const outs = tf.tidy(() => fn(xs));
  const values = await Promise.all(outs.map(toHost));
  tf.dispose([...outs, ...Object.values(xs)]);
  expect(tf.memory().numTensors, `${backend} leaked tensors`).toBe(before);
  return values;
}

async function compare(
  label: string,
  inputs: Record<string, HostTensor>,
  fn: (x: Record<string, tf.Tensor>) => tf.Tensor[],
  rtol = 1e-5,
) {
  const ref = await runOn('cpu', inputs, fn);
  const got = await runOn('webgpu', inputs, fn);
  expect(tf.getBackend()).toBe('webgpu');
  ref.forEach((r, i) => {
    expectClose(got[i]!, r, { rtol, atol: ATOL }, `${label} output ${i}`);
  });
}

const rng = new Rng('kernels-webgpu');
function randn(shape: number[], std = 1): HostTensor {
  const t = rng.normalTensor(shape, std);
  const values = Float32Array.from(t.dataSync());
  t.dispose();
  return { shape, dtype: 'float32', values };
}
function ints(shape: number[], max: number): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = Int32Array.from({ length: n }, (_, i) => (i * 7919 + 13) % max);
  return { shape, dtype: 'int32', values };
}

describe('availability', () => {
  it('isAvailable() reports the adapter, or what is missing and what to do', async () => {
    const meta = registry.backend.get('webgpu').meta as unknown as {
      isAvailable(): Promise<{ available: boolean; reason: string; hardware?: boolean }>;
      priority: number;
    };
    const a = await meta.isAvailable();
    expect(a.reason.length).toBeGreaterThan(10);
    if (!a.available) {
      expect(a.reason).toMatch(/setup-lavapipe|Vulkan|WebGPU|webgpu/);
    } else if (status.adapter && /llvmpipe|lavapipe/i.test(status.adapter.description)) {
      expect(a.hardware).toBe(false);
      expect(a.reason).toMatch(/software adapter/);
    }
    expect(meta.priority).toBe(30);
  });

  it('"auto" skips a software-only or missing webgpu adapter', async () => {
    const lines: string[] = [];
    const choice = await useBackend('auto', { log: (l) => lines.push(l) });
    if (!status.available || !status.hardware) {
      expect(choice.name).not.toBe('webgpu');
      expect(lines.join('\n')).toMatch(/webgpu: /);
    }
    await tf.setBackend('cpu');
  });
});

gpu(`webgpu vs cpu (${status.available ? 'adapter found' : 'skipped'})`, () => {
  beforeAll(async () => {
    await useBackend('webgpu', { log: () => {} });
    // Run every kernel as WGSL: no forwarding of small CPU-resident inputs to CPU code.
    tf.env().set('WEBGPU_CPU_FORWARD', false);
    console.warn(`[@tessera/kernels-webgpu] running on ${await describeWebGpu()}`);
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it('synchronous reads of GPU data fail with a message that says what to do', async () => {
    await tf.setBackend('webgpu');
    const y = tf.tidy(() => tf.add(tf.ones([4, 4]), tf.ones([4, 4])));
    if (typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas === 'undefined') {
      expect(() => y.dataSync()).toThrow(/await t\.data\(\)/);
    }
    expect(Array.from(await y.data())).toEqual(new Array(16).fill(2));
    y.dispose();
  });

  it('matMul (batched, transposed) and elementwise math', async () => {
    await compare('matMul', { a: randn([3, 17, 33]), b: randn([3, 40, 33]) }, ({ a, b }) => [
      tf.matMul(a!, b!, false, true),
    ]);
    await compare('elementwise', { x: randn([5, 31], 2) }, ({ x }) => [
      tf.tanh(x!),
      tf.exp(tf.neg(tf.square(x!))),
      tf.sqrt(tf.abs(x!)),
      tf.add(tf.mul(x!, 3), tf.scalar(0.5)),
    ]);
  });

  it('addN of more inputs than a shader has storage buffers (upstream binds all in one) matches cpu', async () => {
    const inputs = Object.fromEntries(Array.from({ length: 23 }, (_, i) => [`x${i}`, randn([3, 5])]));
    await compare('addN 23', inputs, (xs) => [tf.addN(Object.values(xs)), tf.addN(Object.values(xs).slice(0, 7))]);
  });

  it('softmax, logSoftmax and reductions over an odd and a wide last axis', async () => {
    for (const shape of [
      [3, 7],
      [2, 1025],
    ]) {
      await compare(`softmax [${shape}]`, { x: randn(shape, 3) }, ({ x }) => [
        tf.softmax(x!),
        tf.logSoftmax(x!),
        tf.sum(x!, -1),
        tf.max(x!, -1),
        tf.mean(x!),
      ]);
    }
  });

  it('gather and its scatter-add gradient; transpose/slice/concat', async () => {
    await compare(
      'gather',
      { table: randn([50, 16]), ids: ints([4, 9], 50), w: randn([4, 9, 16]) },
      ({ table, ids, w }) => {
        const f = (t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, ids!), w!));
        return [tf.gather(table!, ids!), tf.grad(f)(table!)];
      },
    );
    await compare('layout', { x: randn([2, 3, 4, 5]) }, ({ x }) => [
      tf.transpose(x!, [0, 2, 1, 3]),
      tf.slice(x!, [0, 1, 0, 2], [2, 2, 4, 3]),
      tf.concat([x!, tf.neg(x!)], 3),
    ]);
  });

  it('WGSL kernels are registered for every fused op: gelu, norms, cross-entropy, attention, AdamW', () => {
    const own = opKernelCoverage('webgpu')
      .filter((c) => c.kernel)
      .map((c) => c.op)
      .sort();
    // Every fused op but those whose composition is the intended fallback.
    const composed: readonly string[] = FALLBACK_FUSED_KERNELS;
    expect(own).toEqual(
      Object.keys(FUSED_KERNELS)
        .filter((n) => !composed.includes(n))
        .sort(),
    );
    expect(fusedKernelNames.length).toBe(own.length);
    expect(own).toEqual(
      expect.arrayContaining([
        'TesseraGelu',
        'TesseraGeluGrad',
        'TesseraLayerNorm',
        'TesseraLayerNormGrad',
        'TesseraSoftmaxCrossEntropy',
        'TesseraSoftmaxCrossEntropyGrad',
        'TesseraAttention',
        'TesseraAttentionGrad',
        'TesseraAdamW',
      ]),
    );
    const withoutKernel = opKernelCoverage('webgpu').filter((c) => !c.kernel);
    expect(withoutKernel.filter((c) => !composed.includes(c.op))).toEqual([]);
  });

  it('RMS norm and AdamW kernels match cpu (odd, one-wide and wide rows)', async () => {
    for (const shape of [
      [1, 1],
      [5, 7],
      [3, 1031],
    ]) {
      const C = shape[shape.length - 1]!;
      await compare(
        `rms norm [${shape}]`,
        { x: randn(shape), g: randn([C]), w: randn(shape) },
        ({ x, g, w }) => [
          rmsNorm(x!, g!),
          ...tf.grads((xx: tf.Tensor, gg: tf.Tensor) => tf.sum(tf.mul(rmsNorm(xx, gg), w!)))([x!, g!]),
        ],
        1e-4,
      );
    }
    const p = randn([4099]);
    const grad = randn([4099]);
    const m = randn([4099], 0.1);
    const v: HostTensor = { ...randn([4099]), values: randn([4099]).values.map((x) => x * x * 0.01) };
    await compare(
      'adamw',
      { p, grad, m, v },
      ({ p, grad, m, v }) => {
        const r = adamwUpdate(p!, grad!, m!, v!, { lr: 1e-3, step: 7, weightDecay: 0.1 });
        return [r.param, r.m, r.v];
      },
      1e-5,
    );
  });

  it('layer norm without beta, odd widths and many rows (two-pass dgamma/dbeta) match cpu', async () => {
    for (const [shape, withBeta] of [
      [[70, 13], true],
      [[2049, 8], true],
      [[33, 20], false],
    ] as [number[], boolean][]) {
      const C = shape[shape.length - 1]!;
      await compare(
        `layer norm [${shape}]${withBeta ? '' : ' no beta'}`,
        { x: randn(shape), g: randn([C]), b: randn([C]), w: randn(shape) },
        ({ x, g, b, w }) => {
          const f = (xx: tf.Tensor, gg: tf.Tensor, bb?: tf.Tensor) => tf.sum(tf.mul(layerNorm(xx, gg, bb), w!));
          return [layerNorm(x!, g!, withBeta ? b! : undefined), ...tf.grads(f)(withBeta ? [x!, g!, b!] : [x!, g!])];
        },
        1e-4,
      );
    }
  });

  it('fused ops match cpu on webgpu (forward and gradient)', async () => {
    await compare(
      'layer norm',
      { x: randn([4, 6, 48]), g: randn([48]), b: randn([48]), w: randn([4, 6, 48]) },
      ({ x, g, b, w }) => {
        const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(layerNorm(xx, gg, bb), w!));
        return [layerNorm(x!, g!, b!), ...tf.grads(f)([x!, g!, b!])];
      },
      1e-4,
    );
    await compare(
      'gelu',
      { x: randn([3, 65], 3) },
      ({ x }) => [gelu(x!), tf.grad((xx: tf.Tensor) => tf.sum(gelu(xx, 'tanh')))(x!)],
      1e-4,
    );
    await compare(
      'softmax cross-entropy',
      { logits: randn([5, 11], 2), labels: ints([5], 11) },
      ({ logits, labels }) => {
        const f = (l: tf.Tensor) => softmaxCrossEntropy(l, labels!);
        return [f(logits!), tf.grad(f)(logits!)];
      },
      1e-4,
    );
  });

  // Attention against the cpu kernel (float64 accumulation). The WGSL kernels accumulate in
  // float32 over at most 1,100 keys (q·k, p·v) or queries (dk, dv): rtol 1e-4 of the
  // reference's scale leaves ~100x margin over the measured ≤ 9e-7. Shapes cover both code
  // paths (unrolled registers and vec4 rows; scalar rows, loops, several accumulator passes);
  // on lavapipe their first compile takes ~20 s (LLVM), cached on disk by Mesa afterwards.
  interface AttentionCase {
    label: string;
    q: [number, number, number, number];
    tk?: number;
    dv?: number;
    causal?: boolean;
    scale?: number;
    mask?: number[];
    bias?: number[];
  }
  const attentionCases: AttentionCase[] = [
    { label: 'size 1', q: [1, 1, 1, 1] },
    { label: 'head size 0, scale 1: the scores are the bias', q: [1, 2, 3, 0], dv: 3, scale: 1, bias: [1, 2, 3, 3] },
    { label: 'odd sizes, value size differs (scalar rows)', q: [2, 3, 5, 7], dv: 3 },
    { label: 'causal, vec4 rows', q: [2, 3, 5, 8], causal: true },
    { label: 'padding mask, second sequence fully masked', q: [2, 2, 4, 8], mask: [1, 1, 1, 0, 0, 0, 0, 0] },
    {
      label: 'causal + padding mask: fully masked first query',
      q: [3, 2, 6, 4],
      causal: true,
      mask: [0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1],
    },
    { label: 'bias broadcast over batch, scale 1 (T5)', q: [2, 3, 5, 8], scale: 1, bias: [1, 3, 5, 5] },
    { label: 'full bias', q: [2, 3, 5, 8], bias: [2, 3, 5, 5] },
    { label: 'bias per batch and key, causal KV cache', q: [2, 3, 5, 8], tk: 7, causal: true, bias: [2, 1, 1, 7] },
    { label: 'KV cache: one query, 9 keys', q: [2, 2, 1, 16], tk: 9, causal: true },
    { label: 'head 64, 70 tokens', q: [1, 2, 70, 64], causal: true },
    { label: 'query rows past the unrolled size, 1,100 keys', q: [1, 1, 3, 132], tk: 1100, dv: 20 },
    { label: 'values wider than one accumulator pass', q: [1, 2, 9, 4], dv: 68, causal: true },
  ];

  // Both paths of the kernels: scores in memory (matmuls + a row pass, the default up to
  // TESSERA_WEBGPU_ATTENTION_SCORES_MB) and streamed (limit 0: the online-softmax forward and
  // the row-loop P/dS backward used past the limit).
  const attentionPaths = [
    ['scores in memory', undefined],
    ['streamed', '0'],
  ] as const;
  for (const [path, limit] of attentionPaths)
    it(`attention kernels match cpu (${path}): forward, dq/dk/dv/dbias, masks, bias, KV offsets, fully masked rows`, async () => {
      const saved = process.env.TESSERA_WEBGPU_ATTENTION_SCORES_MB;
      if (limit === undefined) delete process.env.TESSERA_WEBGPU_ATTENTION_SCORES_MB;
      else process.env.TESSERA_WEBGPU_ATTENTION_SCORES_MB = limit;
      try {
        for (const c of attentionCases) {
          const [B, H, Tq, D] = c.q;
          const Tk = c.tk ?? Tq;
          const Dv = c.dv ?? D;
          const inputs: Record<string, HostTensor> = {
            q: randn([B, H, Tq, D]),
            k: randn([B, H, Tk, D]),
            v: randn([B, H, Tk, Dv]),
            w: randn([B, H, Tq, Dv]),
          };
          if (c.mask) inputs.mask = { shape: [B, Tk], dtype: 'int32', values: Int32Array.from(c.mask) };
          if (c.bias) inputs.bias = randn(c.bias);
          await compare(
            `attention ${c.label}`,
            inputs,
            ({ q, k, v, w, mask, bias }) => {
              const options = { causal: !!c.causal, scale: c.scale ?? null, ...(mask ? { mask } : {}) };
              const f = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor, bb?: tf.Tensor) =>
                tf.sum(tf.mul(attention(qq, kk, vv, { ...options, ...(bb ? { bias: bb } : {}) }), w!));
              const y = attention(q!, k!, v!, { ...options, ...(bias ? { bias } : {}) });
              return [y, ...tf.grads(f)(bias ? [q!, k!, v!, bias] : [q!, k!, v!])];
            },
            1e-4,
          );
        }
      } finally {
        if (saved === undefined) delete process.env.TESSERA_WEBGPU_ATTENTION_SCORES_MB;
        else process.env.TESSERA_WEBGPU_ATTENTION_SCORES_MB = saved;
      }
    });

  it('the attention gradient op without bias returns dbias = dS of full shape', async () => {
    const inputs = { dy: randn([2, 2, 3, 8]), q: randn([2, 2, 3, 8]), k: randn([2, 2, 5, 8]), v: randn([2, 2, 5, 8]) };
    await compare(
      'attention grad op',
      inputs,
      ({ dy, q, k, v }) => attentionGradOp({ dy, q, k, v }, { causal: true, scale: null }),
      1e-4,
    );
  });

  it('attention releases its buffers: repeated forward and backward leave memory flat', async () => {
    await tf.setBackend('webgpu');
    const [q, k, v, bias] = [randn([2, 2, 6, 8]), randn([2, 2, 6, 8]), randn([2, 2, 6, 8]), randn([1, 2, 6, 6])].map(
      (h) => tf.tensor(h.values, h.shape),
    ) as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
    const mask = tf.tensor([1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1], [2, 6], 'int32');
    const backend = tf.engine().backend as unknown as {
      numDataIds(): number;
      bufferManager: { numUsedBuffers: number };
    };
    const snapshot = () => ({
      tensors: tf.memory().numTensors,
      dataIds: backend.numDataIds(),
      usedBuffers: backend.bufferManager.numUsedBuffers,
    });
    const step = async () => {
      const grads = tf.tidy(() =>
        tf.grads((qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor, bb: tf.Tensor) =>
          tf.sum(attention(qq, kk, vv, { causal: true, mask, bias: bb })),
        )([q, k, v, bias]),
      );
      await grads[0]!.data();
      tf.dispose(grads);
    };
    await step();
    const before = snapshot();
    for (let i = 0; i < 20; i++) await step();
    expect(snapshot()).toEqual(before);
    tf.dispose([q, k, v, bias, mask]);
  });

  it('a GPT forward and backward match cpu (loss, logits, every parameter gradient)', async () => {
    const config = {
      vocab_size: 64,
      n_positions: 32,
      n_embd: 32,
      n_layer: 2,
      n_head: 4,
      resid_pdrop: 0,
      embd_pdrop: 0,
      attn_pdrop: 0,
    };
    const ids = ints([2, 12], 64);
    const results: Record<string, Record<string, Float32Array>> = {};
    let state: Record<string, HostTensor> | undefined;
    for (const backend of ['cpu', 'webgpu']) {
      await tf.setBackend(backend);
      const before = tf.memory().numTensors;
      const model = createModel('gpt', 'causal-lm', config, new Rng('gpt-init')) as PretrainedModel;
      if (state) {
        // The same weights on both backends, whatever the initialiser does per backend.
        const loaded = Object.fromEntries(Object.entries(state).map(([k, v]) => [k, tf.tensor(v.values, v.shape)]));
        model.loadStateDict(loaded);
        tf.dispose(Object.values(loaded));
      } else {
        state = {};
        for (const [name, t] of Object.entries(model.stateDict())) {
          state[name] = { shape: t.shape, dtype: 'float32', values: Float32Array.from(await t.data()) };
        }
      }
      const inputIds = tf.tensor(ids.values, ids.shape, 'int32');
      const params = [...model.namedParameters()];
      const { value, grads } = tf.variableGrads(
        () => model.forward({ inputIds, labels: inputIds }).loss!,
        params.map(([, p]) => p.variable),
      );
      const logits = tf.tidy(() => model.forward({ inputIds }).logits);
      const out: Record<string, Float32Array> = {
        loss: Float32Array.from(await value.data()),
        logits: Float32Array.from(await logits.data()),
      };
      const byVariable = new Map(params.map(([n, p]) => [p.variable.name, n]));
      for (const [varName, g] of Object.entries(grads))
        out[`grad ${byVariable.get(varName)}`] = Float32Array.from(await g.data());
      results[backend] = out;
      tf.dispose([value, logits, inputIds, ...Object.values(grads)]);
      model.dispose();
      expect(tf.memory().numTensors, `${backend}: live tensors after the step`).toBe(before);
    }
    const cpu = results.cpu!;
    const webgpu = results.webgpu!;
    expect(Object.keys(webgpu).sort()).toEqual(Object.keys(cpu).sort());
    expect(Object.keys(cpu).length).toBeGreaterThan(10);
    expect(Math.abs(webgpu.loss![0]! - cpu.loss![0]!)).toBeLessThan(1e-4);
    for (const [name, ref] of Object.entries(cpu)) {
      expectClose(
        { shape: [webgpu[name]!.length], values: webgpu[name]! },
        { shape: [ref.length], values: ref },
        { rtol: 1e-3, atol: ATOL },
        name,
      );
    }
  });
});

gpu('webgpu training memory', () => {
  it('memory stays flat over training steps (tensors, data ids, GPU buffers in use)', async () => {
    await useBackend('webgpu', { log: () => {} });
    const steps = Number(process.env.TESSERA_WEBGPU_MEMORY_STEPS ?? 200);
    const model = createModel(
      'gpt',
      'causal-lm',
      {
        vocab_size: 32,
        n_positions: 16,
        n_embd: 16,
        n_layer: 1,
        n_head: 2,
        resid_pdrop: 0,
        embd_pdrop: 0,
        attn_pdrop: 0,
      },
      new Rng('memory'),
    ) as PretrainedModel;
    const ids = ints([2, 8], 32);
    const inputIds = tf.tensor(ids.values, ids.shape, 'int32');
    const params = [...model.namedParameters()].map(([, p]) => p);
    const moments = params.map((p) => ({ m: tf.zerosLike(p.value), v: tf.zerosLike(p.value) }));
    const backend = tf.engine().backend as unknown as {
      numDataIds(): number;
      bufferManager: { numUsedBuffers: number };
    };
    const snapshot = () => ({
      tensors: tf.memory().numTensors,
      dataIds: backend.numDataIds(),
      usedBuffers: backend.bufferManager.numUsedBuffers,
    });
    const losses: number[] = [];
    let after1: ReturnType<typeof snapshot> | undefined;
    for (let step = 1; step <= steps; step++) {
      const { value, grads } = tf.variableGrads(
        () => model.forward({ inputIds, labels: inputIds }).loss!,
        params.map((p) => p.variable),
      );
      params.forEach((p, i) => {
        const g = grads[p.variable.name]!;
        const next = adamwUpdate(p.value, g, moments[i]!.m, moments[i]!.v, { lr: 1e-2, step, weightDecay: 0 });
        p.assign(next.param);
        tf.dispose([moments[i]!.m, moments[i]!.v, next.param]);
        moments[i] = { m: next.m, v: next.v };
      });
      tf.dispose(Object.values(grads));
      if (step === 1 || step === steps) losses.push((await value.data())[0]!);
      value.dispose();
      if (step === 1) after1 = snapshot();
    }
    expect(snapshot()).toEqual(after1);
    expect(losses[1]!).toBeLessThan(losses[0]!);
    tf.dispose([inputIds, ...moments.flatMap((s) => [s.m, s.v])]);
    model.dispose();
    await tf.setBackend('cpu');
  });
});

// Keep the skip visible in the test list, not only in stderr (registered only when skipping).
if (SKIP_REASON) {
  describe('webgpu tests skipped', () => {
    it.skipIf(process.env.TESSERA_REQUIRE_WEBGPU !== '1')(`skipped: ${SKIP_REASON}`, () => {
      throw new Error(`TESSERA_REQUIRE_WEBGPU=1 but ${SKIP_REASON}`);
    });
  });
}
