import { type Module, Rng, TesseraError } from '@tessera/tensor-core';
import { headOf, Linear, modelFamily, type PretrainedModel } from '@tessera/transformer';
import { type LoraOptions, type LoraOptionsInput, parseLoraOptions } from './config.js';
import { LoraLayer } from './layer.js';

/** peft's task_type for each of Tessera's heads (written to adapter_config.json). */
const TASK_TYPES: Record<string, string> = {
  'causal-lm': 'CAUSAL_LM',
  'sequence-classification': 'SEQ_CLS',
  'seq2seq-lm': 'SEQ_2_SEQ_LM',
  embeddings: 'FEATURE_EXTRACTION',
};

/** peft's task_type for a model's head, or null when peft has none for it. */
export function taskTypeOf(model: PretrainedModel): string | null {
  try {
    return TASK_TYPES[headOf(model).head] ?? null;
  } catch {
    return null;
  }
}

/** Does the dotted module name match peft's target_modules (a list of name suffixes, or a full-match regex)? */
export function matchesTarget(name: string, targets: LoraOptions['target_modules']): boolean {
  if (typeof targets === 'string') return new RegExp(`^(?:${targets})$`).test(name);
  return targets.some((t) => name === t || name.endsWith(`.${t}`));
}

/** The Linear layers of `model` that `targets` names, or an error listing the layers there are. */
export function findTargets(model: Module, targets: LoraOptions['target_modules']): [string, Linear][] {
  const found: [string, Linear][] = [];
  const unsupported: string[] = [];
  for (const [name, module] of model.namedModules()) {
    if (!name || /(^|\.)lora_[AB]$/.test(name) || !matchesTarget(name, targets)) continue;
    if (module instanceof Linear) found.push([name, module]);
    else unsupported.push(`${name} (${module.constructor.name})`);
  }
  if (unsupported.length)
    throw new TesseraError(
      `LoRA target_modules ${JSON.stringify(targets)} match modules that are not Linear layers: ${unsupported.join(', ')}. ` +
        'Name the Linear layers inside them instead (e.g. c_attn, query, value, q, v).',
    );
  if (!found.length) {
    const leaves = new Set(
      model
        .namedModules()
        .filter(([n, m]) => n && m instanceof Linear)
        .map(([n]) => n.split('.').at(-1)!),
    );
    throw new TesseraError(
      `LoRA target_modules ${JSON.stringify(targets)} match no Linear layer of ${model.constructor.name}. ` +
        `Its Linear layers are named: ${[...leaves].sort().join(', ')}.`,
    );
  }
  return found;
}

/** The modules trained in full with the adapter: as configured, else the new head of a classifier (peft's SEQ_CLS rule). */
function modulesToSave(model: PretrainedModel, options: LoraOptions): string[] {
  if (options.modules_to_save !== undefined && options.modules_to_save !== null) return options.modules_to_save;
  if (options.modules_to_save === null || taskTypeOf(model) !== 'SEQ_CLS') return [];
  const trunk = modelFamily(headOf(model).family).trunkPrefix?.replace(/\.$/, '');
  return model
    .children()
    .map(([n]) => n)
    .filter((n) => n !== trunk);
}

/** A model with LoRA applied: its adapted layers by dotted name, and what it trains in full. */
export class LoraModel {
  readonly #frozenFlags: Map<string, boolean>;
  #unloaded = false;

  constructor(
    readonly model: PretrainedModel,
    readonly options: LoraOptions,
    readonly layers: Map<string, LoraLayer>,
    readonly modulesToSave: string[],
    frozenFlags: Map<string, boolean>,
    /** The bias parameters trained with the adapter (peft's bias "all" / "lora_only"), by model path. */
    readonly trainedBiases: string[] = [],
  ) {
    this.#frozenFlags = frozenFlags;
  }

  get taskType(): string | null {
    return taskTypeOf(this.model);
  }

  /** Whether every target weight is [in, out] (GPT-2's Conv1D): peft's fan_in_fan_out. */
  get fanInFanOut(): boolean {
    return [...this.layers.values()].every((l) => l.base.layout === 'inOut');
  }

  /** The adapter's parameters by model path: lora_A / lora_B of every layer, modules_to_save and trained biases. */
  adapterParameters(): [string, import('@tessera/tensor-core').Parameter][] {
    return this.model.namedParameters().filter(([n]) => isAdapterParameter(n, this.modulesToSave, this.trainedBiases));
  }

  /** Folds B·A into every base weight (inference at the base model's cost). */
  merge(): void {
    this.#check('merge');
    for (const layer of this.layers.values()) layer.merge();
  }

