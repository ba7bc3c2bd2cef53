import { Rng } from '@tessera/tensor-core';
import type { TrainerState } from './checkpoint.js';

/** Examples by index (an array, or windows of token shards read on demand). */
export interface IndexedExamples<T> {
  readonly length: number;
  get(i: number): T;
}

/**
 * The training examples in a seeded permutation per epoch (the whole set, not a shuffle
 * buffer: any position is reproducible, so resume is exact even mid-epoch); the position
 * lives in the trainer state. With `worldSize` > 1 each rank takes every worldSize-th
 * example of the same permutation, so the ranks together see what one process would.
 */
export class ExampleOrder<T> {
  #order: { epoch: number; indices: Uint32Array } | undefined;
  constructor(
    private readonly examples: IndexedExamples<T>,
    private readonly seed: number,
    private readonly shard: { rank: number; worldSize: number } = { rank: 0, worldSize: 1 },
  ) {}

  /** Examples one epoch holds for this rank. */
  get length(): number {
    const { rank, worldSize } = this.shard;
    return Math.floor((this.examples.length - rank + worldSize - 1) / worldSize);
  }

  #epochOrder(epoch: number): Uint32Array {
    if (this.#order?.epoch !== epoch) {
      // 4 bytes per example: an epoch over millions of token windows stays small.
      const all = new Uint32Array(this.examples.length);
      for (let i = 0; i < all.length; i++) all[i] = i;
      new Rng(this.seed).fork(`epoch-${epoch}`).shuffle(all);
      const { rank, worldSize } = this.shard;
      const indices = worldSize === 1 ? all : all.filter((_, i) => i % worldSize === rank);
      this.#order = { epoch, indices };
    }
    return this.#order.indices;
  }

  /** The next `size` examples, advancing state.epoch / state.position. */
  next(state: TrainerState, size: number): T[] {
    if (state.position >= this.length) {
      state.epoch++;
      state.position = 0;
    }
    const order = this.#epochOrder(state.epoch);
    const picked = Array.from(order.subarray(state.position, state.position + size), (i) => this.examples.get(i));
    state.position += size;
    return picked;
  }
}
