import * as tf from '@tensorflow/tfjs-core';
import './engine.js';
import { TesseraError } from './errors.js';

/** A named, optionally trainable tensor owned by a Module. It takes ownership of (and disposes) `initial`. */
export class Parameter {
  readonly variable: tf.Variable;

  constructor(initial: tf.Tensor, trainable = true) {
    // tfjs variable names are global; leave naming to tfjs and keep ours in the module tree.
    this.variable = tf.variable(initial, trainable);
    // The variable holds its own reference to the data; the initial tensor is ours to free.
    initial.dispose();
  }

  /**
   * Whether gradients and optimizers see it (PyTorch's requires_grad). Settable, so an
   * adapter can freeze a model's weights; set it before the optimizer is built.
   */
  get trainable(): boolean {
    return this.variable.trainable;
  }
  set trainable(value: boolean) {
    this.variable.trainable = value;
  }

  get value(): tf.Tensor {
    return this.variable;
  }
  get shape(): number[] {
    return this.variable.shape;
  }
  get dtype(): tf.DataType {
    return this.variable.dtype;
  }
  /** Replaces the value in place (same shape and dtype). */
  assign(value: tf.Tensor): void {
    this.variable.assign(value);
  }
  dispose(): void {
    this.variable.dispose();
  }
}

export interface StateDictProblems {
  missing: string[];
  unexpected: string[];
  /** Entries whose shape or dtype differ: "name: expected [..] float32, got [..] int32". */
  mismatched: string[];
}

export class StateDictError extends TesseraError {
  constructor(
    readonly moduleName: string,
    readonly problems: StateDictProblems,
  ) {
    const lines: string[] = [];
    if (problems.missing.length) lines.push(`  missing (${problems.missing.length}): ${problems.missing.join(', ')}`);
    if (problems.unexpected.length) {
      lines.push(`  unexpected (${problems.unexpected.length}): ${problems.unexpected.join(', ')}`);
    }
    if (problems.mismatched.length) {
      lines.push(
        `  mismatched (${problems.mismatched.length}):\n${problems.mismatched.map((m) => `    ${m}`).join('\n')}`,
      );
    }
    super(
      `State dict does not fit ${moduleName}:\n${lines.join('\n')}\n` +
        'Check that the checkpoint was saved from the same model config; pass { strict: false } to load a subset.',
    );
  }
}

/**
 * A building block with named parameters and child modules (PyTorch's nn.Module):
 * names are dotted paths (`h.0.attn.cAttn.weight`), stable across runs, and the keys
 * of stateDict().
 */
export class Module {
  #parameters = new Map<string, Parameter>();
  #children = new Map<string, Module>();
  #training = true;

  /** Adds a parameter (taking ownership of `initial`); returns it for use in forward. */
  protected registerParameter(name: string, initial: tf.Tensor, options: { trainable?: boolean } = {}): Parameter {
    this.#checkName(name);
    const p = new Parameter(initial, options.trainable ?? true);
    this.#parameters.set(name, p);
    return p;
  }

  /** Adds a child module; returns it. */
  protected registerModule<M extends Module>(name: string, module: M): M {
    this.#checkName(name);
    if (!(module instanceof Module)) throw new TesseraError(`registerModule("${name}") needs a Module.`);
    this.#children.set(name, module);
    return module;
  }

  /**
   * Adds a child module from outside (PyTorch's add_module): an adapter attaches its own
   * parameters to the layer it adapts, so they appear in namedParameters() and stateDict().
   */
  addModule<M extends Module>(name: string, module: M): M {
    return this.registerModule(name, module);
  }

  /** Detaches a child added with addModule (not disposed: the caller owns it); false when absent. */
  removeModule(name: string): boolean {
    return this.#children.delete(name);
  }

  #checkName(name: string): void {
    if (!/^[A-Za-z0-9_]+$/.test(name)) {
      throw new TesseraError(`Module member name "${name}" must be letters, digits or "_" (dots separate levels).`);
    }
    if (this.#parameters.has(name) || this.#children.has(name)) {
      throw new TesseraError(`${this.constructor.name} already has a member named "${name}".`);
    }
  }

  /** Every parameter with its dotted path, depth first in registration order. */
  namedParameters(options: { trainableOnly?: boolean } = {}): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [name, p] of this.#parameters) {
      if (!options.trainableOnly || p.trainable) out.push([name, p]);
    }
    for (const [childName, child] of this.#children) {
      for (const [name, p] of child.namedParameters(options)) out.push([`${childName}.${name}`, p]);
    }
    return out;
  }

  parameters(options: { trainableOnly?: boolean } = {}): Parameter[] {
    return this.namedParameters(options).map(([, p]) => p);
  }

  /** Direct children. */
  children(): [string, Module][] {
    return [...this.#children];
  }

  /** This module and every descendant, with dotted paths ("" for this one). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.#children) out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
  }

  /** Number of scalar values in the parameters. */
  parameterCount(options: { trainableOnly?: boolean } = {}): number {
    return this.parameters(options).reduce((n, p) => n + p.variable.size, 0);
  }

  get training(): boolean {
    return this.#training;
  }

  /** Train mode (dropout active) for this module and every descendant. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.#training = mode;
    return this;
  }

  /** Eval mode (dropout off). */
  eval(): this {
    return this.train(false);
  }

  /** name -> tensor for every parameter; the tensors are the live variables, not copies. */
  stateDict(): Record<string, tf.Tensor> {
    return Object.fromEntries(this.namedParameters().map(([name, p]) => [name, p.variable as tf.Tensor]));
  }

  /**
   * Copies values from `state` into the parameters. Checks every name, shape and dtype
   * first and reports all problems at once; nothing is assigned unless all fit.
   * With `strict: false`, missing and unexpected names are returned, not thrown.
   */
  loadStateDict(state: Record<string, tf.Tensor>, options: { strict?: boolean } = {}): StateDictProblems {
    const strict = options.strict ?? true;
    const own = new Map(this.namedParameters());
    const problems: StateDictProblems = { missing: [], unexpected: [], mismatched: [] };
    for (const name of own.keys()) if (!(name in state)) problems.missing.push(name);
    for (const [name, value] of Object.entries(state)) {
      const p = own.get(name);
      if (!p) {
        problems.unexpected.push(name);
        continue;
      }
      if (!(value instanceof tf.Tensor)) {
        problems.mismatched.push(`${name}: expected a Tensor, got ${typeof value}`);
      } else if (value.shape.join(',') !== p.shape.join(',') || value.dtype !== p.dtype) {
        problems.mismatched.push(
          `${name}: expected [${p.shape.join(', ')}] ${p.dtype}, got [${value.shape.join(', ')}] ${value.dtype}`,
        );
      }
    }
    const fatal = problems.mismatched.length > 0 || (strict && (problems.missing.length || problems.unexpected.length));
    if (fatal) throw new StateDictError(this.constructor.name, problems);
    for (const [name, value] of Object.entries(state)) own.get(name)?.assign(value);
    return problems;
  }

  /** Frees every parameter's memory. */
  dispose(): void {
    for (const p of this.parameters()) p.dispose();
  }
}

/** An indexed list of modules; children are named "0", "1", ... as in PyTorch. */
export class ModuleList<M extends Module = Module> extends Module {
  readonly items: M[] = [];

  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.push(m);
  }

  push(module: M): void {
    this.registerModule(String(this.items.length), module);
    this.items.push(module);
  }

  get length(): number {
    return this.items.length;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}
