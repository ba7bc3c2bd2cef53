import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TrainerCallback, TrainerContext } from '@tessera/trainers';
import {
  applyMasks,
  disposeMasks,
  type LayerSparsity,
  magnitudeMasks,
  type PruneMask,
  type PruneOptions,
  sparsityReport,
} from './magnitude.js';

function describe(report: { layers: LayerSparsity[]; total: LayerSparsity }): string {
  const pct = (s: number) => `${(100 * s).toFixed(1)}%`;
  return `${pct(report.total.sparsity)} of ${report.total.size.toLocaleString('en-US')} weights zero (${report.layers
    .map((l) => `${l.name} ${pct(l.sparsity)}`)
    .join(', ')})`;
}

/**
 * Magnitude pruning during training (`callbacks: [{ name: magnitude-pruning, sparsity, ... }]`):
 * prunes when training begins, re-applies the masks after every optimizer step (so pruned
 * weights stay exactly zero), and reports the sparsity per layer at the start and the end
 * (the end's also in output_dir/sparsity.json). Checkpoints hold the zeros themselves, so
 * the pruning is permanent in every saved model. A resumed run recomputes the same masks
 * from the saved zeros. Dense kernels still multiply the zeros: no speed is gained.
 */
export class MagnitudePruningCallback implements TrainerCallback {
  readonly name = 'magnitude-pruning';
  #masks: PruneMask[] = [];

  constructor(readonly options: PruneOptions) {}

  /** The masks in use (empty before training begins). */
  get masks(): readonly PruneMask[] {
    return this.#masks;
  }

  async onTrainBegin(ctx: TrainerContext): Promise<void> {
    disposeMasks(this.#masks);
    this.#masks = await magnitudeMasks(ctx.model, this.options);
    applyMasks(this.#masks);
    const { pattern, scope, sparsity } = this.options;
    const how = pattern === '2:4' ? '2:4' : `${scope} ${sparsity}`;
    ctx.log(
      `pruning (${how}): ${describe(
        await sparsityReport(
          ctx.model,
          this.#masks.map((m) => m.name),
        ),
      )}`,
    );
  }

  onStepEnd(): void {
    applyMasks(this.#masks);
  }

  async onTrainEnd(ctx: TrainerContext): Promise<void> {
    const report = await sparsityReport(
      ctx.model,
      this.#masks.map((m) => m.name),
    );
    ctx.log(`pruning at the end: ${describe(report)}`);
    if (ctx.isMainProcess)
      writeFileSync(join(ctx.args.output_dir, 'sparsity.json'), `${JSON.stringify(report, null, 2)}\n`);
  }

  close(): void {
    disposeMasks(this.#masks);
    this.#masks = [];
  }
}
