import * as tf from '@tensorflow/tfjs-core';
import { defineOp, OpInputError, type TensorSpec } from '../op.js';
import { requireFloat } from './util.js';

export interface LinearAttrs extends Record<string, unknown> {
  /** true: weight is [out, in] (nn.Linear), y = x·Wᵀ; false: weight is [in, out] (GPT-2's Conv1D), y = x·W. */
  transposeWeight: boolean;
}

type LinearInputs = 'x' | 'weight' | 'bias';

/** [rows, out] of x·W for x [rows, in] and weight in its layout, or the error that says what does not fit. */
function linearShape(
  op: string,
  xSpec: TensorSpec | undefined,
  wSpec: TensorSpec | undefined,
  transposeWeight: unknown,
): [number, number] {
  const x = requireFloat(op, 'x', xSpec);
  const w = requireFloat(op, 'weight', wSpec);
  if (typeof transposeWeight !== 'boolean') {
    throw new OpInputError(`${op}: attr transposeWeight must be true or false; got ${String(transposeWeight)}.`);
  }
  if (x.shape.length !== 2) {
    throw new OpInputError(`${op}: x must be [rows, in]; got [${x.shape.join(', ')}]. Reshape it first.`);
  }
  if (w.shape.length !== 2) {
    throw new OpInputError(`${op}: weight must be a matrix; got [${w.shape.join(', ')}].`);
  }
  const [inW, out] = transposeWeight ? [w.shape[1]!, w.shape[0]!] : [w.shape[0]!, w.shape[1]!];
  if (inW !== x.shape[1]) {
    const layout = transposeWeight ? '[out, in]' : '[in, out]';
    throw new OpInputError(
      `${op}: x has ${x.shape[1]} features but weight [${w.shape.join(', ')}] (${layout}) takes ${inW}.`,
    );
  }
  return [x.shape[0]!, out];
}

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
    const [rows, out] = linearShape(op, inputs.x, inputs.weight, attrs.transposeWeight);
    if (inputs.bias) {
      const b = requireFloat(op, 'bias', inputs.bias);
      if (b.shape.length !== 1 || b.shape[0] !== out) {
        throw new OpInputError(`${op}: bias must be [${out}] (one per output feature); got [${b.shape.join(', ')}].`);
      }
    }
    return [{ shape: [rows, out], dtype: 'float32' }];
  },
  reference({ x, weight, bias }, { transposeWeight }) {
    return tf.tidy(() => {
      const y = tf.matMul(x!, weight!, false, transposeWeight); // [rows, out]
      return bias ? tf.add(y, bias) : y;
    });
  },
  gradient([dy], { inputs, attrs }) {
    const { x, weight, bias } = inputs;
    const [dx, dWeight, dBias] = linearGradOp(
      { x: x!, weight: weight!, dy: dy! },
      { transposeWeight: attrs.transposeWeight, withBias: bias !== undefined },
    );
    return { x: dx!, weight: dWeight!, ...(bias ? { bias: dBias! } : {}) };
  },
});

export interface LinearGradAttrs extends LinearAttrs {
  /** Also the bias gradient (a third output, [out]). */
  withBias: boolean;
}

/**
 * TesseraLinear's gradients from x [rows, in], its weight and dy [rows, out]: dx = dy·Wᵀ
 * [rows, in], dW = xᵀ·dy ([in, out]) or dyᵀ·x ([out, in]), and db = dy's column sums. One op,
 * so that a backend whose GEMM packs dy for dW takes the sums from that pass instead of
 * reading dy again, and runs the two products in one call.
 */
export const linearGradOp = defineOp<'x' | 'weight' | 'dy', LinearGradAttrs, never>({
  name: 'TesseraLinearGrad',
  description:
    "TesseraLinear's gradients: dx = dy·Wᵀ, dW = xᵀ·dy (dyᵀ·x for transposeWeight) and, with withBias, db = dy's column sums.",
  inputs: ['x', 'weight', 'dy'],
  outputs: ['dx', 'dWeight', 'dBias'], // dBias only withBias
  defaults: { transposeWeight: false, withBias: true },
  inferOutputs(inputs, attrs) {
    const op = 'TesseraLinearGrad';
    if (typeof attrs.withBias !== 'boolean') {
      throw new OpInputError(`${op}: attr withBias must be true or false; got ${String(attrs.withBias)}.`);
    }
    const [rows, out] = linearShape(op, inputs.x, inputs.weight, attrs.transposeWeight);
    const dy = requireFloat(op, 'dy', inputs.dy);
    if (dy.shape.length !== 2 || dy.shape[0] !== rows || dy.shape[1] !== out) {
      throw new OpInputError(
        `${op}: dy must be the forward output's shape [${rows}, ${out}]; got [${dy.shape.join(', ')}].`,
      );
    }
    const x = inputs.x!;
    const w = inputs.weight!;
    const dx = { shape: [...x.shape], dtype: 'float32' as const };
    const dWeight = { shape: [...w.shape], dtype: 'float32' as const };
    return attrs.withBias ? [dx, dWeight, { shape: [dy.shape[1]!], dtype: 'float32' }] : [dx, dWeight];
  },
  reference({ x, weight, dy }, { transposeWeight, withBias }) {
    return tf.tidy(() => {
      const dx = tf.matMul(dy!, weight!, false, !transposeWeight); // [rows, in]
      const dWeight = transposeWeight
        ? tf.matMul(dy!, x!, true, false) // [out, in]
        : tf.matMul(x!, dy!, true, false); // [in, out]
      return withBias ? [dx, dWeight, tf.sum(dy!, 0)] : [dx, dWeight];
    });
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
