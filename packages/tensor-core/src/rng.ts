import * as tf from '@tensorflow/tfjs-core';
import './engine.js';
import { TesseraError } from './errors.js';

/** Serializable RNG position: restoring it continues the exact same stream. */
export interface RngState {
  s: [number, number, number, number];
}

/**
 * Seeded generator (xoshiro128**): initialisation, dropout and data order draw from
 * it, so one seed gives the same numbers on every backend. Generated in JS, never
 * by a backend, which is what makes runs comparable across backends.
 */
export class Rng {
  #s: Uint32Array;

  constructor(seed: number | string) {
    this.#s = new Uint32Array(4);
    let h = hashSeed(seed);
    for (let i = 0; i < 4; i++) {
      // splitmix32 spreads the seed over the four state words.
      h = (h + 0x9e3779b9) >>> 0;
      let z = h;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (this.#s.every((w) => w === 0)) this.#s[0] = 1;
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 bits of precision. */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new TesseraError(`Rng.int(n) needs a positive integer n; got ${n}.`);
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    const u1 = 1 - this.uniform();
    const u2 = this.uniform();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** In-place Fisher–Yates shuffle of an array or a typed array (millions of indices fit a Uint32Array). */
  shuffle<A extends { length: number; [index: number]: unknown }>(items: A): A {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }

  /** An independent stream derived from this one's seed position and a label. */
  fork(label: string): Rng {
    return new Rng(`${this.#s.join(':')}/${label}`);
  }

  getState(): RngState {
    return { s: [this.#s[0]!, this.#s[1]!, this.#s[2]!, this.#s[3]!] };
  }

  setState(state: RngState): void {
    if (!state || !Array.isArray(state.s) || state.s.length !== 4 || state.s.some((w) => !Number.isInteger(w))) {
      throw new TesseraError('Rng.setState needs { s: [four uint32] } as returned by getState().');
    }
    this.#s.set(state.s.map((w) => w >>> 0));
  }

  /** A float32 tensor of normals with the given mean and standard deviation. */
  normalTensor(shape: number[], std = 1, mean = 0): tf.Tensor {
    const values = new Float32Array(sizeOf(shape));
    for (let i = 0; i < values.length; i++) values[i] = mean + std * this.normal();
    return tf.tensor(values, shape, 'float32');
  }

  /** A float32 tensor uniform in [low, high). */
  uniformTensor(shape: number[], low = 0, high = 1): tf.Tensor {
    const values = new Float32Array(sizeOf(shape));
    for (let i = 0; i < values.length; i++) values[i] = low + (high - low) * this.uniform();
    return tf.tensor(values, shape, 'float32');
  }
}

function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

function hashSeed(seed: number | string): number {
  const text = typeof seed === 'number' ? `n:${seed}` : `s:${seed}`;
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/**
 * Inverted dropout: zeroes each element with probability `rate` and scales the rest
 * by 1/(1-rate). The mask comes from `rng`, so it is the same on every backend.
 */
export function dropout(x: tf.Tensor, rate: number, rng: Rng, training: boolean): tf.Tensor {
  if (!(rate >= 0 && rate < 1)) throw new TesseraError(`dropout rate must be in [0, 1); got ${rate}.`);
  if (!training || rate === 0) return x;
  return tf.tidy(() => {
    const keep = new Float32Array(x.size);
    const scale = 1 / (1 - rate);
    for (let i = 0; i < keep.length; i++) keep[i] = rng.uniform() >= rate ? scale : 0;
    return tf.mul(x, tf.tensor(keep, x.shape, 'float32'));
  });
}
