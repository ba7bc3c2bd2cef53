import * as tf from '@tensorflow/tfjs-core';
import { OpInputError, type TensorSpec } from '../op.js';

export function requireFloat(op: string, name: string, t: TensorSpec | undefined): TensorSpec {
  if (!t) throw new OpInputError(`${op}: input "${name}" is required.`);
  if (t.dtype !== 'float32') {
    throw new OpInputError(
      `${op}: input "${name}" must be float32; got ${t.dtype}. Cast it with tf.cast(x, 'float32').`,
    );
  }
  return t;
}

export function requireShape(op: string, name: string, t: TensorSpec, expected: number[], meaning: string): void {
  const ok = t.shape.length === expected.length && t.shape.every((d, i) => expected[i] === -1 || d === expected[i]);
  if (!ok) {
    throw new OpInputError(
      `${op}: input "${name}" has shape [${t.shape.join(', ')}]; expected [${expected
        .map((d) => (d === -1 ? '*' : d))
        .join(', ')}] (${meaning}).`,
    );
  }
}

export function lastDim(shape: readonly number[]): number {
  return shape[shape.length - 1] ?? 1;
}

/** Sums `x` down to `shape` (the inverse of broadcasting), for gradients of broadcast inputs. */
export function sumToShape(x: tf.Tensor, shape: readonly number[]): tf.Tensor {
  const rankGap = x.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < x.rank; i++) {
    const target = i < rankGap ? 1 : shape[i - rankGap]!;
    if (i < rankGap || (target === 1 && x.shape[i] !== 1)) axes.push(i);
  }
  const summed = axes.length ? tf.sum(x, axes, true) : x;
  return tf.reshape(summed, shape as number[]);
}

/** Sums over every axis but the last: the gradient of a per-channel weight. */
export function sumAllButLast(x: tf.Tensor): tf.Tensor {
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  return axes.length ? tf.sum(x, axes) : x;
}

/**
 * What every attention layout checks the same way, given its sizes: the padding mask, the
 * additive bias, causality and the scale.
 */
export function checkAttentionExtras(
  op: string,
  inputs: { mask?: TensorSpec | undefined; bias?: TensorSpec | undefined },
  attrs: { causal: boolean; scale: number | null },
  { B, H, Tq, Tk }: { B: number; H: number; Tq: number; Tk: number },
): void {
  if (inputs.mask) {
    const m = inputs.mask.shape;
    if (m.length !== 2 || m[0] !== B || m[1] !== Tk) {
      throw new OpInputError(
        `${op}: mask must be [batch, keyLen] = [${B}, ${Tk}] (1 = attend, 0 = padding); got [${m.join(', ')}].`,
      );
    }
  }
  if (inputs.bias) {
    const b = requireFloat(op, 'bias', inputs.bias).shape;
    const full = [B, H, Tq, Tk];
    if (b.length !== 4 || b.some((d, i) => d !== 1 && d !== full[i])) {
      throw new OpInputError(
        `${op}: bias must broadcast to [batch, nHead, queryLen, keyLen] = [${full.join(', ')}]; got [${b.join(', ')}].`,
      );
    }
  }
  if (attrs.causal && Tk < Tq) {
    throw new OpInputError(`${op}: causal attention needs keyLen >= queryLen; got ${Tk} < ${Tq}.`);
  }
  if (attrs.scale !== null && !Number.isFinite(attrs.scale)) {
    throw new OpInputError(`${op}: attr scale must be a finite number or null; got ${String(attrs.scale)}.`);
  }
}

/** q, k and v: float, each of rank `rank` (`layout` names the axes, for the message). */
export function requireQkv(
  op: string,
  inputs: { q?: TensorSpec | undefined; k?: TensorSpec | undefined; v?: TensorSpec | undefined },
  rank: number,
  layout: string,
): { q: TensorSpec; k: TensorSpec; v: TensorSpec } {
  const specs = {
    q: requireFloat(op, 'q', inputs.q),
    k: requireFloat(op, 'k', inputs.k),
    v: requireFloat(op, 'v', inputs.v),
  };
  for (const [name, t] of Object.entries(specs)) {
    if (t.shape.length !== rank) {
      throw new OpInputError(`${op}: input "${name}" must be ${layout}; got [${t.shape.join(', ')}].`);
    }
  }
  return specs;
}
