/**
 * @tessera/adapt — smaller models and cheaper fine-tunes: LoRA adapters in peft's file
 * layout (merge, unmerge, merge-and-unload), DistilBERT-style distillation and magnitude
 * pruning kept through training, and dynamic int8 inference. Importing it registers the
 * `lora`, `distillation` and `int8-dynamic` adapters (a run config's `adapter:` block) and the
 * `magnitude-pruning` callback.
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
import { type Int8Options, int8OptionsSchema } from './quantize/config.js';
import { Int8DynamicAdapter } from './quantize/plugin.js';

export * from './distill/index.js';
export * from './lora/index.js';
export * from './prune/index.js';
export * from './quantize/index.js';

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

if (!registry.adapter.has('int8-dynamic'))
  registry.adapter.register(
    'int8-dynamic',
    (options: Int8Options, context: AdapterContext) => new Int8DynamicAdapter(options, context),
    {
      description:
        'dynamic int8 inference: Linear weights per-channel symmetric int8, activations per row at run time (TesseraInt8Linear); or an int8 checkpoint',
      package: PACKAGE,
      options: int8OptionsSchema,
      // `checkpoint` resolves against the config file, as distillation's teacher does.
      paths: ['checkpoint'],
    },
  );
