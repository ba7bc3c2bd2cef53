import * as tf from '@tensorflow/tfjs-core';
import { defineOp, OpInputError, type TensorSpec } from '../op.js';
import { lastDim, requireFloat, requireShape, sumAllButLast } from './util.js';

export interface NormAttrs extends Record<string, unknown> {
  /** Added to the variance before the square root. */
  eps: number;
}

function checkEps(op: string, attrs: NormAttrs): void {
  if (typeof attrs.eps !== 'number' || !(attrs.eps >= 0) || !Number.isFinite(attrs.eps)) {
    throw new OpInputError(`${op}: attr eps must be a finite number >= 0; got ${String(attrs.eps)}.`);
  }
}

function checkChannelInputs(op: string, x: TensorSpec, weights: Record<string, TensorSpec | undefined>): number {
  if (x.shape.length < 1) throw new OpInputError(`${op}: input "x" must have at least one dimension; got a scalar.`);
  const channels = lastDim(x.shape);
  for (const [name, w] of Object.entries(weights)) {
    if (w) requireShape(op, name, requireFloat(op, name, w), [channels], `one value per channel of x's last dimension`);
  }
  return channels;
}

/** Normalised x and 1/sqrt(var + eps) over the last axis. */
function normalise(x: tf.Tensor, eps: number): { xHat: tf.Tensor; rstd: tf.Tensor } {
  const mean = tf.mean(x, -1, true);
  const centred = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centred), -1, true);
  const rstd = tf.rsqrt(tf.add(variance, eps));
  return { xHat: tf.mul(centred, rstd), rstd };
}

export const layerNormGradOp = defineOp<'dy' | 'x' | 'gamma', NormAttrs, never>({
  name: 'TesseraLayerNormGrad',
  description: 'Backward of layer norm: dx, dgamma, dbeta.',
  inputs: ['dy', 'x', 'gamma'],
  outputs: ['dx', 'dgamma', 'dbeta'],
  defaults: { eps: 1e-5 },
  inferOutputs(inputs, attrs) {
    checkEps('TesseraLayerNormGrad', attrs);
    const x = requireFloat('TesseraLayerNormGrad', 'x', inputs.x);
    const channels = checkChannelInputs('TesseraLayerNormGrad', x, { gamma: inputs.gamma });
    requireFloat('TesseraLayerNormGrad', 'dy', inputs.dy);
    return [
      { shape: x.shape, dtype: 'float32' },
      { shape: [channels], dtype: 'float32' },
      { shape: [channels], dtype: 'float32' },
    ];
  },
  reference({ dy, x, gamma }, { eps }) {
    return tf.tidy(() => {
      const { xHat, rstd } = normalise(x!, eps);
      const dgamma = sumAllButLast(tf.mul(dy!, xHat));
      const dbeta = sumAllButLast(dy!);
      const dxHat = tf.mul(dy!, gamma!);
      const meanDxHat = tf.mean(dxHat, -1, true);
      const meanDxHatXHat = tf.mean(tf.mul(dxHat, xHat), -1, true);
      const dx = tf.mul(rstd, tf.sub(tf.sub(dxHat, meanDxHat), tf.mul(xHat, meanDxHatXHat)));
      return [dx, dgamma, dbeta];
    });
  },
});

export const layerNormOp = defineOp<'x' | 'gamma' | 'beta', NormAttrs, 'beta'>({
  name: 'TesseraLayerNorm',
  description: 'Layer normalisation over the last axis: (x - mean) / sqrt(var + eps) * gamma + beta.',
  inputs: ['x', 'gamma', 'beta'],
  optionalInputs: ['beta'],
  defaults: { eps: 1e-5 },
  inferOutputs(inputs, attrs) {
    checkEps('TesseraLayerNorm', attrs);
    const x = requireFloat('TesseraLayerNorm', 'x', inputs.x);
    checkChannelInputs('TesseraLayerNorm', x, { gamma: inputs.gamma, beta: inputs.beta });
    return [{ shape: x.shape, dtype: 'float32' }];
  },
  reference({ x, gamma, beta }, { eps }) {
    return tf.tidy(() => {
      const scaled = tf.mul(normalise(x!, eps).xHat, gamma!);
      return beta ? tf.add(scaled, beta) : scaled;
    });
  },
  gradient([dy], { inputs, attrs }) {
    const [dx, dgamma, dbeta] = layerNormGradOp({ dy, x: inputs.x, gamma: inputs.gamma }, { eps: attrs.eps });
    if (!inputs.beta) dbeta!.dispose();
    return { x: dx, gamma: dgamma, ...(inputs.beta ? { beta: dbeta } : {}) };
  },
});

