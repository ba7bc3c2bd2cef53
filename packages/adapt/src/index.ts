/**
 * @tessera/adapt — smaller models and cheaper fine-tunes: LoRA adapters in peft's file
 * layout (merge, unmerge, merge-and-unload), DistilBERT-style distillation and magnitude
 * pruning kept through training. Importing it registers the `lora` and `distillation`
 * adapters (a run config's `adapter:` block) and the `magnitude-pruning` callback.
 */
import { registry } from '@tessera/tensor-core';
import type { AdapterContext, RunCheckContext } from '@tessera/trainers';
import { type DistillationOptions, distillationOptionsSchema } from './distill/config.js';
import { DistillationAdapter } from './distill/distill.js';
import { distillationRunProblems } from './distill/validate.js';
import { type LoraOptions, loraOptionsSchema } from './lora/config.js';
import { LoraAdapter } from './lora/plugin.js';
import { MagnitudePruningCallback } from './prune/callback.js';
import { type PruneOptions, pruneOptionsSchema } from './prune/magnitude.js';

export * from './distill/index.js';
export * from './lora/index.js';
export * from './prune/index.js';

const PACKAGE = '@tessera/adapt';

if (!registry.adapter.has('lora'))
  registry.adapter.register(
    'lora',
    (options: LoraOptions, context: AdapterContext) => new LoraAdapter(options, context),
    {
      description: 'LoRA on named Linear layers (peft layout: adapter_config.json + adapter_model.safetensors)',
      package: PACKAGE,
      options: loraOptionsSchema,
    },
  );

if (!registry.adapter.has('distillation'))
  registry.adapter.register(
    'distillation',
    (options: DistillationOptions, context: AdapterContext) => new DistillationAdapter(options, context),
    {
      description:
        'DistilBERT-style distillation from a frozen teacher: KL at temperature T (× T²) + task loss + hidden-state cosine; student from every other teacher layer',
      package: PACKAGE,
      options: distillationOptionsSchema,
      // `teacher` resolves against the config file; the model block is compared with the teacher's config.json at validation.
      paths: ['teacher'],
      checkRun: (options: DistillationOptions, context: RunCheckContext) => distillationRunProblems(options, context),
    },
  );

if (!registry.callback.has('magnitude-pruning'))
  registry.callback.register('magnitude-pruning', (options: PruneOptions) => new MagnitudePruningCallback(options), {
    description: 'magnitude pruning (per layer / global / 2:4), masks re-applied after every update',
    package: PACKAGE,
    options: pruneOptionsSchema,
  });
