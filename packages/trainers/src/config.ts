import { createHash } from 'node:crypto';
import { dirname, isAbsolute, resolve } from 'node:path';
import {
  ConfigError,
  loadConfig,
  type PluginKind,
  problemsFromIssues,
  registry,
  resolveConfig,
  z,
} from '@tessera/tensor-core';
import {
  namedBackendPrecisionProblems,
  normalizeTokenizer,
  pluginProblems,
  type RunCheckMeta,
  resolveOptionPaths,
} from './validate.js';
import { trainingArgumentsSchema } from './arguments.js';

/**
 * A block naming a registered plugin: `{ name, ...options }`. The options are checked
 * against the plugin's own schema by validateRunConfig, once plugin packages are loaded.
 */
const plugin = (fallback?: string) =>
  z.object({ name: fallback ? z.string().min(1).default(fallback) : z.string().min(1) }).catchall(z.unknown());

/** `{ train: bpe, vocab_size }` and `{ path }` are shorthands for `{ name: bpe, vocab_size }` and `{ name: hf-json, path }`. */
const tokenizerBlock = z.preprocess(normalizeTokenizer, plugin());

export const runConfigSchema = z
  .object({
    /** cuda > webgpu (hardware) > native > cpu under "auto", or a backend by name. */
    backend: z.string().default('auto'),
    seed: z.union([z.number().int(), z.string()]).default(42),
    /** Extra packages to import before names resolve (third-party models, objectives, callbacks, ...). */
    plugins: z.array(z.string()).default([]),
    /**
     * A registered model (gpt, bert, t5, or a plugin's) and its HF config fields; `head`,
     * `from` (an HF directory to start from), `allow_missing` / `ignore_unexpected` (globs) steer the import.
     */
    model: plugin().and(
      z.object({
        head: z.string().optional(),
        from: z.string().optional(),
        allow_missing: z.array(z.string()).optional(),
        ignore_unexpected: z.array(z.string()).optional(),
      }),
    ),
    /** A registered tokenizer: loaded from a tokenizer.json (`path`) or trained on the training split (`vocab_size`). */
    tokenizer: tokenizerBlock,
    data: z
      .object({
        /** A registered dataset (default "text": files of text / JSONL / CSV / TSV). */
        train: plugin('text'),
        validation: plugin('text').optional(),
        /** Text steps (registry.preprocess) applied in order to every record before tokenization. */
        preprocess: z.array(plugin()).default([]),
        /** Share of the training records held out for validation when no validation set is given. */
        validation_fraction: z.number().min(0).lt(1).default(0.1),
        /** Tokens per example (sequence length). */
        block_size: z.number().int().min(2).default(128),
        /** seq2seq: tokens per target. */
        target_block_size: z.number().int().positive().default(64),
      })
      .strict(),
    /** A registered objective: it windows, collates and labels the data. */
    objective: plugin(),
    /** A registered optimizer with its options (groups, clipping, `schedule: { name, ... }`). */
    optimizer: plugin(),
    metrics: z.array(z.string()).default(['loss']),
    /** Registered callbacks run after the built-in ones, in order. */
    callbacks: z.array(plugin()).default([]),
    /**
     * A registered adapter (parameter-efficient fine-tuning, e.g. @tessera/adapt's lora): it
     * freezes the model's weights, trains its own, and checkpoints save the adapter only.
     */
    adapter: plugin().optional(),
    training: trainingArgumentsSchema,
  })
  .strict();

export type RunConfig = z.output<typeof runConfigSchema>;

/** Input paths resolve against the config file's directory; output_dir against the working directory. */
function resolvePaths(config: RunConfig, base: string): RunConfig {
  const at = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const out = structuredClone(config);
  // A `path` option of a dataset or tokenizer names a file, relative to the config.
  for (const block of [out.data.train, out.data.validation, out.tokenizer])
    if (block && typeof block.path === 'string') block.path = at(block.path);
  if (typeof out.model.from === 'string') out.model.from = at(out.model.from);
  // Options a registered plugin declares as paths (its meta.paths), e.g. a distillation teacher.
  const blocks: [PluginKind, { name: string } | undefined][] = [
    ['objective', out.objective],
    ['adapter', out.adapter],
    ...out.callbacks.map((c): [PluginKind, { name: string }] => ['callback', c]),
  ];
  for (const [kind, block] of blocks)
    if (block && registry[kind].has(block.name))
      Object.assign(block, resolveOptionPaths(registry[kind].get(block.name).meta as RunCheckMeta, block, base));
  out.training.output_dir = resolve(out.training.output_dir);
  return out;
}

/**
 * Loads a run config: `extends:` and `--set` applied, then the run schema and every plugin
 * block checked in one pass, so one error lists every problem. Names from packages under
 * `plugins:` (not imported yet) are checked again when the Trainer loads them.
 */
export function loadRunConfig(file: string, overrides: readonly string[] = []): RunConfig {
  const document = loadConfig(file, { schema: anyDocument, overrides });
  return checkRunDocument(document, file, dirname(resolve(file)));
}

export function runConfigFrom(document: unknown, base: string, overrides: readonly string[] = []): RunConfig {
  return checkRunDocument(resolveConfig(document, { schema: anyDocument, overrides }), '(inline config)', base);
}

const anyDocument = z.record(z.string(), z.unknown());

function checkRunDocument(document: Record<string, unknown>, source: string, base: string): RunConfig {
  const parsed = runConfigSchema.safeParse(document);
  const problems = parsed.success ? [] : problemsFromIssues(parsed.error.issues, document);
  const plugins = Array.isArray(document.plugins) ? document.plugins : [];
  problems.push(...pluginProblems(document, { allowUnknown: plugins.length > 0, base }));
  problems.push(...namedBackendPrecisionProblems(document));
  if (problems.length || !parsed.success) throw new ConfigError(source, problems);
  return resolvePaths(parsed.data, base);
}

/** What must stay the same for a checkpoint to resume: model, tokenizer, objective, optimizer (and adapter). */
export function configFingerprint(config: RunConfig): string {
  const { model, tokenizer, objective, optimizer, adapter } = config;
  // Without an adapter the document is the one earlier versions hashed, so their checkpoints still resume.
  return createHash('sha256')
    .update(JSON.stringify({ model, tokenizer, objective, optimizer, ...(adapter ? { adapter } : {}) }))
    .digest('hex')
    .slice(0, 16);
}
