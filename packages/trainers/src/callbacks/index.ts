import { registry, z } from '@tessera/tensor-core';
import { CheckpointCallback } from './checkpointer.js';
import { BestModelCallback, FlowCallback } from './flow.js';
import { LossPlotCallback, MetricsLogCallback, ProgressCallback, SampleCallback } from './output.js';
import { InterruptCallback, LeakCheckCallback } from './safety.js';

export * from './checkpointer.js';
export * from './flow.js';
export * from './output.js';
export * from './safety.js';
export * from './types.js';

const PKG = '@tessera/trainers';
const none = z.object({}).strict();

/**
 * The built-in behaviours around the loop, in the order the Trainer runs them; a config's
 * `callbacks:` run after these. Each is also a registered callback, so a custom trainer
 * loop can reuse them by name.
 */
export const BUILTIN_CALLBACKS = [
  'interrupt',
  'flow',
  'best-model',
  'checkpointer',
  'progress',
  'metrics-log',
  'loss-plot',
  'sampler',
  'leak-check',
] as const;

const builtins: Record<(typeof BUILTIN_CALLBACKS)[number], [string, (o: never) => unknown, z.ZodType]> = {
  interrupt: ['Ctrl-C finishes the step, saves and ends the run', () => new InterruptCallback(), none],
  flow: ['log / evaluate / save cadence from logging_steps, eval_steps, save_steps', () => new FlowCallback(), none],
  'best-model': ['tracks metric_for_best_model; early stopping', () => new BestModelCallback(), none],
  checkpointer: ['atomic checkpoints, save_total_limit', () => new CheckpointCallback(), none],
  progress: [
    'progress bar on a terminal, plain lines otherwise',
    (o: { tty?: boolean }) => new ProgressCallback(o),
    z.object({ tty: z.boolean().optional() }).strict(),
  ],
  'metrics-log': ['metrics.jsonl', () => new MetricsLogCallback(), none],
  'loss-plot': ['loss.svg', () => new LossPlotCallback(), none],
  sampler: ['a text sample at the end (sample_prompt, sample_tokens)', () => new SampleCallback(), none],
  'leak-check': ['fails the run when tensors leak across steps', () => new LeakCheckCallback(), none],
};

for (const [name, [description, factory, options]] of Object.entries(builtins)) {
  if (!registry.callback.has(name))
    registry.callback.register(name, factory, { description, package: PKG, options, builtin: true });
}
