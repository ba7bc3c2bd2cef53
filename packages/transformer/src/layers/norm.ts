import { Module, type Parameter, layerNorm, rmsNorm, tf } from '@tessera/tensor-core';

/** LayerNorm over the last axis (fused op); `bias: false` for bias-free variants. */
export class LayerNorm extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | undefined;

  constructor(
    readonly channels: number,
    readonly eps = 1e-5,
    options: { bias?: boolean } = {},
  ) {
    super();
    this.weight = this.registerParameter('weight', tf.ones([channels]));
    this.bias = options.bias === false ? undefined : this.registerParameter('bias', tf.zeros([channels]));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return layerNorm(x, this.weight.value, this.bias?.value, this.eps);
  }
}

/** T5's LayerNorm: RMS norm, weight only (fused op). */
export class RMSNorm extends Module {
  readonly weight: Parameter;

  constructor(
    readonly channels: number,
    readonly eps = 1e-6,
  ) {
    super();
    this.weight = this.registerParameter('weight', tf.ones([channels]));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return rmsNorm(x, this.weight.value, this.eps);
  }
}
