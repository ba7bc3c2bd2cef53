import { describe, expect, it } from 'vitest';
import {
  Rng,
  attention,
  registry,
  gelu,
  layerNorm,
  rmsNorm,
  softmaxCrossEntropy,
  tf,
  useBackend,
} from '@tessera/tensor-core';
import * as seam from '@tessera/tensor-core/tfjs';
import { engineOfKernels } from '@tessera/kernels-cpu';

describe('one engine', () => {
  it('the backend package and the model-facing API share one engine instance', async () => {
    await useBackend('cpu', { log: () => {} });
    expect(engineOfKernels()).toBe(tf.engine());
    expect(seam.engine()).toBe(tf.engine());
    // A kernel registered through the seam is visible to ops run through `tf`.
    seam.registerKernel({
      kernelName: 'TesseraEngineProbe',
      backendName: 'cpu',
      kernelFunc: ({ inputs }) => inputs.x!,
    });
    expect(tf.getKernel('TesseraEngineProbe', 'cpu')).toBeDefined();
    seam.unregisterKernel('TesseraEngineProbe', 'cpu');
  });

  it('has the chained tensor methods', () => {
    const x = tf.tensor([1, 2, 3]);
    const y = x.add(1).mul(2).sum();
    expect(y.dataSync()[0]).toBe(18);
    tf.dispose([x, y]);
  });

  it('has a gradient for every kernel a transformer training step runs', async () => {
    await useBackend('cpu', { log: () => {} });
    const rng = new Rng(3);
    const [B, T, C, H, V] = [2, 4, 8, 2, 11];
    const params = {
      wte: tf.variable(rng.normalTensor([V, C], 0.1)),
      wpe: tf.variable(rng.normalTensor([T, C], 0.1)),
      w: tf.variable(rng.normalTensor([C, 3 * C], 0.1)),
      g: tf.variable(tf.ones([C])),
      b: tf.variable(tf.zeros([C])),
      bias: tf.variable(rng.normalTensor([1, H, T, T], 0.1)),
    };
    const ids = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [B, T], 'int32');
    const labels = tf.tensor2d([2, 3, 4, -100, 6, 7, 8, 9], [B, T], 'int32');
    const mask = tf.tensor2d([1, 1, 1, 1, 1, 1, 1, 0], [B, T], 'int32');
    // Exercise the ops the GPT, BERT and T5 families use: gather, slices, reshapes,
    // transposes, matmuls, fused norms/activations/attention/loss, tanh, relu, dropout-style mul.
    const step = () => {
      let x = tf.add(tf.reshape(tf.gather(params.wte, tf.reshape(ids, [-1])), [B, T, C]), params.wpe); // [B, T, C]
      x = layerNorm(x, params.g, params.b);
      const qkv = tf.reshape(tf.matMul(tf.reshape(x, [B * T, C]), params.w), [B, T, 3 * C]); // [B, T, 3C]
      const [q, k, v] = tf.split(qkv, 3, 2).map((t) => tf.transpose(tf.reshape(t, [B, T, H, C / H]), [0, 2, 1, 3])); // [B, H, T, hs]
      const y = attention(q!, k!, v!, { causal: true, mask, bias: params.bias });
      let h = tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, T, C]); // [B, T, C]
      h = tf.add(gelu(h, 'tanh'), tf.add(gelu(h), tf.relu(rmsNorm(h, params.g))));
      h = tf.add(
        h,
        tf.tanh(tf.concat([tf.slice(h, [0, 0, 0], [B, T, C / 2]), tf.slice(h, [0, 0, C / 2], [B, T, C / 2])], 2)),
      );
      h = tf.mul(h, tf.div(tf.sqrt(tf.exp(tf.neg(tf.square(h)))), tf.maximum(tf.abs(h), 1)));
      const logits = tf.matMul(tf.reshape(h, [B * T, C]), params.wte, false, true); // [B*T, V]
      return tf.add(softmaxCrossEntropy(tf.reshape(logits, [B, T, V]), labels), tf.mean(tf.logSoftmax(logits)));
    };
    // Profile the forward pass: these are the kernels the model runs and must differentiate.
    const profile = await tf.profile(() => tf.dispose(step()));
    const forwardKernels = [...new Set(profile.kernelNames)].sort();
    expect(forwardKernels).toEqual(
      expect.arrayContaining(['BatchMatMul', 'GatherV2', 'TesseraAttention', 'TesseraLayerNorm']),
    );
    // Kernels that only see integer/boolean data (masks, labels, indices) need no gradient.
    const integerOnly = new Set(['Cast', 'Equal', 'Fill', 'LessEqual', 'NotEqual', 'Range']);
    const fused = new Set(registry.op.list());
    // customGrad nodes (our fused ops' wrappers, tfjs's logSoftmax) carry their own gradient: "" or "name__op".
    const customGradient = (k: string) => k === '' || k.endsWith('__op');
    const missing = forwardKernels.filter(
      (k) => !integerOnly.has(k) && !fused.has(k) && !customGradient(k) && !tf.getGradient(k),
    );
    expect(missing).toEqual([]);
    for (const op of forwardKernels.filter((k) => fused.has(k))) {
      expect(registry.op.get(op).meta.differentiable, op).toBe(true);
    }
    // And the whole step really differentiates to every variable.
    const { value, grads } = tf.variableGrads(step as () => tf.Scalar);
    expect(Object.keys(grads)).toHaveLength(Object.keys(params).length);
    for (const g of Object.values(grads)) expect(Number.isFinite(tf.sum(tf.abs(g)).dataSync()[0])).toBe(true);
    tf.dispose([value, ...Object.values(grads)]);
    tf.dispose([...Object.values(params), ids, labels, mask]);
  });
});
