import { readFileSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z, type ZodType } from 'zod';
import { TesseraError } from './errors.js';

export interface ConfigProblem {
  /** Dotted path into the document, e.g. `optimizer.lr` or `data.files[2]`. */
  path: string;
  /** The value found there (undefined when missing). */
  found: unknown;
  /** What was expected, in words. */
  expected: string;
}

/** A config document that failed to load or validate: lists every problem at once. */
export class ConfigError extends TesseraError {
  constructor(
    readonly source: string,
    readonly problems: ConfigProblem[],
  ) {
    super(
      `Invalid config ${source} (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  - ${p.path || '(root)'}: found ${describe(p.found)}; expected ${p.expected}`).join('\n'),
    );
  }
}

export interface LoadConfigOptions<S extends ZodType> {
  /** Schema the merged document must satisfy. */
  schema: S;
  /** `a.b.c=value` overrides, applied after `extends:` is resolved; values parse as YAML scalars. */
  overrides?: readonly string[];
}

/**
 * Loads a YAML or JSON run config: resolves `extends:` (relative to the file,
 * recursively), applies `--set` style overrides, then validates against the schema.
 * Every problem is reported in one ConfigError.
 */
export function loadConfig<S extends ZodType>(file: string, options: LoadConfigOptions<S>): z.output<S> {
  const document = readWithExtends(resolve(file), []);
  return resolveConfig(document, { ...options, source: file });
}

/** Same as loadConfig for a document already in memory (an object, or YAML/JSON text). */
export function resolveConfig<S extends ZodType>(
  document: unknown,
  options: LoadConfigOptions<S> & { source?: string },
): z.output<S> {
  const source = options.source ?? '(inline config)';
  let doc = typeof document === 'string' ? parseText(document, source) : structuredClone(document);
  if (isPlainObject(doc) && 'extends' in doc && options.source === undefined) {
    throw new ConfigError(source, [
      { path: 'extends', found: doc.extends, expected: 'no extends: in an inline config (load it from a file)' },
    ]);
  }
  const problems: ConfigProblem[] = [];
  for (const override of options.overrides ?? []) {
    const applied = applyOverride(doc, override);
    if (typeof applied === 'string') problems.push({ path: override, found: override, expected: applied });
    else doc = applied.doc;
  }
  if (problems.length) throw new ConfigError(source, problems);
  const result = options.schema.safeParse(doc);
  if (!result.success) throw new ConfigError(source, issuesToProblems(result.error.issues, doc));
  return result.data;
}

function readWithExtends(file: string, chain: string[]): Record<string, unknown> {
  if (chain.includes(file)) {
    throw new ConfigError(file, [
      { path: 'extends', found: [...chain, file].join(' -> '), expected: 'a chain of extends: without a cycle' },
    ]);
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(file, [
      { path: '', found: code === 'ENOENT' ? 'no such file' : String(err), expected: 'a readable YAML or JSON file' },
    ]);
  }
  const doc = parseText(text, file);
  if (!isPlainObject(doc)) {
    throw new ConfigError(file, [{ path: '', found: doc, expected: 'a mapping (key: value) at the top level' }]);
  }
  const { extends: parent, ...own } = doc;
  if (parent === undefined) return own;
  if (typeof parent !== 'string') {
    throw new ConfigError(file, [{ path: 'extends', found: parent, expected: 'a path to another config file' }]);
  }
  const base = readWithExtends(resolve(dirname(file), parent), [...chain, file]);
  return deepMerge(base, own);
}

function parseText(text: string, source: string): unknown {
  const isJson = extname(source).toLowerCase() === '.json';
  try {
    return isJson ? JSON.parse(text) : parseYaml(text, { prettyErrors: true });
  } catch (err) {
    const where =
      err instanceof YAMLParseError && err.linePos
        ? ` at line ${err.linePos[0].line}, column ${err.linePos[0].col}`
        : '';
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new ConfigError(source, [
      { path: '', found: `a syntax error${where}: ${message}`, expected: `valid ${isJson ? 'JSON' : 'YAML'}` },
    ]);
  }
}

/** Objects merge key by key; anything else (arrays included) is replaced by the override. */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prior = out[key];
    out[key] = isPlainObject(prior) && isPlainObject(value) ? deepMerge(prior, value) : value;
  }
  return out;
}

