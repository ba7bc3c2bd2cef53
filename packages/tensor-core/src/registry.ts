import type { ZodType } from 'zod';
import { formatIssues } from './config.js';
import { TesseraError, closestMatch } from './errors.js';

export const PLUGIN_KINDS = [
  'backend',
  'op',
  'model',
  'layer',
  'optimizer',
  'schedule',
  'tokenizer',
  'dataset',
  'preprocess',
  'objective',
  'metric',
  'callback',
  'adapter',
] as const;
export type PluginKind = (typeof PLUGIN_KINDS)[number];

export interface PluginMeta {
  /** One line for listings. */
  description?: string;
  /** The npm package that registered it. */
  package?: string;
  /** Schema for the options passed to `create`; validated before the factory runs. */
  options?: ZodType;
  [key: string]: unknown;
}

export interface PluginEntry<F> {
  readonly kind: PluginKind;
  readonly name: string;
  readonly factory: F;
  readonly meta: PluginMeta;
}

export class UnknownPluginError extends TesseraError {}
export class DuplicatePluginError extends TesseraError {}
export class PluginOptionsError extends TesseraError {}

// biome-ignore lint/suspicious/noExplicitAny: factories of every shape live here
type AnyFactory = (...args: any[]) => any;

/** One kind of plugin: name -> factory, with metadata. */
export class PluginTable<F extends AnyFactory = AnyFactory> {
  readonly #entries = new Map<string, PluginEntry<F>>();

  constructor(readonly kind: PluginKind) {}

  /** Registers `name`. A taken name is an error unless `{ replace: true }`. */
  register(name: string, factory: F, meta: PluginMeta = {}, options: { replace?: boolean } = {}): void {
    if (typeof name !== 'string' || name.trim() === '') {
      throw new TesseraError(`A ${this.kind} plugin needs a non-empty name; got ${JSON.stringify(name)}.`);
    }
    if (typeof factory !== 'function') {
      throw new TesseraError(`The ${this.kind} plugin "${name}" needs a factory function; got ${typeof factory}.`);
    }
    const existing = this.#entries.get(name);
    if (existing && !options.replace) {
      const by = existing.meta.package ? ` by ${existing.meta.package}` : '';
      throw new DuplicatePluginError(
        `A ${this.kind} named "${name}" is already registered${by}. ` +
          'Pick another name, or pass { replace: true } to replace it on purpose.',
      );
    }
    this.#entries.set(name, { kind: this.kind, name, factory, meta });
  }

  unregister(name: string): boolean {
    return this.#entries.delete(name);
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  /** Registered names, sorted. */
  list(): string[] {
    return [...this.#entries.keys()].sort();
  }

  entries(): PluginEntry<F>[] {
    return this.list().map((n) => this.#entries.get(n)!);
  }

  /** The entry for `name`, or an error that lists the known names and the closest match. */
  get(name: string): PluginEntry<F> {
    const entry = this.#entries.get(name);
    if (entry) return entry;
    const known = this.list();
    const guess = closestMatch(name, known);
    const hint = guess ? ` Did you mean "${guess}"?` : '';
    const list = known.length ? `Known ${this.kind}s: ${known.join(', ')}.` : `No ${this.kind} is registered yet.`;
    throw new UnknownPluginError(
      `Unknown ${this.kind} "${name}".${hint} ${list} ` +
        'If it lives in another package, name that package under `plugins:` in the config (or import it first).',
    );
  }

  /** Validates `options` against the plugin's schema (if any) and calls its factory. */
  create(name: string, options?: unknown, ...rest: unknown[]): ReturnType<F> {
    const entry = this.get(name);
    let parsed = options;
    if (entry.meta.options) {
      const result = entry.meta.options.safeParse(options ?? {});
      if (!result.success) {
        throw new PluginOptionsError(
          `Invalid options for ${this.kind} "${name}":\n${formatIssues(result.error.issues, options ?? {})}`,
        );
      }
      parsed = result.data;
    }
    return entry.factory(parsed, ...rest);
  }
}

export type Registry = { readonly [K in PluginKind]: PluginTable } & {
  /** Imports plugin packages (by name or path); each registers its plugins on import. */
  loadPlugins(packages: readonly string[]): Promise<void>;
};

function makeRegistry(): Registry {
  const tables = Object.fromEntries(PLUGIN_KINDS.map((k) => [k, new PluginTable(k)])) as {
    [K in PluginKind]: PluginTable;
  };
  return {
    ...tables,
    async loadPlugins(packages) {
      for (const [i, spec] of packages.entries()) {
        try {
          await import(spec);
        } catch (err) {
          const reason = err instanceof Error ? err.message : String(err);
          throw new TesseraError(
            `Could not load plugin package "${spec}" (plugins[${i}]): ${reason}\n` +
              `Install it (npm install ${spec}) or remove it from the config's plugins list.`,
          );
        }
      }
    },
  };
}

// Kept on globalThis so that two copies of tensor-core in one process (a nested
// install) still share one registry, just as tfjs keeps one engine.
const KEY = Symbol.for('tessera.registry');
const globalSlot = globalThis as unknown as Record<symbol, Registry | undefined>;

/** The one plugin registry: `registry.<kind>.register(name, factory, meta)` and `.create(name, options)`. */
export const registry: Registry = globalSlot[KEY] ?? (globalSlot[KEY] = makeRegistry());
