import { resolve } from 'node:path';
import {
  ConfigError,
  type ConfigProblem,
  closestMatch,
  matmulPrecisionSupport,
  type PluginKind,
  problemsFromIssues,
  registry,
  resolveBackend,
  type z,
} from '@tessera/tensor-core';
import type { ModelMeta } from '@tessera/transformer';
import type { RunConfig } from './config.js';

/** The trainer's own keys of the model block; the rest are the model's config fields. */
export const MODEL_RUN_KEYS = ['name', 'head', 'from', 'allow_missing', 'ignore_unexpected'] as const;

/** The model's own config fields of the model block (without name, head, from, ...). */
export function modelFields(model: RunConfig['model']): Record<string, unknown> {
  return Object.fromEntries(Object.entries(model).filter(([k]) => !(MODEL_RUN_KEYS as readonly string[]).includes(k)));
}

function unknownName(kind: PluginKind, path: string, name: unknown): ConfigProblem {
  const known = registry[kind].list();
  const guess = typeof name === 'string' ? closestMatch(name, known) : undefined;
  return {
    path,
    found: name,
    expected:
      `a registered ${kind}${guess ? ` (did you mean "${guess}"?)` : ''}: ${known.join(', ') || 'none registered'}` +
      '; a plugin package must be listed under plugins:',
  };
}

const isBlock = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

interface CheckOptions {
  /** Names not registered yet are left for later (plugin packages are not loaded yet). */
  allowUnknown: boolean;
  /** The directory a document's input paths resolve against (the config file's); default the working directory. */
  base?: string;
}

/** What a plugin's run check sees besides its own options. */
export interface RunCheckContext {
  /** The whole run document (its other blocks; input paths as written, relative to `base`). */
  document: Record<string, unknown>;
  /** The directory the document's input paths resolve against. */
  base: string;
}

/**
 * Optional plugin metadata read by validation, next to `options`:
 * - `paths`: option keys that name input files or directories; they resolve against the
 *   config file's directory, as data paths and `model.from` do, before the schema sees them.
 * - `checkRun(options, context)`: problems that need other blocks of the run (an adapter
 *   comparing the model block with a file it names), run once the options passed the schema;
 *   cheap checks only (config files, not weights): validation runs before any data is read.
 */
export interface RunCheckMeta {
  paths?: readonly string[];
  checkRun?: (options: Record<string, unknown>, context: RunCheckContext) => ConfigProblem[];
}

/** `options` with the keys `meta.paths` names resolved against `base`. */
export function resolveOptionPaths<T extends Record<string, unknown>>(meta: RunCheckMeta, options: T, base: string): T {
  if (!meta.paths?.length) return options;
  const out: Record<string, unknown> = { ...options };
  for (const key of meta.paths) if (typeof out[key] === 'string') out[key] = resolve(base, out[key] as string);
  return out as T;
}

/** Checks `{ name, ...options }` at `path` against the plugin's schema; returns every problem. */
function checkPlugin(
  kind: PluginKind,
  path: (string | number)[],
  block: unknown,
  o: CheckOptions & { document?: Record<string, unknown> },
  schemaOf: (meta: Record<string, unknown>) => z.ZodType | undefined = (meta) => meta.options as z.ZodType | undefined,
  drop: readonly string[] = ['name'],
  fallbackName?: string,
): ConfigProblem[] {
  // A missing or malformed block is the run schema's to report.
  if (!isBlock(block)) return [];
  const name = block.name ?? fallbackName;
  if (typeof name !== 'string') return [];
  const where = path.reduce<string>((s, k) => (typeof k === 'number' ? `${s}[${k}]` : s ? `${s}.${k}` : k), '');
  if (!registry[kind].has(name)) return o.allowUnknown ? [] : [unknownName(kind, `${where}.name`, name)];
  const meta = registry[kind].get(name).meta as RunCheckMeta & Record<string, unknown>;
  const schema = schemaOf(meta);
  if (!schema) return [];
  const base = o.base ?? process.cwd();
  const options = resolveOptionPaths(
    meta,
    Object.fromEntries(Object.entries(block).filter(([k]) => !drop.includes(k))),
    base,
  );
  const result = schema.safeParse(options);
  if (!result.success) return problemsFromIssues(result.error.issues, options, path);
  return meta.checkRun && o.document
    ? meta.checkRun(result.data as Record<string, unknown>, { document: o.document, base })
    : [];
}

/**
 * The plugin blocks of a run config document against the registered plugins: every name
 * resolves, and every block's options pass its plugin's schema. Works on a document that
 * failed the run schema too, so one report holds every problem.
 */
