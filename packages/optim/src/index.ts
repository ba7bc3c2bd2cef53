/**
 * @tessera/optim — optimizers (sgd, adam, adamw, adafactor, lion), learning-rate
 * schedules, gradient clipping, accumulation and loss-scaling hooks. Importing it
 * registers every optimizer under registry.optimizer and every schedule under
 * registry.schedule, so a config selects them by name.
 */
import { TesseraError, isPlainObject, registry } from '@tessera/tensor-core';
import type { Optimizer, ParamSource } from './optimizer.js';
import { registerOptimizers } from './optimizers.js';
import { registerSchedules } from './schedules.js';

export * from './gradients.js';
export * from './optimizer.js';
export * from './optimizers.js';
export * from './schedules.js';

registerSchedules();
registerOptimizers();

/** A config's optimizer entry: `{ name, ...options }` (options include `groups`, clipping and `schedule`). */
export type OptimizerSpec = { name: string } & Record<string, unknown>;

/** Builds an optimizer from `{ name, ...options }` through the registry; errors name the known optimizers. */
export function createOptimizer(spec: OptimizerSpec, params: ParamSource): Optimizer {
  if (!isPlainObject(spec) || typeof spec.name !== 'string') {
    throw new TesseraError(`An optimizer spec is { name, ...options }; got ${JSON.stringify(spec)}.`);
  }
  const { name, ...options } = spec;
  return registry.optimizer.create(name, options, params) as Optimizer;
}
