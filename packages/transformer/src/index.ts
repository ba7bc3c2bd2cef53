/**
 * @tessera/transformer — layers, the GPT / BERT / T5 families with their task heads,
 * HF checkpoint import/export and generation. Importing it registers the families as
 * models ("gpt", "bert", "t5", with their family metadata: heads, HF names, generation)
 * and the building blocks as layers.
 */
import { type Rng, registry } from '@tessera/tensor-core';
import { registerBuiltinFamilies } from './families.js';
import { KVCache } from './layers/attention.js';
import { Embedding, Linear } from './layers/linear.js';
import { LayerNorm, RMSNorm } from './layers/norm.js';

export * from './families.js';
export * from './generation.js';
export * from './hf.js';
export * from './layers/activation.js';
export * from './layers/attention.js';
export * from './layers/linear.js';
export * from './layers/norm.js';
export * from './layers/relative_position.js';
export * from './models/bert.js';
export * from './models/common.js';
export * from './models/gpt.js';
export * from './models/t5.js';
export * from './safetensors.js';

const PACKAGE = '@tessera/transformer';

registerBuiltinFamilies(PACKAGE);

registry.layer.register(
  'linear',
  (o: { inFeatures: number; outFeatures: number; bias?: boolean }, rng: Rng) =>
    new Linear(o.inFeatures, o.outFeatures, rng, o),
  { description: 'y = x·W + b (nn.Linear or Conv1D layout)', package: PACKAGE },
);
registry.layer.register('embedding', (o: { num: number; dim: number }, rng: Rng) => new Embedding(o.num, o.dim, rng), {
  description: 'token / position lookup table',
  package: PACKAGE,
});
registry.layer.register('layer-norm', (o: { channels: number; eps?: number }) => new LayerNorm(o.channels, o.eps), {
  description: 'LayerNorm over the last axis (fused op)',
  package: PACKAGE,
});
registry.layer.register('rms-norm', (o: { channels: number; eps?: number }) => new RMSNorm(o.channels, o.eps), {
  description: "T5's RMS norm (fused op)",
  package: PACKAGE,
});
registry.layer.register('kv-cache', () => new KVCache(), {
  description: 'keys/values cache for incremental decoding',
  package: PACKAGE,
});
