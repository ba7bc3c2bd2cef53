import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatIssues, TesseraError, z } from '@tessera/tensor-core';

export class AdapterFileError extends TesseraError {}

export const LORA_BIAS = ['none', 'all', 'lora_only'] as const;
export type LoraBias = (typeof LORA_BIAS)[number];

/**
 * LoRA's options, by peft's LoraConfig names: the same block in a run config's
 * `adapter: { name: lora, ... }` and in adapter_config.json.
 */
export const loraOptionsSchema = z
  .object({
    r: z.number().int().positive().default(8),
    lora_alpha: z.number().positive().default(8),
    /**
     * Which Linear layers get an adapter: a list matches a layer whose name is an entry or
     * ends with `.<entry>` (c_attn, query, value, q, v, ...); a string is a regular
     * expression the whole dotted name must match (peft's two forms).
     */
    target_modules: z.union([z.array(z.string().min(1)).min(1), z.string().min(1)]),
    lora_dropout: z.number().min(0).lt(1).default(0),
    /**
     * peft's bias: "none" biases stay frozen; "all" every bias trains; "lora_only" the biases
     * of the adapted layers train. Trained biases are saved in the adapter file by their path.
     */
    bias: z.enum(LORA_BIAS).default('none'),
    /**
     * The base weight is [in, out] (GPT-2's Conv1D). Read from each layer's layout, so it
     * need not be set; setting it to the wrong value is an error, not a silent transpose.
     */
    fan_in_fan_out: z.boolean().optional(),
    use_rslora: z.boolean().default(false),
    /**
     * Modules trained in full and saved with the adapter (a new classification head).
     * Default for sequence-classification heads: the head outside the trunk (classifier, score), as peft does.
     */
    modules_to_save: z.array(z.string().min(1)).nullable().optional(),
    /** Seed for lora_A's initialisation (default: derived from the model's seed). */
    init_seed: z.union([z.number().int(), z.string()]).optional(),
  })
  .strict();

export type LoraOptions = z.output<typeof loraOptionsSchema>;
export type LoraOptionsInput = z.input<typeof loraOptionsSchema>;

export function parseLoraOptions(raw: unknown, source = 'LoRA options'): LoraOptions {
  const result = loraOptionsSchema.safeParse(raw ?? {});
  if (!result.success) throw new TesseraError(`Invalid ${source}:\n${formatIssues(result.error.issues, raw ?? {})}`);
  return result.data;
}

/** adapter_config.json as peft writes it for LoRA (the fields peft's from_pretrained reads). */
export interface PeftLoraConfig {
  peft_type: 'LORA';
  task_type: string | null;
  base_model_name_or_path: string | null;
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  target_modules: string[] | string;
  bias: LoraBias;
  fan_in_fan_out: boolean;
  use_rslora: boolean;
  modules_to_save: string[] | null;
  inference_mode: boolean;
  init_lora_weights: boolean;
  revision: null;
  [key: string]: unknown;
}

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

/** Reads and checks adapter_config.json: a LoRA adapter peft (or Tessera) wrote. */
export function readPeftConfig(dir: string): PeftLoraConfig {
  const path = join(dir, ADAPTER_CONFIG);
  if (!existsSync(path))
    throw new AdapterFileError(
      `${dir} is not a peft adapter directory: ${path} is missing (it needs ${ADAPTER_CONFIG} and ${ADAPTER_WEIGHTS}).`,
    );
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('not a JSON object');
  } catch (err) {
    throw new AdapterFileError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (doc.peft_type !== 'LORA')
    throw new AdapterFileError(
      `${path} has peft_type ${JSON.stringify(doc.peft_type)}; only "LORA" adapters load here.`,
    );
  const problems: string[] = [];
  if (!(Number.isInteger(doc.r) && (doc.r as number) > 0))
    problems.push(`r: expected a positive integer, got ${JSON.stringify(doc.r)}`);
  if (!(typeof doc.lora_alpha === 'number' && doc.lora_alpha > 0))
    problems.push(`lora_alpha: expected a positive number, got ${JSON.stringify(doc.lora_alpha)}`);
  const targets = doc.target_modules;
  if (!(typeof targets === 'string' || (Array.isArray(targets) && targets.every((t) => typeof t === 'string'))))
    problems.push(`target_modules: expected a list of names or a regex string, got ${JSON.stringify(targets)}`);
  if (!(LORA_BIAS as readonly unknown[]).includes(doc.bias ?? 'none'))
    problems.push(`bias: expected one of ${LORA_BIAS.join(', ')}, got ${JSON.stringify(doc.bias)}`);
  if (problems.length)
    throw new AdapterFileError(`${path} is not a LoRA config this loader reads:\n  ${problems.join('\n  ')}`);
  return {
    task_type: null,
    base_model_name_or_path: null,
    lora_dropout: 0,
    fan_in_fan_out: false,
    use_rslora: false,
    modules_to_save: null,
    inference_mode: true,
    init_lora_weights: true,
    revision: null,
    ...doc,
    bias: (doc.bias ?? 'none') as LoraBias,
  } as PeftLoraConfig;
}

/**
 * The LoRA options an adapter_config.json describes. fan_in_fan_out is left to each
 * layer's layout: peft itself corrects a false flag on GPT-2's Conv1D (with a warning).
 */
export function optionsFromPeft(config: PeftLoraConfig): LoraOptions {
  return {
    r: config.r,
    lora_alpha: config.lora_alpha,
    target_modules: Array.isArray(config.target_modules) ? [...config.target_modules] : config.target_modules,
    lora_dropout: config.lora_dropout,
    bias: config.bias,
    use_rslora: config.use_rslora,
    modules_to_save: config.modules_to_save,
  };
}
