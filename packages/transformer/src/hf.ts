import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng, StateDictError, TesseraError, tf } from '@tessera/tensor-core';
import { createModel, familyByModelType } from './families.js';
import type { PretrainedModel } from './models/common.js';
import { loadSafetensors, saveSafetensors } from './safetensors.js';

export class CheckpointError extends TesseraError {}

export interface LoadPretrainedOptions {
  /** Head to build (default: from config.json's architectures, else the family default). */
  head?: string;
  /** Parameters the checkpoint may lack (globs, e.g. "classifier.*" for a new head); they keep their initialisation. */
  allowMissing?: string[];
  /** Checkpoint tensors to drop (globs, e.g. "cls.*" when fine-tuning a classifier from a pretraining checkpoint). */
  ignoreUnexpected?: string[];
  /** Config fields to override (e.g. num_labels for a new head, dropout rates). */
  configOverrides?: Record<string, unknown>;
  /** Seed for parameters the checkpoint does not provide, and for dropout. */
  seed?: number | string;
}

export interface LoadReport {
  family: string;
  head: string;
  loaded: number;
  /** Known non-parameter buffers that were skipped (e.g. GPT-2's attn.bias masks). */
  skippedBuffers: string[];
  /** Tensors dropped through ignoreUnexpected. */
  ignored: string[];
  /** Parameters left at initialisation through allowMissing. */
  initialised: string[];
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}

/** Reads config.json (HF field names). */
export function readHfConfig(dir: string): Record<string, unknown> {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) throw new CheckpointError(`${dir} is not an HF checkpoint directory: ${path} is missing.`);
  try {
    const config = JSON.parse(readFileSync(path, 'utf8'));
    if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new Error('not a JSON object');
    return config;
  } catch (err) {
    throw new CheckpointError(`${path} is not a valid config.json: ${(err as Error).message}`);
  }
}

/**
 * Loads an HF checkpoint directory (config.json + model.safetensors). Every name and
 * shape is checked; missing, unexpected and mis-shaped tensors are reported together.
 */
export function loadPretrained(
  dir: string,
  options: LoadPretrainedOptions = {},
): { model: PretrainedModel; report: LoadReport } {
  const config = { ...readHfConfig(dir), ...options.configOverrides };
  const weightsPath = join(dir, 'model.safetensors');
  if (!existsSync(weightsPath))
    throw new CheckpointError(`${dir} is not an HF checkpoint directory: ${weightsPath} is missing.`);
  const [familyName, family] = familyByModelType(config.model_type);
  const architecture = Array.isArray(config.architectures) ? String(config.architectures[0]) : undefined;
  const head = options.head ?? (architecture ? family.architectures[architecture] : undefined) ?? family.defaultHead;
  const model = createModel(familyName, head, config, new Rng(options.seed ?? 0));
  let tensors: Record<string, tf.Tensor> = {};
  try {
    tensors = loadSafetensors(weightsPath).tensors;
    const own = new Map(model.namedParameters());
    const report: LoadReport = {
      family: familyName,
      head,
      loaded: 0,
      skippedBuffers: [],
      ignored: [],
      initialised: [],
    };
    const ignore = (options.ignoreUnexpected ?? []).map(globToRegExp);
    const allowMissing = (options.allowMissing ?? []).map(globToRegExp);
    const state: Record<string, tf.Tensor> = {};
    for (const [fileName, tensor] of Object.entries(tensors)) {
      const name = resolveName(fileName, own, family.trunkPrefix);
      if (own.has(name)) state[name] = tensor;
      else if ((family.buffers ?? []).some((b) => b.test(fileName))) report.skippedBuffers.push(fileName);
      else if (ignore.some((r) => r.test(fileName))) report.ignored.push(fileName);
      else state[name] = tensor; // reported as unexpected below
    }
    for (const name of own.keys()) {
      if (!(name in state) && allowMissing.some((r) => r.test(name))) report.initialised.push(name);
    }
    let problems: ReturnType<PretrainedModel['loadStateDict']>;
    try {
      problems = model.loadStateDict(state, { strict: false });
    } catch (err) {
      if (err instanceof StateDictError) throw new CheckpointError(`${weightsPath}: ${err.message}`);
      throw err;
    }
    const missing = problems.missing.filter((n) => !report.initialised.includes(n));
    if (missing.length || problems.unexpected.length) {
      const lines = [
        missing.length ? `  missing (${missing.length}): ${missing.join(', ')}` : '',
        problems.unexpected.length
          ? `  unexpected (${problems.unexpected.length}): ${problems.unexpected.join(', ')}`
          : '',
      ].filter(Boolean);
      throw new CheckpointError(
        `${weightsPath} does not fit ${model.architecture}:\n${lines.join('\n')}\n` +
          'Pass allowMissing (e.g. ["classifier.*"]) to keep new parameters initialised, or ignoreUnexpected (e.g. ["cls.*"]) to drop tensors you do not need.',
      );
    }
    report.loaded = Object.keys(state).length;
    return { model, report };
  } catch (err) {
    model.dispose();
    throw err;
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

/** A checkpoint name as the model calls it: adds or strips the trunk prefix when only that differs. */
function resolveName(fileName: string, own: Map<string, unknown>, prefix: string | undefined): string {
  if (own.has(fileName) || !prefix) return fileName;
  if (own.has(prefix + fileName)) return prefix + fileName;
  if (fileName.startsWith(prefix) && own.has(fileName.slice(prefix.length))) return fileName.slice(prefix.length);
  return fileName;
}

/** Writes config.json and model.safetensors in HF layout; each file is written atomically. */
export async function savePretrained(model: PretrainedModel, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const config = { ...model.config, architectures: [model.architecture] };
  const configPath = join(dir, 'config.json');
  const temporary = `${configPath}.tmp-${process.pid}`;
  writeFileSync(temporary, `${JSON.stringify(config, null, 2)}\n`);
  renameSync(temporary, configPath);
  await saveSafetensors(join(dir, 'model.safetensors'), model.stateDict());
}
