import { type Module, TesseraError, type tf } from '@tessera/tensor-core';
import { Embedding, Linear, type PretrainedModel } from '@tessera/transformer';
import { matchesTarget } from '../lora/model.js';
import { type Int8Options, type Int8OptionsInput, parseInt8Options } from './config.js';
import { QuantizedLinear } from './layer.js';
import { quantizeWeight } from './weights.js';

/** What quantizeDynamic did, layer by layer. */
export interface QuantizationReport {
  quantized: { name: string; in: number; out: number }[];
  skipped: { name: string; reason: string }[];
  /** Weights quantized / weights left in float32 (Linear and embedding weights, biases excluded). */
  counts: { quantizedWeights: number; floatWeights: number; quantizedLayers: number; skippedModules: number };
}

/** A model whose chosen Linear layers run int8. */
export class QuantizedModel {
  constructor(
    readonly model: PretrainedModel,
    readonly layers: Map<string, QuantizedLinear>,
    readonly report: QuantizationReport,
  ) {}

  /** The plain float32 model again (weights dequantized); frees every int8 tensor. */
  unload(): PretrainedModel {
    for (const layer of this.layers.values()) layer.detach();
    QUANTIZED.delete(this.model);
    return this.model;
  }
}

const QUANTIZED = new WeakMap<PretrainedModel, QuantizedModel>();

/** The int8 state of a model quantizeDynamic (or loadQuantized) converted, or undefined. */
export function quantizedOf(model: PretrainedModel): QuantizedModel | undefined {
  return QUANTIZED.get(model);
}

const linearNames = (model: Module) =>
  model
    .namedModules()
    .filter(([n, m]) => n && m instanceof Linear)
    .map(([n]) => n);

/**
 * The Linear layers to quantize and what is skipped, before any weight is touched:
 * a target that matches nothing or a non-Linear module is an error naming the layers there are.
 */
export function planQuantization(
  model: PretrainedModel,
  options: Int8Options,
): { targets: [string, Linear][]; skipped: QuantizationReport['skipped'] } {
  const targets: [string, Linear][] = [];
  const skipped: QuantizationReport['skipped'] = [];
  const notLinear: string[] = [];
  const explicit = options.target_modules;
  for (const [name, module] of model.namedModules()) {
    if (!name) continue;
    if (explicit && matchesTarget(name, explicit)) {
      if (module instanceof Linear) targets.push([name, module]);
      else notLinear.push(`${name} (${module.constructor.name})`);
      continue;
    }
    if (module instanceof Embedding) {
      skipped.push({
        name,
        reason: 'embedding lookup (a gather, no matmul): kept float32; a tied output layer reads it too',
      });
    } else if (module instanceof Linear) {
      const isHead = name.split('.').at(-1) === 'lm_head';
      if (explicit) skipped.push({ name, reason: 'not named by target_modules' });
      else if (isHead && !options.include_lm_head)
        skipped.push({ name, reason: 'output layer (lm_head): kept float32 unless include_lm_head' });
      else targets.push([name, module]);
    }
  }
  if (notLinear.length)
    throw new TesseraError(
      `int8 target_modules ${JSON.stringify(explicit)} match modules that are not Linear layers: ${notLinear.join(', ')}. ` +
        `Only Linear layers run int8; name those inside them (this model's: ${[...new Set(linearNames(model).map((n) => n.split('.').at(-1)!))].sort().join(', ')}).`,
    );
  if (!targets.length)
    throw new TesseraError(
      explicit
        ? `int8 target_modules ${JSON.stringify(explicit)} match no Linear layer of ${model.architecture}. ` +
            `Its Linear layers are named: ${[...new Set(linearNames(model).map((n) => n.split('.').at(-1)!))].sort().join(', ')}.`
        : `${model.architecture} has no Linear layer to quantize.`,
    );
  return { targets, skipped };
}

function reportOf(
  model: PretrainedModel,
  layers: Map<string, QuantizedLinear>,
  skipped: QuantizationReport['skipped'],
): QuantizationReport {
  let quantizedWeights = 0;
  let floatWeights = 0;
  for (const [name, module] of model.namedModules()) {
    if (!(module instanceof Linear || module instanceof Embedding)) continue;
    if (layers.has(name)) quantizedWeights += module.weight.value.size;
    else floatWeights += module.weight.value.size;
  }
  return {
    quantized: [...layers.values()].map((l) => ({ name: l.name, in: l.base.inFeatures, out: l.base.outFeatures })),
    skipped,
    counts: { quantizedWeights, floatWeights, quantizedLayers: layers.size, skippedModules: skipped.length },
  };
}

/** Attaches given int8 weights to the planned layers (quantizeDynamic and the checkpoint loader). */
export function attachQuantized(
  model: PretrainedModel,
  plan: ReturnType<typeof planQuantization>,
  weights: (name: string, linear: Linear) => { q: tf.Tensor2D; scales: tf.Tensor1D },
): QuantizedModel {
  if (QUANTIZED.has(model)) throw new TesseraError(`${model.architecture} is already quantized.`);
  const layers = new Map<string, QuantizedLinear>();
  for (const [name, linear] of plan.targets) {
    const { q, scales } = weights(name, linear);
    layers.set(name, new QuantizedLinear(name, linear, q, scales));
  }
  // The int8 forward never reads the float32 weight (now its dequantized shadow): freeze it.
  // TesseraInt8Linear has no gradient, so a quantized model is for inference.
  for (const layer of layers.values()) layer.base.weight.trainable = false;
  const quantized = new QuantizedModel(model, layers, reportOf(model, layers, plan.skipped));
  QUANTIZED.set(model, quantized);
  return quantized;
}

/**
 * PyTorch's quantize_dynamic for Tessera models: every chosen Linear gets an int8 weight
 * (per-output-channel symmetric) and runs TesseraInt8Linear, its activations quantized per
 * row at run time. Embeddings (and the output layer tied to them) stay float32, as does an
 * untied lm_head unless asked. In place; returns the per-layer report with the state.
 */
export function quantizeDynamic(model: PretrainedModel, input: Int8OptionsInput = {}): QuantizedModel {
  const options = parseInt8Options(input);
  const plan = planQuantization(model, options);
  return attachQuantized(model, plan, (_, linear) => quantizeWeight(linear));
}

/** One line per layer and the totals, for logs and the CLI. */
export function formatQuantizationReport(report: QuantizationReport): string {
  const { counts } = report;
  const total = counts.quantizedWeights + counts.floatWeights;
  return [
    ...report.quantized.map((l) => `  int8    ${l.name} [${l.out}, ${l.in}]`),
    ...report.skipped.map((s) => `  float32 ${s.name}: ${s.reason}`),
    `  ${counts.quantizedLayers} Linear layers int8 (${counts.quantizedWeights.toLocaleString('en-US')} weights, ` +
      `${((100 * counts.quantizedWeights) / Math.max(1, total)).toFixed(1)}%), ${counts.skippedModules} modules float32 ` +
      `(${counts.floatWeights.toLocaleString('en-US')} weights)`,
  ].join('\n');
}
