import { TesseraError, tf } from '@tessera/tensor-core';
import type { TrainerCallback, TrainerContext } from './types.js';

/**
 * No tensor may outlive its step: optimizer state appears at the first update, and from
 * then on the live count (after logging, evaluation and saving too) must not move.
 */
export class LeakCheckCallback implements TrainerCallback {
  readonly name = 'leak-check';
  #steps = 0;
  #baseline: number | undefined;
  onStepBegin(ctx: TrainerContext): void {
    if (this.#steps++ === 1) this.#baseline = tf.memory().numTensors;
    else this.#check(ctx);
  }
  onTrainEnd(ctx: TrainerContext): void {
    this.#check(ctx);
  }
  #check(ctx: TrainerContext): void {
    if (this.#baseline === undefined) return;
    const leaked = tf.memory().numTensors - this.#baseline;
    if (leaked > 0)
      throw new TesseraError(`Internal error: ${leaked} tensors leaked in training step ${ctx.state.step}.`);
  }
}

/**
 * Ctrl-C finishes the current step, saves a checkpoint and ends the run normally. SIGUSR2
 * does the same: mpirun forwards it to every rank (it turns SIGINT into a job kill), which
 * is how `tessera launch` stops a data-parallel job gracefully.
 */
export class InterruptCallback implements TrainerCallback {
  readonly name = 'interrupt';
  #interrupted = false;
  readonly #handler = () => {
    this.#interrupted = true;
  };
  onTrainBegin(): void {
    process.on('SIGINT', this.#handler);
    process.on('SIGUSR2', this.#handler);
  }
  onStepEnd(ctx: TrainerContext): void {
    if (!this.#interrupted) return;
    ctx.control.shouldStop = true;
    ctx.control.shouldSave = true;
    ctx.control.stopReason = 'interrupted';
  }
  onTrainEnd(ctx: TrainerContext): void {
    if (this.#interrupted)
      ctx.log(`interrupted: finished step ${ctx.state.step} and saved the checkpoint to ${ctx.lastCheckpoint}`);
  }
  close(): void {
    process.off('SIGINT', this.#handler);
    process.off('SIGUSR2', this.#handler);
  }
}
