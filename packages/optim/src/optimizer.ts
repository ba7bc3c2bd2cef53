import {
  Module,
  Parameter,
  PluginOptionsError,
  TesseraError,
  formatIssues,
  isPlainObject,
  tf,
  z,
} from '@tessera/tensor-core';
import {
  type Grads,
  type LossScaler,
  NonFiniteGradientError,
  allFinite,
  finiteProbe,
  clipGradNormInScope,
  finiteAndNormInScope,
  finiteProbeAndNorm,
  clipGradValue,
  gradEntries,
  globalNorm,
  nonFiniteNames,
  scoped,
} from './gradients.js';
import { type Schedule, type ScheduleSpec, createSchedule } from './schedules.js';

/** What an optimizer updates: a Module's trainable parameters, or named Parameters / Variables. */
export type ParamSource =
  | Module
  | Iterable<readonly [string, Parameter | tf.Variable]>
  | Record<string, Parameter | tf.Variable>;

/** Options every parameter group carries; each optimizer adds its own. `lr: null` only for Adafactor's relative step. */
export interface GroupOptions {
  lr: number | null;
  weightDecay: number;
}

export interface ParamGroup<G extends GroupOptions = GroupOptions> {
  /** Resolved options; assign to change them between steps (checked at the next step). */
  options: G;
  /** Parameter names in this group. */
  readonly params: readonly string[];
  /** The rule that formed it (undefined for group 0, the defaults). */
  readonly patterns?: readonly string[];
}

export type NonFinitePolicy = 'error' | 'skip';

/** Options outside the groups: gradient handling and the schedule. */
export interface CommonOptions {
  /** Clip gradients to this global L2 norm before the update (HF max_grad_norm). */
  clipGradNorm?: number;
  /** Clamp each gradient element to ±this before norm clipping. */
  clipGradValue?: number;
  /** What a NaN/Inf gradient does: throw (default) or skip the update and count it. */
  nonFinite?: NonFinitePolicy;
  /** A schedule spec `{ name, ...options }` multiplying every group's lr. */
  schedule?: ScheduleSpec;
}

/** A group rule in options: `params` are globs (`*` matches anything, dots included) or `/regex/`. */
export type GroupRule<G> = { params: string | string[] } & Partial<G>;

export type OptimizerOptions<G extends GroupOptions> = Partial<G> & CommonOptions & { groups?: GroupRule<G>[] };

export interface StepResult {
  /** False when the update was skipped for a non-finite gradient. */
  applied: boolean;
  /** Global gradient norm before clipping, when norm clipping is on. */
  gradNorm?: number;
  /** The lr each group used (null where Adafactor computes it per parameter). */
  lrs: (number | null)[];
}

/** Serialisable optimizer state: tensors are copies the caller owns (see disposeStateDict). */
export interface OptimizerStateDict {
  format: 'tessera.optim/1';
  optimizer: string;
  /** Updates applied (the schedule's step). */
  step: number;
  skippedSteps: number;
  groups: { params: string[]; options: Record<string, unknown> }[];
  state: Record<string, { step: number; tensors: Record<string, tf.Tensor> }>;
  /** Gradient handling outside the groups, so a resumed run clips exactly as before. */
  gradients: { clipGradNorm: number | null; clipGradValue: number | null; nonFinite: NonFinitePolicy };
  schedule?: ScheduleSpec;
  lossScaler?: Record<string, number>;
}

export class OptimizerStateError extends TesseraError {}

export interface UpdateContext<G> {
  /** The scheduled lr for this group (null: the optimizer derives its own). */
  lr: number | null;
  /** 1-based count of updates to this parameter, including this one. */
  step: number;
  options: G;
  name: string;
}

interface ParamState {
  step: number;
  tensors: Record<string, tf.Tensor>;
}

/** Frees the tensors of a state dict returned by `stateDict()`. */
export function disposeStateDict(state: OptimizerStateDict): void {
  for (const s of Object.values(state.state)) for (const t of Object.values(s.tensors)) t.dispose();
}

/** A state dict with tensors as `{ shape, data }`: plain JSON for checkpoints (float32 values survive exactly). */
export type OptimizerStateJSON = Omit<OptimizerStateDict, 'state'> & {
  state: Record<string, { step: number; tensors: Record<string, { shape: number[]; data: number[] }> }>;
};

