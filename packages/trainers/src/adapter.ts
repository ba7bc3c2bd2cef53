import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { registry, TesseraError } from '@tessera/tensor-core';
import type { PretrainedModel } from '@tessera/transformer';
import type { RunConfig } from './config.js';

/**
 * A parameter-efficient fine-tuning method (LoRA, ...) as the trainer drives it: a
 * registered `adapter` plugin, named by the config's `adapter:` block. The trainer knows
 * only this interface; the method, its file layout and its name live in the plugin.
 */
export interface ModelAdapter {
  readonly name: string;
  /**
   * Adds the adapter to `model` in place and freezes every weight it does not train, so
   * `model.namedParameters({ trainableOnly: true })` (what the optimizer sees) are its own.
   */
  apply(model: PretrainedModel): void;
  /** Writes the adapter only (not the base weights) into `dir`. */
  save(model: PretrainedModel, dir: string): Promise<void>;
  /** Loads the adapter weights `save` wrote in `dir` into a model it was applied to. */
  load(model: PretrainedModel, dir: string): void;
  /** Whether `dir` holds this adapter's files (a checkpoint written with it). */
  isSavedIn(dir: string): boolean;
}

/** What an adapter factory is told besides its options. */
export interface AdapterContext {
  /** Where the base model came from (model.from, else the model's registry name): recorded with the adapter. */
  baseModel: string;
}

export type AdapterFactory = (options: Record<string, unknown>, context: AdapterContext) => ModelAdapter;

/** The run's adapter from its `adapter:` block, through the registry; undefined without one. */
export function createAdapter(config: RunConfig): ModelAdapter | undefined {
  if (!config.adapter) return undefined;
  const { name, ...options } = config.adapter;
  const context: AdapterContext = { baseModel: config.model.from ?? config.model.name };
  const adapter = registry.adapter.create(name, options, context) as ModelAdapter;
  for (const method of ['apply', 'save', 'load', 'isSavedIn'] as const)
    if (typeof adapter?.[method] !== 'function')
      throw new TesseraError(`The adapter plugin "${name}" returned an object without ${method}(); see ModelAdapter.`);
  return adapter;
}

/** True when a checkpoint directory holds full model weights (config.json), not an adapter only. */
export function holdsFullModel(dir: string): boolean {
  return existsSync(join(dir, 'config.json'));
}
