import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pruneCheckpoints, saveCheckpoint } from '../checkpoint.js';
import type { TrainerCallback, TrainerContext } from './types.js';

/**
 * Writes checkpoint-<step>/ atomically (model or adapter, optimizer, trainer state, tokenizer) when
 * the run saves, once per step, and keeps at most save_total_limit of them (never the best).
 */
export class CheckpointCallback implements TrainerCallback {
  readonly name = 'checkpointer';
  readonly mainProcessOnly = true;
  async onTrainBegin(ctx: TrainerContext): Promise<void> {
    mkdirSync(ctx.args.output_dir, { recursive: true });
    await ctx.tokenizer.save(join(ctx.args.output_dir, 'tokenizer.json'));
  }
  async onSave(ctx: TrainerContext): Promise<void> {
    const outputDir = ctx.args.output_dir;
    if (ctx.lastCheckpoint === join(outputDir, `checkpoint-${ctx.state.step}`)) return;
    const path = await saveCheckpoint(outputDir, ctx.model, ctx.optimizer, ctx.state, ctx.adapter);
    await ctx.tokenizer.save(join(path, 'tokenizer.json'));
    pruneCheckpoints(outputDir, ctx.args.save_total_limit, ctx.state.bestCheckpoint);
    ctx.lastCheckpoint = path;
  }
  onTrainEnd(ctx: TrainerContext): void {
    // A checkpoint from an earlier run (resumed on new data) gets the current tokenizer too.
    const tokenizer = join(ctx.args.output_dir, 'tokenizer.json');
    if (ctx.lastCheckpoint && existsSync(tokenizer))
      copyFileSync(tokenizer, join(ctx.lastCheckpoint, 'tokenizer.json'));
  }
}