export function stateDictToJSON(sd: OptimizerStateDict): OptimizerStateJSON {
  const state: OptimizerStateJSON['state'] = {};
  for (const [name, s] of Object.entries(sd.state)) {
    const tensors = Object.entries(s.tensors).map(([k, t]) => [
      k,
      { shape: [...t.shape], data: Array.from(t.dataSync()) },
    ]);
    state[name] = { step: s.step, tensors: Object.fromEntries(tensors) };
  }
  return structuredClone({ ...sd, state });
}

/** The inverse of stateDictToJSON; the caller owns the tensors (disposeStateDict). */
export function stateDictFromJSON(json: OptimizerStateJSON): OptimizerStateDict {
  if (!isPlainObject(json) || !isPlainObject(json.state)) {
    throw new OptimizerStateError('stateDictFromJSON needs the object stateDictToJSON returned.');
  }
  const state: OptimizerStateDict['state'] = {};
  for (const [name, s] of Object.entries(json.state)) {
    const tensors: Record<string, tf.Tensor> = {};
    for (const [k, t] of Object.entries(s.tensors ?? {})) {
      const size = t?.shape?.reduce((a, b) => a * b, 1);
      if (!Array.isArray(t?.data) || t.data.length !== size) {
        throw new OptimizerStateError(
          `stateDictFromJSON: "${name}".${k} has ${t?.data?.length} values for shape ${fmt(t?.shape ?? [])}.`,
        );
      }
      tensors[k] = tf.tensor(t.data, t.shape, 'float32');
    }
    state[name] = { step: s.step, tensors };
  }
  return { ...structuredClone({ ...json, state: {} }), state };
}

/** Validates options against a zod schema with the registry's error format, for direct construction. */
export function parseOptions<T>(kind: string, schema: z.ZodType<T>, options: unknown): T {
  const result = schema.safeParse(options ?? {});
  if (!result.success) {
    throw new PluginOptionsError(
      `Invalid options for optimizer "${kind}":\n${formatIssues(result.error.issues, options ?? {})}`,
    );
  }
  return result.data;
}

/** A learning rate: finite and >= 0 (NaN and Infinity are named in the error). */
export const lrSchema = z.custom<number>((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0, {
  message: 'a learning rate: a finite number >= 0',
});

/** Shape of the options every optimizer schema accepts besides its group options. */
export const commonShape = {
  clipGradNorm: z.number().positive().optional(),
  clipGradValue: z.number().positive().optional(),
  nonFinite: z.enum(['error', 'skip']).optional(),
  schedule: z
    .object({ name: z.string().min(1) })
    .catchall(z.unknown())
    .optional(),
};

/** Builds `{ ...groupShape (optional), ...commonShape, groups: [{ params, ...groupShape }] }`. */
export function optimizerSchema(groupShape: Record<string, z.ZodType>) {
  const optionalGroup = Object.fromEntries(Object.entries(groupShape).map(([k, s]) => [k, s.optional()]));
  const params = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);
  return z.strictObject({
    ...optionalGroup,
    ...commonShape,
    groups: z.array(z.strictObject({ params, ...optionalGroup })).optional(),
  });
}