/** Layer norm over the last axis (GPT-2 pre-LN, BERT post-LN). `beta` may be omitted (no bias). */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta?: tf.Tensor, eps = 1e-5): tf.Tensor {
  return layerNormOp({ x, gamma, ...(beta ? { beta } : {}) }, { eps })[0]!;
}

export const rmsNormGradOp = defineOp<'dy' | 'x' | 'gamma', NormAttrs, never>({
  name: 'TesseraRmsNormGrad',
  description: 'Backward of RMS norm: dx, dgamma.',
  inputs: ['dy', 'x', 'gamma'],
  outputs: ['dx', 'dgamma'],
  defaults: { eps: 1e-6 },
  inferOutputs(inputs, attrs) {
    checkEps('TesseraRmsNormGrad', attrs);
    const x = requireFloat('TesseraRmsNormGrad', 'x', inputs.x);
    const channels = checkChannelInputs('TesseraRmsNormGrad', x, { gamma: inputs.gamma });
    requireFloat('TesseraRmsNormGrad', 'dy', inputs.dy);
    return [
      { shape: x.shape, dtype: 'float32' },
      { shape: [channels], dtype: 'float32' },
    ];
  },
  reference({ dy, x, gamma }, { eps }) {
    return tf.tidy(() => {
      const r = tf.rsqrt(tf.add(tf.mean(tf.square(x!), -1, true), eps));
      const dgamma = sumAllButLast(tf.mul(dy!, tf.mul(x!, r)));
      const dxn = tf.mul(dy!, gamma!);
      const meanDxnX = tf.mean(tf.mul(dxn, x!), -1, true);
      const dx = tf.sub(tf.mul(r, dxn), tf.mul(tf.mul(x!, tf.pow(r, 3)), meanDxnX));
      return [dx, dgamma];
    });
  },
});

export const rmsNormOp = defineOp<'x' | 'gamma', NormAttrs, never>({
  name: 'TesseraRmsNorm',
  description: 'RMS normalisation over the last axis (T5): x / sqrt(mean(x^2) + eps) * gamma.',
  inputs: ['x', 'gamma'],
  defaults: { eps: 1e-6 },
  inferOutputs(inputs, attrs) {
    checkEps('TesseraRmsNorm', attrs);
    const x = requireFloat('TesseraRmsNorm', 'x', inputs.x);
    checkChannelInputs('TesseraRmsNorm', x, { gamma: inputs.gamma });
    return [{ shape: x.shape, dtype: 'float32' }];
  },
  reference({ x, gamma }, { eps }) {
    return tf.tidy(() => tf.mul(tf.mul(x!, tf.rsqrt(tf.add(tf.mean(tf.square(x!), -1, true), eps))), gamma!));
  },
  gradient([dy], { inputs, attrs }) {
    const [dx, dgamma] = rmsNormGradOp({ dy, x: inputs.x, gamma: inputs.gamma }, { eps: attrs.eps });
    return { x: dx, gamma: dgamma };
  },
});

/** RMS norm over the last axis (T5's LayerNorm: no mean subtraction, no bias). */
export function rmsNorm(x: tf.Tensor, gamma: tf.Tensor, eps = 1e-6): tf.Tensor {
  return rmsNormOp({ x, gamma }, { eps })[0]!;
}