/** Parses `a.b[0].c=value` and sets it; returns an error string when the override is malformed. */
function applyOverride(doc: unknown, override: string): { doc: unknown } | string {
  const eq = override.indexOf('=');
  if (eq <= 0) return 'an override of the form path.to.key=value';
  const path = parsePath(override.slice(0, eq));
  if (!path) return 'a dotted path such as optimizer.lr or data.files[0]';
  let value: unknown;
  try {
    value = parseYaml(override.slice(eq + 1));
  } catch {
    value = override.slice(eq + 1);
  }
  const root: unknown = isPlainObject(doc) || Array.isArray(doc) ? doc : {};
  let node = root as Record<string | number, unknown>;
  for (const [i, key] of path.entries()) {
    if (i === path.length - 1) {
      node[key] = value;
      break;
    }
    const next = node[key];
    if (!isPlainObject(next) && !Array.isArray(next)) node[key] = typeof path[i + 1] === 'number' ? [] : {};
    node = node[key] as Record<string | number, unknown>;
  }
  return { doc: root };
}

function parsePath(text: string): (string | number)[] | undefined {
  const out: (string | number)[] = [];
  for (const part of text.split('.')) {
    const m = /^([^[\]]+)((?:\[\d+\])*)$/.exec(part);
    if (!m) return undefined;
    out.push(m[1]!);
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

type Issue = z.core.$ZodIssue;

function issuesToProblems(issues: readonly Issue[], doc: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of issues) {
    const path = issue.path as (string | number)[];
    if (issue.code === 'unrecognized_keys') {
      const parent = valueAt(doc, path);
      const known = knownKeysHint(issue);
      for (const key of issue.keys) {
        problems.push({
          path: formatPath([...path, key]),
          found: isPlainObject(parent) ? parent[key] : undefined,
          expected: `no such key here${known}`,
        });
      }
      continue;
    }
    if (issue.code === 'invalid_union' && issue.errors.length) {
      // Report the branch that got furthest: the one with the fewest issues.
      const best = [...issue.errors].sort((a, b) => a.length - b.length)[0]!;
      problems.push(...issuesToProblems(best, doc));
      continue;
    }
    problems.push({ path: formatPath(path), found: valueAt(doc, path), expected: expectedText(issue) });
  }
  return problems;
}

function knownKeysHint(issue: Issue): string {
  const msg = issue.message ?? '';
  return msg.startsWith('Unrecognized') ? ' (check the spelling)' : '';
}

function expectedText(issue: Issue): string {
  switch (issue.code) {
    case 'invalid_type': {
      const expected = issue.expected === 'int' ? 'integer' : issue.expected;
      return expected === 'undefined' ? 'nothing here' : `${article(expected)} ${expected}`;
    }
    case 'invalid_value':
      return `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      const bound = String(small ? issue.minimum : issue.maximum);
      if (issue.origin === 'array' || issue.origin === 'set')
        return `${small ? 'at least' : 'at most'} ${bound} item(s)`;
      if (issue.origin === 'string') return `${small ? 'at least' : 'at most'} ${bound} character(s)`;
      const op = small ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<';
      return `a number ${op} ${bound}`;
    }
    default:
      return issue.message;
  }
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

/**
 * Zod issues as config problems, for a value found at `prefix` in a larger document
 * (a plugin's options inside a run config): paths come out as the document's.
 */
export function problemsFromIssues(
  issues: readonly Issue[],
  value: unknown,
  prefix: readonly (string | number)[] = [],
): ConfigProblem[] {
  const wrapped = prefix.reduceRight<unknown>(
    (inner, key) => (typeof key === 'number' ? Object.assign([], { [key]: inner }) : { [key]: inner }),
    value,
  );
  const moved = (list: readonly Issue[]): Issue[] =>
    list.map((i) => {
      const path = [...prefix, ...i.path];
      return (
        i.code === 'invalid_union' ? { ...i, path, errors: i.errors.map((b) => moved(b)) } : { ...i, path }
      ) as Issue;
    });
  return issuesToProblems(moved(issues), wrapped);
}

/** Formats zod issues against the value they describe: one line per problem. */
export function formatIssues(issues: readonly Issue[], value: unknown): string {
  return issuesToProblems(issues, value)
    .map((p) => `  - ${p.path || '(root)'}: found ${describe(p.found)}; expected ${p.expected}`)
    .join('\n');
}

function valueAt(doc: unknown, path: readonly (string | number | symbol)[]): unknown {
  let node: unknown = doc;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number | symbol, unknown>)[key];
  }
  return node;
}

function formatPath(path: readonly (string | number | symbol)[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    const text = JSON.stringify(value);
    return text.length > 80 ? `${text.slice(0, 77)}...` : text;
  } catch {
    return String(value);
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A reference to a registered plugin in a config: `{ name, ...options }`. */
export const pluginRef = z.object({ name: z.string().min(1) }).catchall(z.unknown());
export { z };
