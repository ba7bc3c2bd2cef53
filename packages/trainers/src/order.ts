import { Rng } from '@tessera/tensor-core';
import type { TrainerState } from './checkpoint.js';

/**
 * The training examples in a seeded shuffle per epoch; the position lives in the trainer
 * state, so a resumed run continues with the very next examples.
 */
export class ExampleOrder<T> {
  #order: { epoch: number; indices: number[] } | undefined;
  constructor(
    private readonly examples: readonly T[],
    private readonly seed: number,
  ) {}

  #epochOrder(epoch: number): number[] {
    if (this.#order?.epoch !== epoch) {
      const indices = new Rng(this.seed).fork(`epoch-${epoch}`).shuffle(this.examples.map((_, i) => i));
      this.#order = { epoch, indices };
    }
    return this.#order.indices;
  }

  /** The next `size` examples, advancing state.epoch / state.position. */
  next(state: TrainerState, size: number): T[] {
    if (state.position >= this.examples.length) {
      state.epoch++;
      state.position = 0;
    }
    const order = this.#epochOrder(state.epoch);
    const picked = order.slice(state.position, state.position + size).map((i) => this.examples[i]!);
    state.position += size;
    return picked;
  }
}
