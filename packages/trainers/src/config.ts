import { createHash } from 'node:crypto';
import { dirname, isAbsolute, resolve } from 'node:path';
import { loadConfig, pluginRef, resolveConfig, z } from '@tessera/tensor-core';
import { trainingArgumentsSchema } from './arguments.js';

const datasetSchema = z
  .object({
    /** A file or directory of text, relative to the config file. */
    path: z.string().min(1),
    format: z.enum(['text', 'jsonl', 'csv', 'tsv']).default('text'),
    /** text files: one example per line, or per blank-line-separated document. */
    mode: z.enum(['line', 'document']).default('line'),
    /** jsonl/csv/tsv: the field with the text (the source, for seq2seq). */
    text_field: z.string().default('text'),
    /** classification: the field with the label. */
    label_field: z.string().default('label'),
    /** seq2seq: the field with the target text. */
    target_field: z.string().default('target'),
    /** Bad records: stop with an error, or skip them and count them in the report. */
    on_bad_input: z.enum(['error', 'skip']).default('error'),
  })
  .strict();

export const runConfigSchema = z
  .object({
    /** cuda > webgpu (hardware) > native > cpu under "auto", or a backend by name. */
    backend: z.string().default('auto'),
    seed: z.union([z.number().int(), z.string()]).default(42),
    /** Extra packages to import before names resolve (third-party models, metrics, ...). */
    plugins: z.array(z.string()).default([]),
    model: z.looseObject({
      /** Registered model name: gpt, bert, t5, or a plugin's. */
      name: z.string().min(1),
      head: z.string().optional(),
      /** An HF checkpoint directory (config.json + model.safetensors) to start from. */
      from: z.string().optional(),
      /** Parameters the checkpoint may lack (a new head), and checkpoint tensors to drop. */
      allow_missing: z.array(z.string()).optional(),
      ignore_unexpected: z.array(z.string()).optional(),
    }),
    tokenizer: z.union([
      z.object({ path: z.string().min(1) }).strict(),
      z
        .object({
          /** Train one on the training split at the start of the run (saved with the checkpoints). */
          train: z.enum(['bpe', 'wordpiece', 'unigram']),
          vocab_size: z.number().int().positive(),
          min_frequency: z.number().int().positive().optional(),
          lowercase: z.boolean().optional(),
        })
        .strict(),
    ]),
    data: z
      .object({
        train: datasetSchema,
        validation: datasetSchema.optional(),
        /** Share of the training records held out for validation when no validation set is given. */
        validation_fraction: z.number().min(0).lt(1).default(0.1),
        /** Tokens per example (sequence length). */
        block_size: z.number().int().min(2).default(128),
        /** seq2seq: tokens per target. */
        target_block_size: z.number().int().positive().default(64),
      })
      .strict(),
    objective: z.looseObject({ name: z.string().min(1) }),
    optimizer: z.looseObject({ name: z.string().min(1) }),
    metrics: z.array(z.string()).default(['loss']),
    callbacks: z.array(pluginRef).default([]),
    training: trainingArgumentsSchema,
  })
  .strict();

export type RunConfig = z.output<typeof runConfigSchema>;

/** Input paths resolve against the config file's directory; output_dir against the working directory. */
function resolvePaths(config: RunConfig, base: string): RunConfig {
  const at = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const out = structuredClone(config);
  out.data.train.path = at(out.data.train.path);
  if (out.data.validation) out.data.validation.path = at(out.data.validation.path);
  if ('path' in out.tokenizer) out.tokenizer.path = at(out.tokenizer.path);
  if (typeof out.model.from === 'string') out.model.from = at(out.model.from);
  out.training.output_dir = resolve(out.training.output_dir);
  return out;
}

export function loadRunConfig(file: string, overrides: readonly string[] = []): RunConfig {
  return resolvePaths(loadConfig(file, { schema: runConfigSchema, overrides }), dirname(resolve(file)));
}

export function runConfigFrom(document: unknown, base: string, overrides: readonly string[] = []): RunConfig {
  return resolvePaths(resolveConfig(document, { schema: runConfigSchema, overrides }), base);
}

/** What must stay the same for a checkpoint to resume: model, tokenizer, objective, optimizer. */
export function configFingerprint(config: RunConfig): string {
  const { model, tokenizer, objective, optimizer } = config;
  return createHash('sha256')
    .update(JSON.stringify({ model, tokenizer, objective, optimizer }))
    .digest('hex')
    .slice(0, 16);
}
