import { describe, expect, it } from 'vitest';
import {
  Module,
  type Parameter,
  Rng,
  TensorLeakError,
  adamwUpdate,
  assertNoLeak,
  attention,
  dropout,
  gelu,
  layerNorm,
  softmaxCrossEntropy,
  tf,
  trainStep,
  useBackend,
} from '@tessera/tensor-core';
import '@tessera/kernels-cpu';

class TinyAttentionLm extends Module {
  readonly emb: Parameter;
  readonly w: Parameter;
  readonly g: Parameter;
  readonly b: Parameter;
  constructor(
    readonly vocab: number,
    readonly dim: number,
    readonly rng: Rng,
  ) {
    super();
    this.emb = this.registerParameter('emb', rng.normalTensor([vocab, dim], 0.1));
    this.w = this.registerParameter('w', rng.normalTensor([dim, dim], 0.1));
    this.g = this.registerParameter('g', tf.ones([dim]));
    this.b = this.registerParameter('b', tf.zeros([dim]));
  }
  loss(ids: tf.Tensor, labels: tf.Tensor): tf.Scalar {
    const [B, T] = ids.shape as [number, number];
    const x = tf.reshape(tf.gather(this.emb.value, tf.reshape(ids, [-1])), [B, 1, T, this.dim]); // [B, 1, T, C]
    const h = attention(x, x, x, { causal: true });
    const y = gelu(layerNorm(tf.matMul(tf.reshape(h, [B * T, this.dim]), this.w.value), this.g.value, this.b.value));
    const logits = tf.matMul(dropout(y, 0.1, this.rng, this.training), this.emb.value, false, true); // [B*T, V]
    return softmaxCrossEntropy(logits, tf.reshape(labels, [-1]));
  }
}

describe('memory', () => {
  it('200 forward/backward/update steps keep the live tensor count constant, and the loss falls', async () => {
    await useBackend('cpu', { log: () => {} });
    const rng = new Rng(5);
    const model = new TinyAttentionLm(12, 16, rng);
    const moments = new Map(
      model.namedParameters().map(([n, p]) => [n, { m: tf.zerosLike(p.value), v: tf.zerosLike(p.value) }]),
    );
    const params = new Map(model.namedParameters());
    const ids = tf.tensor2d(
      [
        [1, 2, 3, 4, 5, 6],
        [6, 5, 4, 3, 2, 1],
      ],
      [2, 6],
      'int32',
    );
    const labels = tf.tensor2d(
      [
        [2, 3, 4, 5, 6, 7],
        [5, 4, 3, 2, 1, 0],
      ],
      [2, 6],
      'int32',
    );
    const counts: number[] = [];
    const losses: number[] = [];
    for (let step = 1; step <= 200; step++) {
      losses.push(
        trainStep(
          model,
          () => model.loss(ids, labels),
          (grads) => {
            for (const [name, grad] of grads) {
              const s = moments.get(name)!;
              const next = adamwUpdate(params.get(name)!.value, grad, s.m, s.v, { lr: 1e-2, step });
              params.get(name)!.assign(next.param);
              tf.dispose([s.m, s.v]);
              s.m = tf.keep(next.m);
              s.v = tf.keep(next.v);
            }
          },
        ),
      );
      counts.push(tf.memory().numTensors);
    }
    expect(new Set(counts.slice(1)).size).toBe(1);
    expect(counts[0]).toBe(counts[199]);
    expect(losses[199]!).toBeLessThan(losses[0]! * 0.5);
    tf.dispose([ids, labels, ...[...moments.values()].flatMap((s) => [s.m, s.v])]);
    model.dispose();
  });

  it('assertNoLeak names the leak', () => {
    let kept: tf.Tensor | undefined;
    expect(() =>
      assertNoLeak('leaky step', () => {
        kept = tf.ones([2]);
      }),
    ).toThrow(TensorLeakError);
    expect(() => assertNoLeak('leaky step', () => tf.tidy(() => tf.ones([2]).dispose()))).not.toThrow();
    tf.dispose(kept!);
  });
});
