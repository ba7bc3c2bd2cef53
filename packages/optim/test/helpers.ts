import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '@tessera/tensor-core';

export interface TensorJson {
  shape: number[];
  data: number[];
}

export interface TrajectoryCase {
  id: string;
  spec: { name: string } & Record<string, unknown>;
  losses: number[];
  gradNorms?: number[];
  snapshots: { step: number; params: Record<string, number[]> }[];
}

export interface Trajectories {
  steps: number;
  x: TensorJson;
  y: TensorJson;
  init: Record<string, TensorJson>;
  cases: TrajectoryCase[];
}

export function fixture<T>(name: string): T {
  return JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8')) as T;
}

export const tensorOf = (t: TensorJson) => tf.tensor(t.data, t.shape, 'float32');

/** The fixtures' problem: a 4-5-2 tanh MLP regressed onto fixed targets (mean squared error). */
export class MlpProblem {
  readonly x: tf.Tensor;
  readonly y: tf.Tensor;
  readonly params: Record<string, tf.Variable>;

  constructor(doc: Trajectories) {
    this.x = tensorOf(doc.x);
    this.y = tensorOf(doc.y);
    this.params = Object.fromEntries(
      Object.entries(doc.init).map(([k, v]) => [k, tf.variable(tensorOf(v), true)] as const),
    );
  }

  /** Loss over the rows in [start, end) of the batch (all rows by default). */
  loss(start = 0, end?: number): tf.Scalar {
    const p = this.params;
    const n = (end ?? this.x.shape[0]!) - start;
    const x = this.x.slice([start, 0], [n, -1]);
    const y = this.y.slice([start, 0], [n, -1]);
    const h = tf.tanh(tf.add(tf.matMul(x, p.w1!), p.b1!));
    return tf.mean(tf.square(tf.sub(tf.add(tf.matMul(h, p.w2!), p.b2!), y))) as tf.Scalar;
  }

  /** Loss value and gradients by parameter name (caller disposes). */
  grads(start = 0, end?: number): { loss: number; grads: Map<string, tf.Tensor> } {
    const names = Object.keys(this.params);
    const { value, grads } = tf.variableGrads(
      () => this.loss(start, end),
      names.map((n) => this.params[n]!),
    );
    const byName = new Map(names.map((n) => [n, grads[this.params[n]!.name]!] as const));
    const loss = value.dataSync()[0]!;
    value.dispose();
    return { loss, grads: byName };
  }

  snapshot(): Record<string, Float32Array> {
    return Object.fromEntries(Object.entries(this.params).map(([k, v]) => [k, v.dataSync() as Float32Array]));
  }

  dispose(): void {
    this.x.dispose();
    this.y.dispose();
    for (const v of Object.values(this.params)) v.dispose();
  }
}

export function disposeGrads(grads: Map<string, tf.Tensor>): void {
  for (const g of grads.values()) g.dispose();
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return m;
}
