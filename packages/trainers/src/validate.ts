import {
  ConfigError,
  type ConfigProblem,
  closestMatch,
  type PluginKind,
  problemsFromIssues,
  registry,
  type z,
} from '@tessera/tensor-core';
import type { ModelMeta } from '@tessera/transformer';
import type { RunConfig } from './config.js';

/** The trainer's own keys of the model block; the rest are the model's config fields. */
export const MODEL_RUN_KEYS = ['name', 'head', 'from', 'allow_missing', 'ignore_unexpected'] as const;

/** The model's own config fields of the model block (without name, head, from, ...). */
export function modelFields(model: RunConfig['model']): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(model).filter(([k]) => !(MODEL_RUN_KEYS as readonly string[]).includes(k)),
  );
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

/** Checks `{ name, ...options }` at `path` against the plugin's schema; returns every problem. */
function checkPlugin(
  kind: PluginKind,
  path: (string | number)[],
  block: Record<string, unknown>,
  schemaOf: (meta: Record<string, unknown>) => z.ZodType | undefined = (meta) => meta.options as z.ZodType | undefined,
  drop: readonly string[] = ['name'],
): ConfigProblem[] {
  const where = path.reduce<string>((s, k) => (typeof k === 'number' ? `${s}[${k}]` : s ? `${s}.${k}` : k), '');
  if (!registry[kind].has(String(block.name))) return [unknownName(kind, `${where}.name`, block.name)];
  const schema = schemaOf(registry[kind].get(String(block.name)).meta);
  if (!schema) return [];
  const options = Object.fromEntries(Object.entries(block).filter(([k]) => !drop.includes(k)));
  const result = schema.safeParse(options);
  return result.success ? [] : problemsFromIssues(result.error.issues, options, path);
}

/**
 * The whole run config against the registered plugins, before anything is read or built:
 * every name resolves, and every block's options pass its plugin's schema. All problems are
 * reported in one ConfigError. Plugin packages named under `plugins:` must be loaded first.
 */
export function validateRunConfig(config: RunConfig, source = '(run config)'): void {
  const problems: ConfigProblem[] = [];
  problems.push(...checkPlugin('tokenizer', ['tokenizer'], config.tokenizer));
  problems.push(...checkPlugin('dataset', ['data', 'train'], config.data.train));
  if (config.data.validation) problems.push(...checkPlugin('dataset', ['data', 'validation'], config.data.validation));
  config.data.preprocess.forEach((step, i) => {
    problems.push(...checkPlugin('preprocess', ['data', 'preprocess', i], step));
  });
  problems.push(...checkPlugin('objective', ['objective'], config.objective));
  problems.push(
    ...checkPlugin(
      'model',
      ['model'],
      config.model,
      (meta) => {
        const family = (meta as Partial<ModelMeta>).family;
        if (!family?.configSchema) return meta.options as z.ZodType | undefined;
        // Fields the run derives (vocabulary, position limit) may be left out; everything else is checked strictly.
        const derived = family.runFields?.({ vocabSize: 2, blockSize: config.data.block_size }) ?? {};
        return family.configSchema
          .strict()
          .partial(Object.fromEntries(Object.keys(derived).map((k) => [k, true])) as Record<string, true>);
      },
      MODEL_RUN_KEYS,
    ),
  );
  if (config.model.head !== undefined && registry.model.has(config.model.name)) {
    const heads = (registry.model.get(config.model.name).meta as Partial<ModelMeta>).heads;
    if (heads && !heads.includes(config.model.head))
      problems.push({ path: 'model.head', found: config.model.head, expected: `one of ${heads.join(', ')}` });
  }
  problems.push(...checkOptimizer(config));
  config.metrics.forEach((name, i) => {
    if (!registry.metric.has(name)) problems.push(unknownName('metric', `metrics[${i}]`, name));
  });
  config.callbacks.forEach((callback, i) => {
    problems.push(...checkPlugin('callback', ['callbacks', i], callback));
  });
  if (problems.length) throw new ConfigError(source, problems);
}

/** The optimizer and its schedule; a schedule's totalSteps may be left to the run (its length). */
function checkOptimizer(config: RunConfig): ConfigProblem[] {
  const { schedule, ...optimizer } = config.optimizer as Record<string, unknown> & { name: string };
  const problems = checkPlugin('optimizer', ['optimizer'], optimizer);
  if (schedule === undefined) return problems;
  if (schedule === null || typeof schedule !== 'object' || Array.isArray(schedule)) {
    return [...problems, { path: 'optimizer.schedule', found: schedule, expected: 'a schedule: { name, ...options }' }];
  }
  const block = { ...(schedule as Record<string, unknown>) };
  if (registry.schedule.has(String(block.name)) && block.totalSteps === undefined) {
    const meta = registry.schedule.get(String(block.name)).meta;
    if (meta.usesTotalSteps) block.totalSteps = config.training.max_steps ?? Number.MAX_SAFE_INTEGER;
  }
  return [...problems, ...checkPlugin('schedule', ['optimizer', 'schedule'], block)];
}
