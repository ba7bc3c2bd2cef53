import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '@tessera/tensor-core';
import { familyByModelType, loadSafetensors, type PretrainedModel, saveSafetensors } from '@tessera/transformer';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  AdapterFileError,
  optionsFromPeft,
  type PeftLoraConfig,
  readPeftConfig,
} from './config.js';
import { applyLora, type LoraModel, loraOf } from './model.js';

/** peft prefixes every saved name with its wrapper's path: PeftModel.base_model (LoraModel).model. */
export const PEFT_PREFIX = 'base_model.model.';

/** adapter_config.json for an applied adapter. */
export function peftConfigOf(lora: LoraModel, baseModel: string | null): PeftLoraConfig {
  const o = lora.options;
  return {
    peft_type: 'LORA',
    task_type: lora.taskType,
    base_model_name_or_path: baseModel,
    r: o.r,
    lora_alpha: o.lora_alpha,
    lora_dropout: o.lora_dropout,
    target_modules: Array.isArray(o.target_modules) ? [...o.target_modules].sort() : o.target_modules,
    bias: o.bias,
    fan_in_fan_out: lora.fanInFanOut,
    use_rslora: o.use_rslora,
    modules_to_save: lora.modulesToSave.length ? lora.modulesToSave : null,
    inference_mode: true,
    init_lora_weights: true,
    revision: null,
  };
}

/** The adapter's tensors under peft's names (`base_model.model.<path>.lora_A.weight`, ...); live tensors, not copies. */
export function peftStateDict(lora: LoraModel): Record<string, tf.Tensor> {
  return Object.fromEntries(lora.adapterParameters().map(([name, p]) => [PEFT_PREFIX + name, p.value]));
}

/**
 * Writes `dir`/adapter_config.json and adapter_model.safetensors in peft's layout (what
 * `PeftModel.save_pretrained` writes; `PeftModel.from_pretrained` reads them).
 */
export async function saveAdapter(lora: LoraModel, dir: string, baseModel: string | null = null): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const configPath = join(dir, ADAPTER_CONFIG);
  const temporary = `${configPath}.tmp-${process.pid}`;
  writeFileSync(temporary, `${JSON.stringify(peftConfigOf(lora, baseModel), null, 2)}\n`);
  renameSync(temporary, configPath);
  await saveSafetensors(join(dir, ADAPTER_WEIGHTS), peftStateDict(lora), { format: 'pt' });
}

/** A model path for a peft name: the prefix stripped, and the trunk prefix added or removed as the HF importer does. */
function modelName(fileName: string, own: Map<string, unknown>, trunkPrefix: string | undefined): string | undefined {
  if (!fileName.startsWith(PEFT_PREFIX)) return undefined;
  // peft >= 0.7 wraps an adapted Linear, so its bias may be saved as `<layer>.base_layer.bias`.
  const name = fileName.slice(PEFT_PREFIX.length).replace(/\.base_layer\.(weight|bias)$/, '.$1');
  if (own.has(name) || !trunkPrefix) return name;
  if (own.has(trunkPrefix + name)) return trunkPrefix + name;
  if (name.startsWith(trunkPrefix) && own.has(name.slice(trunkPrefix.length))) return name.slice(trunkPrefix.length);
  return name;
}

/**
 * Copies adapter_model.safetensors into an applied adapter. Every name must map to one of
 * its parameters and every shape fit (lora_A [r, in], lora_B [out, r]); missing,
 * unexpected and mis-shaped tensors are reported together and nothing is assigned unless all fit.
 */
export function loadAdapterWeights(lora: LoraModel, dir: string): void {
  const path = join(dir, ADAPTER_WEIGHTS);
  if (!existsSync(path)) throw new AdapterFileError(`${dir} has no ${ADAPTER_WEIGHTS}.`);
  const { tensors } = loadSafetensors(path);
  try {
    const own = new Map(lora.adapterParameters());
    const trunkPrefix = familyByModelType(lora.model.config.model_type)[1].trunkPrefix;
    const unexpected: string[] = [];
    const mismatched: string[] = [];
    const state = new Map<string, tf.Tensor>();
    for (const [fileName, tensor] of Object.entries(tensors)) {
      const name = modelName(fileName, own, trunkPrefix);
      const p = name === undefined ? undefined : own.get(name);
      if (!p || name === undefined) {
        unexpected.push(fileName);
        continue;
      }
      if (tensor.shape.join(',') !== p.shape.join(',') || tensor.dtype !== p.dtype)
        mismatched.push(
          `${fileName}: expected [${p.shape.join(', ')}] ${p.dtype}, got [${tensor.shape.join(', ')}] ${tensor.dtype}`,
        );
      state.set(name, tensor);
    }
    const missing = [...own.keys()].filter((n) => !state.has(n)).map((n) => PEFT_PREFIX + n);
    if (missing.length || unexpected.length || mismatched.length) {
      const lines = [
        missing.length ? `  missing (${missing.length}): ${missing.join(', ')}` : '',
        unexpected.length ? `  unexpected (${unexpected.length}): ${unexpected.join(', ')}` : '',
        mismatched.length ? `  mismatched (${mismatched.length}):\n    ${mismatched.join('\n    ')}` : '',
      ].filter(Boolean);
      throw new AdapterFileError(
        `${path} does not fit the LoRA adapter on ${lora.model.architecture} (r = ${lora.options.r}, target_modules ${JSON.stringify(lora.options.target_modules)}):\n${lines.join('\n')}\n` +
          'Load it onto the base model it was trained from, with the adapter_config.json written next to it.',
      );
    }
    for (const [name, tensor] of state) own.get(name)!.assign(tensor);
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

/**
 * Applies the adapter in `dir` (adapter_config.json + adapter_model.safetensors, as peft
 * writes them) to a base model and loads its weights: peft's PeftModel.from_pretrained.
 */
export function loadAdapter(model: PretrainedModel, dir: string): LoraModel {
  const config = readPeftConfig(dir);
  const lora = loraOf(model) ?? applyLora(model, optionsFromPeft(config));
  loadAdapterWeights(lora, dir);
  return lora;
}
