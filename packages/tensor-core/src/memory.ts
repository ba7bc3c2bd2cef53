import * as tf from '@tensorflow/tfjs-core';
import './engine.js';
import { TesseraError } from './errors.js';
import type { Module } from './module.js';

export class TensorLeakError extends TesseraError {}

/**
 * Loss and gradients of `lossFn` with respect to the module's trainable parameters,
 * keyed by parameter name. Every intermediate is disposed; the caller owns the
 * returned loss and gradients (dispose them, or use trainStep).
 */
export function valueAndGrads(
  module: Module,
  lossFn: () => tf.Scalar,
): { loss: tf.Scalar; grads: Map<string, tf.Tensor> } {
  const named = module.namedParameters({ trainableOnly: true });
  const { value, grads } = tf.variableGrads(
    lossFn,
    named.map(([, p]) => p.variable),
  );
  const byName = new Map<string, tf.Tensor>();
  for (const [name, p] of named) {
    const g = grads[p.variable.name];
    if (g) byName.set(name, g);
  }
  return { loss: value, grads: byName };
}

/**
 * Runs one training step: computes loss and gradients, hands the gradients to
 * `update` (which assigns new parameter values), then disposes everything but the
 * returned loss value. The live tensor count is the same after every step.
 */
export function trainStep(
  module: Module,
  lossFn: () => tf.Scalar,
  update: (grads: Map<string, tf.Tensor>) => void,
): number {
  const { loss, grads } = valueAndGrads(module, lossFn);
  try {
    tf.tidy(() => update(grads));
    return loss.dataSync()[0]!;
  } finally {
    loss.dispose();
    for (const g of grads.values()) g.dispose();
  }
}

/** Runs `fn` and throws if it leaves more live tensors behind than it started with (plus `allowed`). */
export function assertNoLeak<T>(label: string, fn: () => T, allowed = 0): T {
  const before = tf.memory().numTensors;
  const result = fn();
  const after = tf.memory().numTensors;
  if (after - before > allowed) {
    throw new TensorLeakError(
      `${label} leaked ${after - before - allowed} tensor(s): ${before} live before, ${after} after.`,
    );
  }
  return result;
}
