import type { Tokenizer } from '@tessera/data';
import type { Optimizer } from '@tessera/optim';
import type { tf } from '@tessera/tensor-core';
import type { PretrainedModel } from '@tessera/transformer';
import type { ModelAdapter } from '../adapter.js';
import type { TrainingArguments } from '../arguments.js';
import type { TrainerState } from '../checkpoint.js';
import type { RunConfig } from '../config.js';
import type { World } from '../order.js';

/**
 * Flags callbacks set to steer the loop (HF's TrainerControl). The trainer acts on them
 * after each step's events and clears the per-step ones.
 */
export interface TrainerControl {
  shouldLog: boolean;
  shouldEvaluate: boolean;
  shouldSave: boolean;
  shouldStop: boolean;
  /** Why the run stopped before max_steps ("interrupted", "early-stopping", or a plugin's reason). */
  stopReason?: string;
}

/** What a callback sees: the run, its state, and the flags it may set. */
export interface TrainerContext {
  readonly config: RunConfig;
  readonly args: TrainingArguments;
  readonly model: PretrainedModel;
  /** The config's adapter, applied to `model` (checkpoints save it instead of the model). */
  readonly adapter?: ModelAdapter | undefined;
  readonly tokenizer: Tokenizer;
  readonly optimizer: Optimizer;
  readonly state: TrainerState;
  readonly control: TrainerControl;
  readonly totalSteps: number;
  /** This process's rank and the number of ranks (0 of 1 when training alone). */
  readonly world: World;
  /** Rank 0: the process that logs, evaluates and writes checkpoints. */
  readonly isMainProcess: boolean;
  /** Wall seconds since train() began. */
  elapsedSeconds(): number;
  /** The newest complete checkpoint of this output_dir (the checkpointer keeps it current). */
  lastCheckpoint: string | null;
  /** One line of output (above the progress bar when there is one). */
  log(line: string): void;
  /** Saves a checkpoint now; the checkpointer callback does the writing. */
  save(): Promise<string>;
}

/** One update's figures, handed to onStepEnd. */
export interface StepInfo {
  loss: number;
  lr: number;
  /** Non-padding tokens trained on since train() began. */
  tokens: number;
  tokensPerSecond: number;
}

/**
 * One update's gradients before they are averaged: `grads` holds Σ items·∇loss over this
 * process's micro-batches, `weight` Σ items and `lossSum` Σ items·loss. Callbacks may replace
 * all three (gradient-sync all-reduces them); the trainer then divides by `weight`.
 */
export interface GradientUpdate {
  grads: Map<string, tf.Tensor>;
  weight: number;
  lossSum: number;
  /** Non-padding tokens of this update (the job's, once gradient-sync has reduced it). */
  tokens: number;
}

/** What train() returns; onTrainEnd callbacks may add to `extras` (e.g. the sample). */
export interface TrainEnd {
  interrupted: boolean;
  stoppedEarly: boolean;
  sample?: string;
}

/**
 * Code around the training loop (HF-style events). Every method is optional; each may be
 * async. A callback from a plugin package registers under registry.callback and is named
 * in the config's `callbacks:`.
 */
export interface TrainerCallback {
  readonly name: string;
  /** Output and checkpoints: run on rank 0 only in a data-parallel job. */
  readonly mainProcessOnly?: boolean;
  onTrainBegin?(ctx: TrainerContext): void | Promise<void>;
  onStepBegin?(ctx: TrainerContext): void | Promise<void>;
  /** The micro-batches' gradients are summed; the optimizer has not stepped (HF's on_pre_optimizer_step). */
  onPreOptimizerStep?(ctx: TrainerContext, update: GradientUpdate): void | Promise<void>;
  onStepEnd?(ctx: TrainerContext, step: StepInfo): void | Promise<void>;
  onLog?(ctx: TrainerContext, logs: Record<string, number>): void | Promise<void>;
  onEvaluate?(ctx: TrainerContext, metrics: Record<string, number>): void | Promise<void>;
  /** The run saves now: the checkpointer writes it; later callbacks see ctx.lastCheckpoint. */
  onSave?(ctx: TrainerContext): void | Promise<void>;
  onTrainEnd?(ctx: TrainerContext, end: TrainEnd): void | Promise<void>;
  /** Always called when train() returns or throws: release what onTrainBegin took (handlers, terminals). */
  close?(): void;
}

export type CallbackEvent = Exclude<keyof TrainerCallback, 'name' | 'close' | 'mainProcessOnly'>;

/** Runs an event on every callback in order (awaiting each). */
export async function emit<E extends CallbackEvent>(
  callbacks: readonly TrainerCallback[],
  event: E,
  ...args: Parameters<NonNullable<TrainerCallback[E]>>
): Promise<void> {
  for (const cb of callbacks) {
    const handler = cb[event] as ((...a: unknown[]) => void | Promise<void>) | undefined;
    if (handler) await handler.apply(cb, args);
  }
}
