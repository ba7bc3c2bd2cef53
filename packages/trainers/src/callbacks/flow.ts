import { join } from 'node:path';
import { TesseraError } from '@tessera/tensor-core';
import type { TrainerCallback, TrainerContext } from './types.js';

/** When to log, evaluate and save, from logging_steps / eval_steps / save_steps (HF's DefaultFlowCallback). */
export class FlowCallback implements TrainerCallback {
  readonly name = 'flow';
  onStepEnd(ctx: TrainerContext): void {
    const { step } = ctx.state;
    const { logging_steps, eval_steps, save_steps } = ctx.args;
    const last = step >= ctx.totalSteps;
    if (step === 1 || step % logging_steps === 0) ctx.control.shouldLog = true;
    // Rank 0 evaluates for the job; a stop it decides is agreed on at the next step's start.
    if (ctx.isMainProcess && (last || (eval_steps !== null && step % eval_steps === 0)))
      ctx.control.shouldEvaluate = true;
    if (last || (save_steps !== null && step % save_steps === 0)) ctx.control.shouldSave = true;
  }
}

/**
 * Tracks metric_for_best_model: an improvement marks this step's checkpoint as the best
 * (and saves it); early_stopping_patience evaluations without one stop the run.
 */
export class BestModelCallback implements TrainerCallback {
  readonly name = 'best-model';
  onEvaluate(ctx: TrainerContext, metrics: Record<string, number>): void {
    const { metric_for_best_model: key, greater_is_better, early_stopping_patience, output_dir } = ctx.args;
    const value = metrics[key];
    if (value === undefined) {
      throw new TesseraError(
        `metric_for_best_model "${key}" is not among the computed metrics (${Object.keys(metrics).join(', ')}).`,
      );
    }
    const state = ctx.state;
    const better =
      state.bestMetric === null || (greater_is_better ? value > state.bestMetric : value < state.bestMetric);
    if (better) {
      state.bestMetric = value;
      state.evalsWithoutImprovement = 0;
      state.bestCheckpoint = join(output_dir, `checkpoint-${state.step}`);
      ctx.control.shouldSave = true;
    } else if (early_stopping_patience !== null && ++state.evalsWithoutImprovement >= early_stopping_patience) {
      ctx.log(`early stopping: ${key} did not improve for ${early_stopping_patience} evaluations`);
      ctx.control.shouldStop = true;
      ctx.control.stopReason = 'early-stopping';
      ctx.control.shouldSave = true;
    }
  }
}
