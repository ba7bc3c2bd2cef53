import * as tf from '@tensorflow/tfjs-core';
import { defineOp, OpInputError } from '../op.js';
import { requireFloat } from './util.js';

export interface LinearAttrs extends Record<string, unknown> {
  /** true: weight is [out, in] (nn.Linear), y = x·Wᵀ; false: weight is [in, out] (GPT-2's Conv1D), y = x·W. */
  transposeWeight: boolean;
}

type LinearInputs = 'x' | 'weight' | 'bias';

/**
 * y = x·W (+ b) for x [rows, in]: a matmul whose bias rides in the product (a backend starts
 * the output as the bias rows and lets the GEMM accumulate onto them) instead of a separate
 * broadcast add over the whole output.
 */
export const linearOp = defineOp<LinearInputs, LinearAttrs, 'bias'>({
  name: 'TesseraLinear',
  description: 'y = x·W (+ b) for x [rows, in], W [in, out] or [out, in] (transposeWeight), b [out].',
  inputs: ['x', 'weight', 'bias'],
  optionalInputs: ['bias'],
  defaults: { transposeWeight: false },
  inferOutputs(inputs, attrs) {
    const op = 'TesseraLinear';
    const x = requireFloat(op, 'x', inputs.x);
    const w = requireFloat(op, 'weight', inputs.weight);
    if (typeof attrs.transposeWeight !== 'boolean') {
      throw new OpInputError(
        `${op}: attr transposeWeight must be true or false; got ${String(attrs.transposeWeight)}.`,
      );
    }
    if (x.shape.length !== 2) {
      throw new OpInputError(`${op}: x must be [rows, in]; got [${x.shape.join(', ')}]. Reshape it first.`);
    }
    if (w.shape.length !== 2) {
      throw new OpInputError(`${op}: weight must be a matrix; got [${w.shape.join(', ')}].`);
    }
    const [inW, out] = attrs.transposeWeight ? [w.shape[1]!, w.shape[0]!] : [w.shape[0]!, w.shape[1]!];
    if (inW !== x.shape[1]) {
      const layout = attrs.transposeWeight ? '[out, in]' : '[in, out]';
      throw new OpInputError(
        `${op}: x has ${x.shape[1]} features but weight [${w.shape.join(', ')}] (${layout}) takes ${inW}.`,
      );
    }
    if (inputs.bias) {
      const b = requireFloat(op, 'bias', inputs.bias);
      if (b.shape.length !== 1 || b.shape[0] !== out) {
        throw new OpInputError(`${op}: bias must be [${out}] (one per output feature); got [${b.shape.join(', ')}].`);
      }
    }
    return [{ shape: [x.shape[0]!, out], dtype: 'float32' }];
  },
  reference({ x, weight, bias }, { transposeWeight }) {
    return tf.tidy(() => {
      const y = tf.matMul(x!, weight!, false, transposeWeight); // [rows, out]
      return bias ? tf.add(y, bias) : y;
    });
  },
  gradient([dy], { inputs, attrs }) {
    const { x, weight, bias } = inputs;
    const dx = tf.matMul(dy!, weight!, false, !attrs.transposeWeight); // [rows, in]
    const dWeight = attrs.transposeWeight
      ? tf.matMul(dy!, x!, true, false) // [out, in]
      : tf.matMul(x!, dy!, true, false); // [in, out]
    return { x: dx, weight: dWeight, ...(bias ? { bias: tf.sum(dy!, 0) } : {}) };
  },
});

/** y = x·W (+ b) over the last axis of x [..., in]; `transposeWeight` for W stored [out, in]. */
export function linear(x: tf.Tensor, weight: tf.Tensor, bias?: tf.Tensor, transposeWeight = false): tf.Tensor {
  const lead = x.shape.slice(0, -1);
  const inFeatures = x.shape[x.shape.length - 1]!;
  return tf.tidy(() => {
    const flat = tf.reshape(x, [-1, inFeatures]); // [rows, in]
    const y = linearOp({ x: flat, weight, ...(bias ? { bias } : {}) }, { transposeWeight })[0]!; // [rows, out]
    return tf.reshape(y, [...lead, y.shape[1]!]); // [..., out]
  });
}