  /** Takes B·A back out of every base weight. */
  unmerge(): void {
    this.#check('unmerge');
    for (const layer of this.layers.values()) layer.unmerge();
  }

  /**
   * Merges, then removes every lora_A / lora_B and restores the parameters' trainable
   * flags: the model is a plain one again (savePretrained writes it as an HF checkpoint).
   */
  mergeAndUnload(): PretrainedModel {
    this.merge();
    for (const layer of this.layers.values()) layer.detach();
    for (const [name, p] of this.model.namedParameters()) p.trainable = this.#frozenFlags.get(name) ?? p.trainable;
    this.#unloaded = true;
    LORA_MODELS.delete(this.model);
    return this.model;
  }

  #check(what: string): void {
    if (this.#unloaded) throw new TesseraError(`LoRA ${what}: the adapter was already unloaded (mergeAndUnload).`);
  }
}

function isAdapterParameter(name: string, modulesToSave: readonly string[], biases: readonly string[]): boolean {
  return (
    /\.lora_[AB]\.weight$/.test(name) || modulesToSave.some((m) => name.startsWith(`${m}.`)) || biases.includes(name)
  );
}

/** peft's bias rule: "all" every bias of the base (peft: every name holding "bias"), "lora_only" the adapted layers'. */
function trainedBiasNames(model: PretrainedModel, bias: LoraOptions['bias'], layers: readonly string[]): string[] {
  const names = model.namedParameters().map(([n]) => n);
  if (bias === 'all') return names.filter((n) => n.split('.').at(-1) === 'bias');
  if (bias === 'lora_only') return layers.map((l) => `${l}.bias`).filter((n) => names.includes(n));
  return [];
}

const LORA_MODELS = new WeakMap<PretrainedModel, LoraModel>();

/** The LoRA state of a model applyLora adapted, or undefined. */
export function loraOf(model: PretrainedModel): LoraModel | undefined {
  return LORA_MODELS.get(model);
}

/**
 * Adds LoRA to every Linear `target_modules` names and freezes everything else but
 * modules_to_save, so `model.namedParameters({ trainableOnly: true })` (what the optimizer
 * sees) are the adapter's. lora_A is Kaiming-uniform (as peft), lora_B zero: the adapted
 * model starts out computing exactly what the base does.
 */
export function applyLora(model: PretrainedModel, input: LoraOptionsInput | LoraOptions): LoraModel {
  if (LORA_MODELS.has(model)) throw new TesseraError(`${model.architecture} already has a LoRA adapter applied.`);
  const options = parseLoraOptions(input);
  const targets = findTargets(model, options.target_modules);
  if (options.fan_in_fan_out !== undefined) {
    const wrong = targets.filter(([, l]) => (l.layout === 'inOut') !== options.fan_in_fan_out).map(([n]) => n);
    if (wrong.length)
      throw new TesseraError(
        `LoRA fan_in_fan_out: ${options.fan_in_fan_out} does not fit ${wrong.join(', ')} (weights stored ${options.fan_in_fan_out ? '[out, in]' : '[in, out]'}). ` +
          'Leave fan_in_fan_out out: it is read from each layer.',
      );
  }
  const saved = modulesToSave(model, options);
  for (const m of saved)
    if (!model.namedModules().some(([n]) => n === m))
      throw new TesseraError(
        `LoRA modules_to_save names "${m}", which ${model.architecture} does not have. Its top-level modules: ${model
          .children()
          .map(([n]) => n)
          .join(', ')}.`,
      );
  const frozenFlags = new Map(model.namedParameters().map(([n, p]) => [n, p.trainable]));
  for (const p of model.parameters()) p.trainable = false;
  const initRoot = options.init_seed !== undefined ? new Rng(options.init_seed) : model.rng.fork('lora-init');
  const layers = new Map<string, LoraLayer>();
  for (const [name, linear] of targets) {
    const layerOptions = {
      r: options.r,
      loraAlpha: options.lora_alpha,
      loraDropout: options.lora_dropout,
      useRslora: options.use_rslora,
    };
    layers.set(name, new LoraLayer(linear, layerOptions, initRoot.fork(name), model.rng));
  }
  const biases = trainedBiasNames(model, options.bias, [...layers.keys()]);
  for (const [name, p] of model.namedParameters()) if (isAdapterParameter(name, saved, biases)) p.trainable = true;
  const lora = new LoraModel(model, options, layers, saved, frozenFlags, biases);
  LORA_MODELS.set(model, lora);
  return lora;
}