function patternToRegex(pattern: string): RegExp {
  if (pattern.length > 2 && pattern.startsWith('/') && pattern.endsWith('/')) return new RegExp(pattern.slice(1, -1));
  const body = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${body}$`);
}

function namedVariables(source: ParamSource): [string, tf.Variable][] {
  let entries: Iterable<readonly [string, Parameter | tf.Variable]>;
  if (source instanceof Module) entries = source.namedParameters({ trainableOnly: true });
  else if (isPlainObject(source) && !(Symbol.iterator in source)) entries = Object.entries(source);
  else entries = source as Iterable<readonly [string, Parameter | tf.Variable]>;
  const out: [string, tf.Variable][] = [];
  for (const [name, value] of entries) {
    if (value instanceof Parameter) out.push([name, value.variable]);
    else if (value instanceof tf.Variable) out.push([name, value]);
    else
      throw new TesseraError(`Optimizer parameter "${name}" must be a Parameter or tf.Variable; got ${typeof value}.`);
  }
  return out;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/**
 * The shared machinery: parameter groups, lazily created per-parameter state, the step
 * pipeline (unscale → non-finite check → clip → update) and state dicts. Subclasses
 * define the state each parameter needs and the update rule.
 */
export abstract class Optimizer<G extends GroupOptions = GroupOptions> {
  readonly groups: ParamGroup<G>[] = [];
  schedule: Schedule | undefined;
  /** Set to plug in loss scaling (mixed precision): gradients are divided by its scale. */
  lossScaler: LossScaler | undefined;
  clipGradNorm: number | undefined;
  clipGradValue: number | undefined;
  nonFinite: NonFinitePolicy;
  #stepCount = 0;
  #skipped = 0;
  readonly #variables = new Map<string, tf.Variable>();
  /** Names of parameters that share a variable with an earlier name (tied weights): their grads are ignored. */
  readonly #aliases = new Set<string>();
  readonly #groupOf = new Map<string, number>();
  readonly #state = new Map<string, ParamState>();

  /**
   * @param kind the registry name, recorded in state dicts
   * @param defaults every group option with its default
   */
  protected constructor(
    readonly kind: string,
    params: ParamSource,
    options: OptimizerOptions<G>,
    defaults: G,
  ) {
    const seen = new Map<tf.Variable, string>();
    for (const [name, variable] of namedVariables(params)) {
      if (this.#variables.has(name) || this.#aliases.has(name)) {
        throw new TesseraError(`Optimizer "${kind}": parameter name "${name}" appears twice.`);
      }
      if (seen.has(variable)) {
        this.#aliases.add(name);
        continue;
      }
      seen.set(variable, name);
      this.#variables.set(name, variable);
    }
    if (this.#variables.size === 0) throw new TesseraError(`Optimizer "${kind}" got no trainable parameters.`);

    const groupKeys = Object.keys(defaults) as (keyof G)[];
    const pick = (o: Record<string, unknown>) =>
      Object.fromEntries(groupKeys.filter((k) => o[k as string] !== undefined).map((k) => [k, o[k as string]]));
    const base = { ...defaults, ...pick(options as Record<string, unknown>) } as G;
    const rules = (options.groups ?? []).map((rule, i) => {
      const patterns = Array.isArray(rule.params) ? rule.params : [rule.params];
      return {
        index: i + 1,
        patterns,
        regexes: patterns.map(patternToRegex),
        options: { ...base, ...pick(rule) } as G,
      };
    });
    const members: string[][] = [[], ...rules.map(() => [])];
    for (const name of this.#variables.keys()) {
      const rule = rules.find((r) => r.regexes.some((re) => re.test(name)));
      const index = rule ? rule.index : 0;
      members[index]!.push(name);
      this.#groupOf.set(name, index);
    }
    for (const r of rules) {
      if (members[r.index]!.length === 0) {
        throw new TesseraError(
          `Optimizer "${kind}": groups[${r.index - 1}].params ${JSON.stringify(r.patterns)} matched no parameter ` +
            `(not already taken by an earlier group). Parameters: ${[...this.#variables.keys()].slice(0, 12).join(', ')}` +
            `${this.#variables.size > 12 ? ', ...' : ''}.`,
        );
      }
    }
    this.groups.push({ options: base, params: members[0]! });
    for (const r of rules) this.groups.push({ options: r.options, params: members[r.index]!, patterns: r.patterns });

    this.clipGradNorm = options.clipGradNorm;
    this.clipGradValue = options.clipGradValue;
    this.nonFinite = options.nonFinite ?? 'error';
    this.schedule = options.schedule ? createSchedule(options.schedule) : undefined;
    for (const [i, g] of this.groups.entries()) this.checkGroupOptions(g.options, i);
  }

  /** State tensor shapes for one parameter (zeros at its first update); also checks loaded state. */
  protected abstract stateShapes(shape: readonly number[], options: G): Record<string, number[]>;

  /** The update rule for one parameter; runs inside tidy. Returns the new value and the new state tensors. */
  protected abstract update(
    param: tf.Tensor,
    grad: tf.Tensor,
    state: Record<string, tf.Tensor>,
    context: UpdateContext<G>,
  ): { param: tf.Tensor; state: Record<string, tf.Tensor> };

  /** Throws on options the update cannot use; subclasses extend it. */
  protected checkGroupOptions(options: G, index: number): void {
    const where = `Optimizer "${this.kind}" group ${index}${index === 0 ? ' (defaults)' : ''}`;
    if (options.lr !== null && !(typeof options.lr === 'number' && Number.isFinite(options.lr) && options.lr >= 0)) {
      throw new TesseraError(`${where}: lr must be a finite number >= 0; got ${String(options.lr)}.`);
    }
    if (!(Number.isFinite(options.weightDecay) && options.weightDecay >= 0)) {
      throw new TesseraError(`${where}: weightDecay must be a finite number >= 0; got ${String(options.weightDecay)}.`);
    }
  }

  /** Updates applied so far (skipped ones excluded); the schedule's step. */
  get stepCount(): number {
    return this.#stepCount;
  }

  /** Updates skipped for non-finite gradients. */
  get skippedSteps(): number {
    return this.#skipped;
  }

  /** Names of the parameters this optimizer updates. */
  get paramNames(): string[] {
    return [...this.#variables.keys()];
  }

  /** The lr each group will use at the next update (base lr × schedule factor). */
  currentLrs(): (number | null)[] {
    const factor = this.schedule ? this.schedule.factor(this.#stepCount) : 1;
    return this.groups.map((g) => (g.options.lr === null ? null : g.options.lr * factor));
  }

  /** Sets the base lr of every group (or of one). */
  setLr(lr: number, group?: number): void {
    const targets = group === undefined ? this.groups : [this.groups[group]];
    if (targets.some((g) => g === undefined)) {
      throw new TesseraError(`Optimizer "${this.kind}" has ${this.groups.length} groups; there is no group ${group}.`);
    }
    for (const [i, g] of targets.entries()) this.checkGroupOptions({ ...g!.options, lr }, group ?? i);
    for (const g of targets) g!.options = { ...g!.options, lr };
  }

  /** Applies one update from `grads` (name → gradient; not disposed). Parameters without a gradient are left alone. */
  step(grads: Grads): StepResult {
    return this.#step(grads);
  }

  /**
   * The same update as step(), for backends that cannot read synchronously (WebGPU in
   * Node): the two values the update depends on — are all gradients finite, and the
   * global norm for clipping — are read asynchronously first. Results are identical.
   */
  async stepAsync(grads: Grads): Promise<StepResult> {
    const entries = gradEntries(grads).filter(([name]) => !this.#aliases.has(name));
    const scaler = this.lossScaler;
    const probe = tf.tidy(() => {
      let work = new Map(entries);
      if (scaler) work = new Map([...work].map(([n, g]) => [n, tf.mul(g, 1 / scaler.scale)] as const));
      if (this.clipGradValue === undefined) {
        const { probe, norm } = finiteProbeAndNorm(work);
        return { finite: probe, norm };
      }
      const finite = finiteProbe([...work.values()]);
      work = clipGradValue(work, this.clipGradValue);
      return { finite, norm: globalNorm(work) };
    });
    const [finite, norm] = await Promise.all([probe.finite.data(), probe.norm.data()]);
    tf.dispose([probe.finite, probe.norm]);
    return this.#step(grads, { finite: finite[0] === 0, norm: norm[0]! });
  }

  #step(grads: Grads, known?: { finite: boolean; norm: number }): StepResult {
    const entries = gradEntries(grads).filter(([name]) => !this.#aliases.has(name));
    const unknown = entries.filter(([name]) => !this.#variables.has(name)).map(([n]) => n);
    if (unknown.length) {
      throw new TesseraError(
        `Optimizer "${this.kind}" got gradients for unknown parameter(s): ${unknown.join(', ')}. ` +
          `It updates: ${this.paramNames.slice(0, 12).join(', ')}${this.#variables.size > 12 ? ', ...' : ''}.`,
      );
    }
    for (const [name, g] of entries) {
      const v = this.#variables.get(name)!;
      if (!sameShape(g.shape, v.shape)) {
        throw new TesseraError(
          `Optimizer "${this.kind}": gradient for "${name}" has shape ${fmt(g.shape)}, parameter has ${fmt(v.shape)}.`,
        );
      }
    }
    for (const [i, g] of this.groups.entries()) this.checkGroupOptions(g.options, i);
    const lrs = this.currentLrs();
    for (const [i, lr] of lrs.entries()) {
      if (lr !== null && !(Number.isFinite(lr) && lr >= 0)) {
        throw new TesseraError(
          `Optimizer "${this.kind}" group ${i}: the schedule gave lr ${lr} at step ${this.#stepCount}.`,
        );
      }
    }

    return scoped(() => {
      let work = new Map(entries);
      const scaler = this.lossScaler;
      if (scaler) {
        const inv = 1 / scaler.scale;
        work = new Map([...work].map(([n, g]) => [n, tf.mul(g, inv)] as const));
      }
      // With norm clipping (and no value clipping in between), one sumSquares pass per
      // gradient answers both questions: is everything finite, and the global norm.
      const shared =
        !known && this.clipGradNorm !== undefined && this.clipGradValue === undefined
          ? finiteAndNormInScope(work)
          : undefined;
      if (!(known ? known.finite : shared ? shared.finite : allFinite(work))) {
        if (scaler || this.nonFinite === 'skip') {
          scaler?.update(true);
          this.#skipped++;
          return { applied: false, lrs };
        }
        throw new NonFiniteGradientError(nonFiniteNames(work));
      }
      if (this.clipGradValue !== undefined) work = clipGradValue(work, this.clipGradValue);
      let gradNorm: number | undefined;
      if (this.clipGradNorm !== undefined) {
        const clipped = clipGradNormInScope(work, this.clipGradNorm, known?.norm ?? shared?.normValue, shared?.norm);
        work = clipped.grads;
        gradNorm = clipped.norm;
      }
      for (const [name, grad] of work) {
        const index = this.#groupOf.get(name)!;
        const options = this.groups[index]!.options;
        const variable = this.#variables.get(name)!;
        const prior = this.#state.get(name) ?? { step: 0, tensors: this.#zeros(variable.shape, options) };
        const context = { lr: lrs[index]!, step: prior.step + 1, options, name };
        const out = this.update(variable, grad, prior.tensors, context);
        variable.assign(out.param);
        for (const t of Object.values(prior.tensors)) if (!Object.values(out.state).includes(t)) t.dispose();
        for (const t of Object.values(out.state)) tf.keep(t);
        this.#state.set(name, { step: context.step, tensors: out.state });
      }
      this.#stepCount++;
      scaler?.update(false);
      return gradNorm === undefined ? { applied: true, lrs } : { applied: true, gradNorm, lrs };
    });
  }

  #zeros(shape: readonly number[], options: G): Record<string, tf.Tensor> {
    const shapes = this.stateShapes(shape, options);
    return Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, tf.keep(tf.zeros(s))]));
  }

  /** A copy of everything needed to continue exactly: per-parameter state, group options, step counts, schedule. */
  stateDict(): OptimizerStateDict {
    const state: OptimizerStateDict['state'] = {};
    for (const [name, s] of this.#state) {
      state[name] = {
        step: s.step,
        tensors: Object.fromEntries(Object.entries(s.tensors).map(([k, t]) => [k, t.clone()])),
      };
    }
    const out: OptimizerStateDict = {
      format: 'tessera.optim/1',
      optimizer: this.kind,
      step: this.#stepCount,
      skippedSteps: this.#skipped,
      groups: this.groups.map((g) => ({
        params: [...g.params],
        options: structuredClone(g.options) as Record<string, unknown>,
      })),
      gradients: {
        clipGradNorm: this.clipGradNorm ?? null,
        clipGradValue: this.clipGradValue ?? null,
        nonFinite: this.nonFinite,
      },
      state,
    };
    if (this.schedule) out.schedule = this.schedule.toJSON();
    if (this.lossScaler) out.lossScaler = this.lossScaler.stateDict();
    return out;
  }

  /**
   * Restores a state dict from `stateDict()` (tensors are copied; the caller keeps
   * ownership of its own). Checks everything first and reports every problem at once;
   * nothing changes unless all of it fits.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const fail = (problems: string[]) => {
      throw new OptimizerStateError(
        `State dict does not fit optimizer "${this.kind}":\n${problems.map((p) => `  - ${p}`).join('\n')}`,
      );
    };
    if (!isPlainObject(sd) || sd.format !== 'tessera.optim/1') {
      fail([
        `expected an object from Optimizer.stateDict() with format "tessera.optim/1"; got ${isPlainObject(sd) ? `format ${JSON.stringify(sd.format)}` : typeof sd}`,
      ]);
    }
    if (sd.optimizer !== this.kind) {
      fail([`it was saved from optimizer "${sd.optimizer}", not "${this.kind}"`]);
    }
    const problems: string[] = [];
    if (!Array.isArray(sd.groups) || sd.groups.length !== this.groups.length) {
      fail([
        `it has ${Array.isArray(sd.groups) ? sd.groups.length : 'no'} parameter groups; this optimizer has ${this.groups.length}`,
      ]);
    }
    const loadedOptions: G[] = [];
    for (const [i, g] of this.groups.entries()) {
      const saved = sd.groups[i]!;
      const have = new Set(g.params);
      const got = new Set(saved.params);
      const missing = g.params.filter((n) => !got.has(n));
      const unexpected = saved.params.filter((n) => !have.has(n));
      if (missing.length) problems.push(`group ${i}: missing parameter(s) ${missing.join(', ')}`);
      if (unexpected.length) problems.push(`group ${i}: unexpected parameter(s) ${unexpected.join(', ')}`);
      const ownKeys = Object.keys(g.options).sort().join(',');
      const savedKeys = Object.keys(saved.options ?? {})
        .sort()
        .join(',');
      if (ownKeys !== savedKeys) problems.push(`group ${i}: options {${savedKeys}} differ from {${ownKeys}}`);
      const opts = { ...g.options, ...saved.options } as G;
      try {
        this.checkGroupOptions(opts, i);
      } catch (err) {
        problems.push((err as Error).message);
      }
      loadedOptions.push(opts);
    }
    for (const [name, s] of Object.entries(sd.state ?? {})) {
      const variable = this.#variables.get(name);
      if (!variable) {
        problems.push(`state for unknown parameter "${name}"`);
        continue;
      }
      if (!Number.isInteger(s.step) || s.step < 0)
        problems.push(`"${name}": step must be an integer >= 0; got ${s.step}`);
      const expected = this.stateShapes(
        variable.shape,
        loadedOptions[this.#groupOf.get(name)!] ?? this.groups[0]!.options,
      );
      const want = Object.keys(expected).sort().join(',');
      const got = Object.keys(s.tensors ?? {})
        .sort()
        .join(',');
      if (want !== got) {
        problems.push(`"${name}": state tensors {${got}}, expected {${want}}`);
        continue;
      }
      for (const [k, shape] of Object.entries(expected)) {
        const t = s.tensors[k];
        if (!(t instanceof tf.Tensor)) problems.push(`"${name}".${k}: expected a Tensor, got ${typeof t}`);
        else if (t.isDisposed) problems.push(`"${name}".${k}: the tensor was disposed`);
        else if (!sameShape(t.shape, shape) || t.dtype !== 'float32') {
          problems.push(`"${name}".${k}: expected ${fmt(shape)} float32, got ${fmt(t.shape)} ${t.dtype}`);
        }
      }
    }
    if (!Number.isInteger(sd.step) || sd.step < 0) problems.push(`step must be an integer >= 0; got ${sd.step}`);
    let schedule: Schedule | undefined = this.schedule;
    if (sd.schedule) {
      try {
        schedule = createSchedule(sd.schedule);
      } catch (err) {
        problems.push(`schedule: ${(err as Error).message}`);
      }
    }
    const gradients = sd.gradients ?? { clipGradNorm: null, clipGradValue: null, nonFinite: 'error' };
    for (const key of ['clipGradNorm', 'clipGradValue'] as const) {
      const v = gradients[key];
      if (v !== null && !(typeof v === 'number' && v > 0 && Number.isFinite(v))) {
        problems.push(`gradients.${key} must be null or a finite number > 0; got ${String(v)}`);
      }
    }
    if (gradients.nonFinite !== 'error' && gradients.nonFinite !== 'skip') {
      problems.push(`gradients.nonFinite must be "error" or "skip"; got ${String(gradients.nonFinite)}`);
    }
    if (sd.lossScaler && !this.lossScaler)
      problems.push('it holds loss-scaler state but this optimizer has no lossScaler');
    if (problems.length) fail(problems);

    if (sd.lossScaler) this.lossScaler!.loadStateDict(sd.lossScaler);
    for (const s of this.#state.values()) for (const t of Object.values(s.tensors)) t.dispose();
    this.#state.clear();
    for (const [name, s] of Object.entries(sd.state)) {
      this.#state.set(name, {
        step: s.step,
        tensors: Object.fromEntries(Object.entries(s.tensors).map(([k, t]) => [k, t.clone()])),
      });
    }
    loadedOptions.forEach((o, i) => {
      this.groups[i]!.options = o;
    });
    this.#stepCount = sd.step;
    this.#skipped = sd.skippedSteps ?? 0;
    this.schedule = schedule;
    this.clipGradNorm = gradients.clipGradNorm ?? undefined;
    this.clipGradValue = gradients.clipGradValue ?? undefined;
    this.nonFinite = gradients.nonFinite;
  }

  /** Live state tensors of one parameter (read-only view; for inspection and tests). */
  paramState(name: string): { step: number; tensors: Readonly<Record<string, tf.Tensor>> } | undefined {
    return this.#state.get(name);
  }

  /** Frees the optimizer's state tensors (not the parameters). */
  dispose(): void {
    for (const s of this.#state.values()) for (const t of Object.values(s.tensors)) t.dispose();
    this.#state.clear();
  }
}
