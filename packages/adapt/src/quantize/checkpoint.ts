import { existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng, TesseraError, tf } from '@tessera/tensor-core';
import {
  createModel,
  type Linear,
  familyByModelType,
  loadSafetensors,
  modelFamily,
  type PretrainedModel,
  readHfConfig,
  saveSafetensors,
} from '@tessera/transformer';
import { QUANT_METHOD, type QuantizationConfig } from './config.js';
import { attachQuantized, type QuantizedModel, quantizedOf } from './model.js';

export const WEIGHTS_FILE = 'model.safetensors';

/** The quantization_config of `dir`'s config.json when it is an int8 checkpoint, else undefined. */
export function quantizationConfigOf(dir: string): QuantizationConfig | undefined {
  if (!existsSync(join(dir, 'config.json'))) return undefined;
  const block = readHfConfig(dir).quantization_config as Partial<QuantizationConfig> | undefined;
  return block?.quant_method === QUANT_METHOD ? (block as QuantizationConfig) : undefined;
}

export const isQuantizedCheckpoint = (dir: string) => quantizationConfigOf(dir) !== undefined;

/**
 * Writes an int8 checkpoint: config.json (the model's, plus quantization_config) and
 * model.safetensors with every quantized weight as I8 [out, in] and its F32
 * `<layer>.weight_scale` [out]; every other tensor (embeddings, norms, biases, float32
 * layers) as the model's state dict has it.
 */
export async function saveQuantized(model: PretrainedModel, dir: string): Promise<void> {
  const quantized = quantizedOf(model);
  if (!quantized)
    throw new TesseraError(`saveQuantized: ${model.architecture} is not quantized; call quantizeDynamic(model) first.`);
  mkdirSync(dir, { recursive: true });
  const quantization_config: QuantizationConfig = {
    quant_method: QUANT_METHOD,
    bits: 8,
    weights: 'symmetric int8, one float32 scale per output channel (<layer>.weight_scale)',
    activations: 'symmetric int8, one scale per row, computed at run time',
    weight_layout: 'out_in',
    modules: [...quantized.layers.keys()],
    modules_not_converted: quantized.report.skipped.map((s) => s.name),
    format_version: 1,
  };
  const config = { ...model.config, architectures: [model.architecture], quantization_config };
  const configPath = join(dir, 'config.json');
  writeFileSync(`${configPath}.tmp-${process.pid}`, `${JSON.stringify(config, null, 2)}\n`);
  renameSync(`${configPath}.tmp-${process.pid}`, configPath);
  const tensors = model.stateDict();
  const dtypes: Record<string, 'I8'> = {};
  for (const [name, layer] of quantized.layers) {
    tensors[`${name}.weight`] = layer.q;
    tensors[`${name}.weight_scale`] = layer.scales;
    dtypes[`${name}.weight`] = 'I8';
  }
  await saveSafetensors(join(dir, WEIGHTS_FILE), tensors, { format: 'pt', quantization: QUANT_METHOD }, { dtypes });
}

/**
 * Loads an int8 checkpoint into `model` (built with the checkpoint's architecture): every
 * float32 tensor by name, every quantized layer's I8 weight and scales, all shapes checked
 * and every problem reported at once before anything is attached.
 */
export function loadQuantizedInto(model: PretrainedModel, dir: string): QuantizedModel {
  const qc = quantizationConfigOf(dir);
  if (!qc)
    throw new TesseraError(
      `${dir} is not an int8 checkpoint: its config.json has no quantization_config with quant_method "${QUANT_METHOD}". ` +
        'Write one with `tessera quantize --checkpoint DIR --out DIR` (or saveQuantized).',
    );
  const weightsPath = join(dir, WEIGHTS_FILE);
  if (!existsSync(weightsPath)) throw new TesseraError(`${dir} is not an int8 checkpoint: ${weightsPath} is missing.`);
  const { tensors } = loadSafetensors(weightsPath);
  try {
    const modules = new Map(model.namedModules());
    const problems: string[] = [];
    const linears = qc.modules.map((name) => {
      const linear = modules.get(name) as Linear | undefined;
      const q = tensors[`${name}.weight`];
      const s = tensors[`${name}.weight_scale`];
      if (!linear || !('inFeatures' in linear))
        problems.push(`${name}: ${model.architecture} has no Linear layer by that name`);
      else if (!q || !s) problems.push(`${name}: ${!q ? 'weight' : 'weight_scale'} is missing from ${WEIGHTS_FILE}`);
      else if (
        q.shape.join() !== `${linear.outFeatures},${linear.inFeatures}` ||
        s.shape.join() !== `${linear.outFeatures}`
      )
        problems.push(
          `${name}: weight [${q.shape.join(', ')}] / weight_scale [${s.shape.join(', ')}], the layer needs [${linear.outFeatures}, ${linear.inFeatures}] / [${linear.outFeatures}]`,
        );
      return [name, linear] as const;
    });
    const quantizedNames = new Set(qc.modules.flatMap((n) => [`${n}.weight`, `${n}.weight_scale`]));
    const state = Object.fromEntries(Object.entries(tensors).filter(([n]) => !quantizedNames.has(n)));
    const own = new Set(model.namedParameters().map(([n]) => n));
    const missing = [...own].filter((n) => !(n in state) && !quantizedNames.has(n));
    const unexpected = Object.keys(state).filter((n) => !own.has(n));
    if (missing.length) problems.push(`missing (${missing.length}): ${missing.join(', ')}`);
    if (unexpected.length) problems.push(`unexpected (${unexpected.length}): ${unexpected.join(', ')}`);
    if (problems.length)
      throw new TesseraError(`${weightsPath} does not fit ${model.architecture}:\n  ${problems.join('\n  ')}`);
    model.loadStateDict(state, { strict: false });
    const plan = {
      targets: linears as [string, Linear][],
      skipped: qc.modules_not_converted.map((name) => ({ name, reason: 'float32 in the checkpoint' })),
    };
    return attachQuantized(model, plan, (name) => {
      const q = tensors[`${name}.weight`] as tf.Tensor2D;
      const scales = tensors[`${name}.weight_scale`] as tf.Tensor1D;
      delete tensors[`${name}.weight`]; // kept by the layer, not disposed below
      delete tensors[`${name}.weight_scale`];
      return { q, scales };
    });
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

/** An int8 checkpoint as a model: its architecture from config.json, its weights, its int8 layers. */
export function loadQuantized(dir: string, options: { seed?: number } = {}): QuantizedModel {
  const config = readHfConfig(dir);
  const [family] = familyByModelType(config.model_type);
  const architecture = Array.isArray(config.architectures) ? String(config.architectures[0]) : undefined;
  const head = (architecture ? modelFamily(family).architectures[architecture] : undefined) ?? undefined;
  const { quantization_config: _, ...modelConfig } = config;
  const model = createModel(family, head, modelConfig, new Rng(options.seed ?? 0));
  try {
    return loadQuantizedInto(model, dir);
  } catch (err) {
    model.dispose();
    throw err;
  }
}

/** Bytes of an int8 checkpoint's files (what `tessera quantize` reports). */
export function checkpointBytes(dir: string): number {
  return ['config.json', WEIGHTS_FILE].reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}
