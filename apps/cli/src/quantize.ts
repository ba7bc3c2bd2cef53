import { copyFileSync, existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  checkpointBytes,
  formatQuantizationReport,
  loadQuantized,
  quantizationConfigOf,
  quantizeDynamic,
  saveQuantized,
} from '@tessera/adapt';
import { TesseraError, useBackend } from '@tessera/tensor-core';
import { resolveModelDir } from '@tessera/trainers';
import { familyByModelType, loadPretrained, type PretrainedModel, readHfConfig } from '@tessera/transformer';

export interface QuantizeCommandOptions {
  checkpoint: string;
  out: string;
  /** Comma-separated Linear names / suffixes (LoRA's rule); default every Linear but lm_head. */
  targetModules?: string;
  includeLmHead?: boolean;
  backend?: string;
}

/** `tessera quantize --checkpoint DIR --out DIR`: an fp32 checkpoint to an int8 one (dynamic int8 Linear). */
export async function quantizeCommand(
  o: QuantizeCommandOptions,
): Promise<{ out: string; bytes: number; fp32Bytes: number }> {
  const { dir } = resolveModelDir(o.checkpoint);
  if (quantizationConfigOf(dir))
    throw new TesseraError(`--checkpoint ${o.checkpoint}: ${dir} is already an int8 checkpoint.`);
  const out = resolve(o.out);
  if (resolve(dir) === out) throw new TesseraError('--out must be a new directory, not the checkpoint itself.');
  await useBackend(o.backend ?? 'cpu', { log: (l) => console.error(l) });
  const { model } = loadPretrained(dir);
  try {
    const targets = o.targetModules
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const { report } = quantizeDynamic(model, {
      ...(targets?.length ? { target_modules: targets } : {}),
      include_lm_head: o.includeLmHead ?? false,
    });
    await saveQuantized(model, out);
    if (existsSync(join(dir, 'tokenizer.json'))) copyFileSync(join(dir, 'tokenizer.json'), join(out, 'tokenizer.json'));
    const bytes = checkpointBytes(out);
    const fp32Bytes = statSync(join(dir, 'model.safetensors')).size + statSync(join(dir, 'config.json')).size;
    console.log(`quantized ${dir} -> ${out}\n${formatQuantizationReport(report)}`);
    console.log(
      `  size ${bytes.toLocaleString('en-US')} B (fp32 ${fp32Bytes.toLocaleString('en-US')} B, ${((100 * bytes) / fp32Bytes).toFixed(1)}%)`,
    );
    return { out, bytes, fp32Bytes };
  } finally {
    model.dispose();
  }
}

/** A model directory as a model: an int8 checkpoint through loadQuantized, anything else through loadPretrained. */
export function loadAnyCheckpoint(dir: string): PretrainedModel {
  return quantizationConfigOf(dir) ? loadQuantized(dir).model : loadPretrained(dir).model;
}

/**
 * The model block and adapter an int8 checkpoint evaluates with: the architecture from its
 * config.json (the run config's own model fields would build another), and the int8-dynamic
 * adapter loading it, so the trainer's evaluation runs the int8 layers.
 */
export function int8RunParts(dir: string, head: string | undefined) {
  const { quantization_config: _, architectures: __, model_type, ...fields } = readHfConfig(dir);
  const [family] = familyByModelType(model_type);
  return {
    model: { name: family, ...fields, ...(head ? { head } : {}) },
    adapter: { name: 'int8-dynamic', checkpoint: resolve(dir) },
  };
}