export function pluginProblems(
  doc: Record<string, unknown>,
  options: CheckOptions = { allowUnknown: false },
): ConfigProblem[] {
  const o = { ...options, document: doc };
  const problems: ConfigProblem[] = [];
  const data = isBlock(doc.data) ? doc.data : {};
  const training = isBlock(doc.training) ? doc.training : {};
  problems.push(...checkPlugin('tokenizer', ['tokenizer'], normalizeTokenizer(doc.tokenizer), o));
  problems.push(...checkPlugin('dataset', ['data', 'train'], data.train, o, undefined, ['name'], 'text'));
  problems.push(...checkPlugin('dataset', ['data', 'validation'], data.validation, o, undefined, ['name'], 'text'));
  if (Array.isArray(data.preprocess))
    for (const [i, step] of data.preprocess.entries())
      problems.push(...checkPlugin('preprocess', ['data', 'preprocess', i], step, o));
  problems.push(...checkPlugin('objective', ['objective'], doc.objective, o));
  const model = isBlock(doc.model) ? doc.model : undefined;
  const blockSize = typeof data.block_size === 'number' ? data.block_size : 128;
  problems.push(
    ...checkPlugin(
      'model',
      ['model'],
      model,
      o,
      (meta) => {
        const family = (meta as Partial<ModelMeta>).family;
        if (!family?.configSchema) return meta.options as z.ZodType | undefined;
        // Fields the run derives (vocabulary, position limit) may be left out; everything else is checked strictly.
        // Started `from` a checkpoint, every field comes from its config.json unless overridden.
        const strict = family.configSchema.strict();
        if (model && model.from !== undefined) return strict.partial();
        const derived = family.runFields?.({ vocabSize: 2, blockSize }) ?? {};
        return strict.partial(Object.fromEntries(Object.keys(derived).map((k) => [k, true])) as Record<string, true>);
      },
      MODEL_RUN_KEYS,
    ),
  );
  if (model && typeof model.head === 'string' && registry.model.has(String(model.name))) {
    const heads = (registry.model.get(String(model.name)).meta as Partial<ModelMeta>).heads;
    if (heads && !heads.includes(model.head))
      problems.push({ path: 'model.head', found: model.head, expected: `one of ${heads.join(', ')}` });
  }
  problems.push(...checkOptimizer(doc.optimizer, training.max_steps, o));
  if (Array.isArray(doc.metrics))
    doc.metrics.forEach((name, i) => {
      if (typeof name === 'string' && !registry.metric.has(name) && !o.allowUnknown)
        problems.push(unknownName('metric', `metrics[${i}]`, name));
    });
  if (Array.isArray(doc.callbacks))
    for (const [i, callback] of doc.callbacks.entries())
      problems.push(...checkPlugin('callback', ['callbacks', i], callback, o));
  problems.push(...checkPlugin('adapter', ['adapter'], doc.adapter, o));
  return problems;
}

/** The tokenizer shorthands as the run schema reads them (`train:` -> name, `path` alone -> hf-json). */
export function normalizeTokenizer(v: unknown): unknown {
  if (!isBlock(v) || 'name' in v) return v;
  const { train, ...rest } = v;
  if (typeof train === 'string') return { name: train, ...rest };
  return { name: 'hf-json', ...rest };
}

/**
 * Throws one ConfigError with every plugin problem of a parsed run config (plugin packages
 * loaded). Its input paths are resolved already (loadRunConfig); a plugin loaded only now
 * (`plugins:`) sees its own `paths` options relative to the working directory.
 */
export function validateRunConfig(config: RunConfig, source = '(run config)', more: ConfigProblem[] = []): void {
  const problems = [...pluginProblems(config as unknown as Record<string, unknown>), ...more];
  if (problems.length) throw new ConfigError(source, problems);
}

/**
 * What `training.bf16` asks of the backend the run will get (auto resolved, nothing started):
 * a problem when that backend does not declare bf16 matmul here. A backend that cannot be
 * resolved at all is left to useBackend, which says why.
 */
export async function precisionProblems(config: RunConfig): Promise<ConfigProblem[]> {
  if (!config.training.bf16) return [];
  let backend: string;
  try {
    backend = (await resolveBackend(config.backend)).name;
  } catch {
    return [];
  }
  return bf16Problems(backend);
}

/**
 * The same question for a config document that names a registered backend, answered with
 * the schema's problems (resolving "auto" is async and waits for precisionProblems): one
 * round of fixes, not a second error once the first ones are gone.
 */
export function namedBackendPrecisionProblems(document: Record<string, unknown>): ConfigProblem[] {
  const { backend, training } = document;
  if (!isBlock(training) || training.bf16 !== true) return [];
  if (typeof backend !== 'string' || backend === 'auto' || !registry.backend.has(backend)) return [];
  return bf16Problems(backend);
}

function bf16Problems(backend: string): ConfigProblem[] {
  const support = matmulPrecisionSupport(backend, 'bf16');
  return support.supported ? [] : [{ path: 'training.bf16', found: true, expected: `false: ${support.reason}` }];
}

/** The optimizer and its schedule; a schedule's totalSteps may be left to the run (its length). */
function checkOptimizer(block: unknown, maxSteps: unknown, o: CheckOptions): ConfigProblem[] {
  if (!isBlock(block)) return [];
  const { schedule, ...optimizer } = block;
  const problems = checkPlugin('optimizer', ['optimizer'], optimizer, o);
  if (schedule === undefined) return problems;
  if (!isBlock(schedule)) {
    return [...problems, { path: 'optimizer.schedule', found: schedule, expected: 'a schedule: { name, ...options }' }];
  }
  const filled = { ...schedule };
  if (registry.schedule.has(String(filled.name)) && filled.totalSteps === undefined) {
    const meta = registry.schedule.get(String(filled.name)).meta;
    // Unknown before the data is read (or itself wrong, reported by the run schema): any valid length.
    const valid = typeof maxSteps === 'number' && Number.isInteger(maxSteps) && maxSteps > 0;
    if (meta.usesTotalSteps) filled.totalSteps = valid ? maxSteps : Number.MAX_SAFE_INTEGER;
  }
  return [...problems, ...checkPlugin('schedule', ['optimizer', 'schedule'], filled, o)];
}
