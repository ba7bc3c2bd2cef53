import { Rng } from '@tessera/tensor-core';
import type { TrainerState } from './checkpoint.js';

/** Examples by index (an array, or windows of token shards read on demand). */
export interface IndexedExamples<T> {
  readonly length: number;
  get(i: number): T;
}

/** This process's place in a data-parallel job (rank 0 of 1 when training alone). */
export interface World {
  rank: number;
  size: number;
}

/** A micro-batch of this rank: the examples, and the dataset index and epoch of each (what keys its randomness). */
export interface OrderedBatch<T> {
  examples: T[];
  indices: number[];
  epoch: number;
  /** Examples repeated from the epoch's start because this rank's share of the epoch's tail was empty. */
  padded: number;
}

/**
 * The training examples in a seeded permutation per epoch (the whole set, not a shuffle
 * buffer: any position is reproducible, so resume is exact even mid-epoch).
 *
 * `state.position` counts examples of the epoch consumed by all ranks together. Each
 * micro-step takes the next `size × world.size` examples of the permutation and rank r
 * takes the r-th contiguous share, so the ranks together see what one process with the
 * whole batch sees, and a checkpoint resumes on any world size.
 */
export class ExampleOrder<T> {
  #order: { epoch: number; indices: Uint32Array } | undefined;
  constructor(
    private readonly examples: IndexedExamples<T>,
    private readonly seed: number,
    private readonly world: World = { rank: 0, size: 1 },
  ) {}

  #epochOrder(epoch: number): Uint32Array {
    if (this.#order?.epoch !== epoch) {
      // 4 bytes per example: an epoch over millions of token windows stays small.
      const all = new Uint32Array(this.examples.length);
      for (let i = 0; i < all.length; i++) all[i] = i;
      new Rng(this.seed).fork(`epoch-${epoch}`).shuffle(all);
      this.#order = { epoch, indices: all };
    }
    return this.#order.indices;
  }

  /** This rank's next `size` examples, advancing state.epoch / state.position for every rank alike. */
  next(state: TrainerState, size: number): OrderedBatch<T> {
    const total = this.examples.length;
    if (state.position >= total) {
      state.epoch++;
      state.position = 0;
    }
    const order = this.#epochOrder(state.epoch);
    const { rank, size: ranks } = this.world;
    // At the epoch's end the global chunk is short; it is split as evenly as it goes.
    const chunk = Math.min(size * ranks, total - state.position);
    const start = state.position + Math.floor((rank * chunk) / ranks);
    const end = state.position + Math.floor(((rank + 1) * chunk) / ranks);
    let indices = Array.from(order.subarray(start, end));
    let padded = 0;
    if (!indices.length) {
      // More ranks than examples left: repeat the epoch's first one, as torch's DistributedSampler pads.
      indices = [order[0]!];
      padded = 1;
    }
    state.position += chunk;
    return { examples: indices.map((i) => this.examples.get(i)), indices, epoch: state.epoch, padded };
  }
}
