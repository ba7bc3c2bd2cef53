import { linear, Module, type Parameter, type Rng, tf } from '@tessera/tensor-core';

/**
 * Weight layout as the checkpoint stores it, so import/export never transposes:
 * "inOut" is GPT-2's Conv1D ([in, out], y = x·W), "outIn" is nn.Linear ([out, in], y = x·Wᵀ).
 */
export type LinearLayout = 'inOut' | 'outIn';

export interface LinearOptions {
  bias?: boolean;
  layout?: LinearLayout;
  /** Standard deviation of the normal initialisation. */
  std?: number;
}

/** y = x·W (+ b) over the last axis of x. */
export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | undefined;
  readonly layout: LinearLayout;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    rng: Rng,
    options: LinearOptions = {},
  ) {
    super();
    this.layout = options.layout ?? 'outIn';
    const shape = this.layout === 'inOut' ? [inFeatures, outFeatures] : [outFeatures, inFeatures];
    this.weight = this.registerParameter('weight', rng.normalTensor(shape, options.std ?? 0.02));
    this.bias = options.bias === false ? undefined : this.registerParameter('bias', tf.zeros([outFeatures]));
  }

  forward(x: tf.Tensor): tf.Tensor {
    // tensor-core's fused linear: a backend with a kernel adds the bias inside the GEMM.
    return linear(x, this.weight.value, this.bias?.value, this.layout === 'outIn'); // [..., out]
  }
}

/** A lookup table [numEmbeddings, dim]. */
export class Embedding extends Module {
  readonly weight: Parameter;

  constructor(
    readonly numEmbeddings: number,
    readonly dim: number,
    rng: Rng,
    std = 0.02,
  ) {
    super();
    this.weight = this.registerParameter('weight', rng.normalTensor([numEmbeddings, dim], std));
  }

  /** ids [...] (int32) -> [..., dim] */
  forward(ids: tf.Tensor): tf.Tensor {
    const rows = tf.gather(this.weight.value, tf.reshape(ids, [-1])); // [N, dim]
    return tf.reshape(rows, [...ids.shape, this.dim]); // [..., dim]
  }
}
