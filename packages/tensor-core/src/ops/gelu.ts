import * as tf from '@tensorflow/tfjs-core';
import { defineOp, OpInputError } from '../op.js';
import { requireFloat } from './util.js';

export type GeluApproximate = 'none' | 'tanh';
export interface GeluAttrs extends Record<string, unknown> {
  /** "none": exact erf form (BERT, torch default); "tanh": GPT-2's approximation (gelu_new). */
  approximate: GeluApproximate;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const COEFF = 0.044715;

function checkAttrs(op: string, attrs: GeluAttrs): void {
  if (attrs.approximate !== 'none' && attrs.approximate !== 'tanh') {
    throw new OpInputError(
      `${op}: attr approximate must be "none" or "tanh"; got ${JSON.stringify(attrs.approximate)}.`,
    );
  }
}

export const geluGradOp = defineOp<'dy' | 'x', GeluAttrs, never>({
  name: 'TesseraGeluGrad',
  description: "Backward of GELU: dx = dy * gelu'(x).",
  inputs: ['dy', 'x'],
  defaults: { approximate: 'none' },
  inferOutputs(inputs, attrs) {
    checkAttrs('TesseraGeluGrad', attrs);
    const x = requireFloat('TesseraGeluGrad', 'x', inputs.x);
    requireFloat('TesseraGeluGrad', 'dy', inputs.dy);
    return [{ shape: x.shape, dtype: 'float32' }];
  },
  reference({ dy, x }, { approximate }) {
    return tf.tidy(() => {
      const xv = x!;
      let dgelu: tf.Tensor;
      if (approximate === 'tanh') {
        const inner = tf.mul(SQRT_2_OVER_PI, tf.add(xv, tf.mul(COEFF, tf.pow(xv, 3))));
        const t = tf.tanh(inner);
        const dInner = tf.mul(SQRT_2_OVER_PI, tf.add(1, tf.mul(3 * COEFF, tf.square(xv))));
        dgelu = tf.add(tf.mul(0.5, tf.add(1, t)), tf.mul(tf.mul(0.5, xv), tf.mul(tf.sub(1, tf.square(t)), dInner)));
      } else {
        const cdf = tf.mul(0.5, tf.add(1, tf.erf(tf.mul(xv, INV_SQRT_2))));
        const pdf = tf.mul(INV_SQRT_2PI, tf.exp(tf.mul(-0.5, tf.square(xv))));
        dgelu = tf.add(cdf, tf.mul(xv, pdf));
      }
      return tf.mul(dy!, dgelu);
    });
  },
});

export const geluOp = defineOp<'x', GeluAttrs, never>({
  name: 'TesseraGelu',
  description: 'GELU activation, exact (erf) or tanh approximation.',
  inputs: ['x'],
  defaults: { approximate: 'none' },
  inferOutputs(inputs, attrs) {
    checkAttrs('TesseraGelu', attrs);
    const x = requireFloat('TesseraGelu', 'x', inputs.x);
    return [{ shape: x.shape, dtype: 'float32' }];
  },
  reference({ x }, { approximate }) {
    return tf.tidy(() => {
      const xv = x!;
      if (approximate === 'tanh') {
        const inner = tf.mul(SQRT_2_OVER_PI, tf.add(xv, tf.mul(COEFF, tf.pow(xv, 3))));
        return tf.mul(tf.mul(0.5, xv), tf.add(1, tf.tanh(inner)));
      }
      return tf.mul(tf.mul(0.5, xv), tf.add(1, tf.erf(tf.mul(xv, INV_SQRT_2))));
    });
  },
  gradient([dy], { inputs, attrs }) {
    return { x: geluGradOp({ dy, x: inputs.x }, { approximate: attrs.approximate })[0] };
  },
});

/** GELU: `approximate: 'tanh'` for GPT-2, `'none'` (erf) for BERT and T5 v1.1. */
export function gelu(x: tf.Tensor, approximate: GeluApproximate = 'none'): tf.Tensor {
  return geluOp({ x }, { approximate })[0]!;
}
