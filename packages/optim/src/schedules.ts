import { TesseraError, isPlainObject, registry, z } from '@tessera/tensor-core';

/**
 * A learning-rate schedule: a pure function of the update index, as a factor of each
 * parameter group's base lr (HF's LambdaLR convention). `step` is the number of updates
 * already applied, so the first update uses `factor(0)` — which is why linear warm-up
 * starts at lr 0, exactly as `get_linear_schedule_with_warmup`.
 *
 * Schedules hold no state of their own: the optimizer's step count is the state, so a
 * resumed run needs only the spec (`toJSON()`) and the step.
 */
export interface Schedule {
  readonly name: string;
  factor(step: number): number;
  /** `{ name, ...options }`: `createSchedule(schedule.toJSON())` rebuilds it. */
  toJSON(): ScheduleSpec;
}

export type ScheduleSpec = { name: string } & Record<string, unknown>;

export class ScheduleError extends TesseraError {}

const count = z.number().int().min(0);
const ratio = z.number().min(0).max(1);

function checkStep(name: string, step: number): void {
  if (!Number.isInteger(step) || step < 0) {
    throw new ScheduleError(`Schedule "${name}": step must be an integer >= 0 (updates already applied); got ${step}.`);
  }
}

function make(name: string, options: Record<string, unknown>, factor: (step: number) => number): Schedule {
  const spec = { name, ...options };
  return {
    name,
    factor(step: number) {
      checkStep(name, step);
      return factor(step);
    },
    toJSON: () => structuredClone(spec),
  };
}

function warmup(step: number, warmupSteps: number): number {
  return step / Math.max(1, warmupSteps);
}

const constantOptions = z.strictObject({ warmupSteps: count.optional() });
export function constantSchedule(options: z.input<typeof constantOptions> = {}): Schedule {
  const w = options.warmupSteps ?? 0;
  return make('constant', options, (s) => (s < w ? warmup(s, w) : 1));
}

const linearOptions = z
  .strictObject({ warmupSteps: count.optional(), totalSteps: count, minRatio: ratio.optional() })
  .refine((o) => (o.warmupSteps ?? 0) <= o.totalSteps, { message: 'warmupSteps <= totalSteps', path: ['warmupSteps'] });
/** Linear warm-up to the base lr, then linear decay to `minRatio` (default 0) at `totalSteps`. */
export function linearSchedule(options: z.input<typeof linearOptions>): Schedule {
  const w = options.warmupSteps ?? 0;
  const total = options.totalSteps;
  const floor = options.minRatio ?? 0;
  return make('linear', options, (s) => {
    if (s < w) return warmup(s, w);
    const decay = Math.max(0, (total - s) / Math.max(1, total - w));
    return floor + (1 - floor) * decay;
  });
}

const cosineOptions = z
  .strictObject({
    warmupSteps: count.optional(),
    totalSteps: count,
    minRatio: ratio.optional(),
    cycles: z.number().positive().optional(),
  })
  .refine((o) => (o.warmupSteps ?? 0) <= o.totalSteps, { message: 'warmupSteps <= totalSteps', path: ['warmupSteps'] });
/** Linear warm-up, then a half cosine (`cycles` 0.5) from the base lr down to the floor `minRatio`. */
export function cosineSchedule(options: z.input<typeof cosineOptions>): Schedule {
  const w = options.warmupSteps ?? 0;
  const total = options.totalSteps;
  const floor = options.minRatio ?? 0;
  const cycles = options.cycles ?? 0.5;
  return make('cosine', options, (s) => {
    if (s < w) return warmup(s, w);
    // Past totalSteps the floor holds rather than the cosine climbing back up.
    const progress = Math.min(1, (s - w) / Math.max(1, total - w));
    const cosine = Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress)));
    return floor + (1 - floor) * cosine;
  });
}

const inverseSqrtOptions = z.strictObject({
  warmupSteps: z.number().int().min(1),
  timescale: z.number().positive().optional(),
  warmup: z.enum(['linear', 'constant']).optional(),
});
/**
 * Inverse square root decay after `warmupSteps`: sqrt(timescale / (step + timescale − warmup)),
 * which is 1 at the end of warm-up (HF get_inverse_sqrt_schedule). T5's
 * `1/sqrt(max(step, 10⁴))` is `{ warmupSteps: 10000, warmup: 'constant' }` with base lr 0.01.
 */
export function inverseSqrtSchedule(options: z.input<typeof inverseSqrtOptions>): Schedule {
  const w = options.warmupSteps;
  const timescale = options.timescale ?? w;
  const shift = timescale - w;
  const flat = options.warmup === 'constant';
  return make('inverse_sqrt', options, (s) => {
    if (s < w) return flat ? 1 : warmup(s, w);
    return 1 / Math.sqrt((s + shift) / timescale);
  });
}

const stepOptions = z.strictObject({ stepSize: z.number().int().min(1), gamma: z.number().positive().optional() });
/** Multiplies the lr by `gamma` (default 0.1) every `stepSize` updates (torch StepLR). */
export function stepSchedule(options: z.input<typeof stepOptions>): Schedule {
  const gamma = options.gamma ?? 0.1;
  return make('step', options, (s) => gamma ** Math.floor(s / options.stepSize));
}

const specSchema = z.object({ name: z.string().min(1) }).catchall(z.unknown());

const sequentialOptions = z
  .strictObject({ schedules: z.array(specSchema).min(1), milestones: z.array(count) })
  .refine((o) => o.milestones.length === o.schedules.length - 1, {
    message: 'one milestone fewer than schedules',
    path: ['milestones'],
  })
  .refine((o) => o.milestones.every((m, i) => i === 0 || m > o.milestones[i - 1]!), {
    message: 'strictly increasing milestones',
    path: ['milestones'],
  });
/**
 * Runs `schedules[i]` from `milestones[i-1]` on, each restarted at its own step 0
 * (torch SequentialLR): e.g. a constant warm-up, then a cosine.
 */
export function sequentialSchedule(options: z.input<typeof sequentialOptions>): Schedule {
  const parts = options.schedules.map((s) => createSchedule(s));
  return make('sequential', options, (s) => {
    let i = 0;
    while (i < options.milestones.length && s >= options.milestones[i]!) i++;
    const start = i === 0 ? 0 : options.milestones[i - 1]!;
    return parts[i]!.factor(s - start);
  });
}

const productOptions = z.strictObject({ schedules: z.array(specSchema).min(1) });
/** The product of several schedules' factors: e.g. a warm-up times a step decay. */
export function productSchedule(options: z.input<typeof productOptions>): Schedule {
  const parts = options.schedules.map((s) => createSchedule(s));
  return make('product', options, (s) => parts.reduce((f, p) => f * p.factor(s), 1));
}

/** Builds a schedule from `{ name, ...options }` through the registry (errors name the known schedules). */
export function createSchedule(spec: ScheduleSpec | Schedule): Schedule {
  if (isSchedule(spec)) return spec;
  if (!isPlainObject(spec) || typeof spec.name !== 'string') {
    throw new ScheduleError(`A schedule spec is { name, ...options }; got ${JSON.stringify(spec)}.`);
  }
  const { name, ...options } = spec;
  return registry.schedule.create(name, options) as Schedule;
}

export function isSchedule(value: unknown): value is Schedule {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Schedule).factor === 'function' &&
    typeof (value as Schedule).toJSON === 'function'
  );
}

export function registerSchedules(): void {
  const pkg = '@tessera/optim';
  const entries: [string, (o: never) => Schedule, z.ZodType, string][] = [
    ['constant', constantSchedule, constantOptions, 'Constant lr, optionally after a linear warm-up.'],
    ['linear', linearSchedule, linearOptions, 'Linear warm-up then linear decay (get_linear_schedule_with_warmup).'],
    ['cosine', cosineSchedule, cosineOptions, 'Linear warm-up then cosine decay to a floor.'],
    ['inverse_sqrt', inverseSqrtSchedule, inverseSqrtOptions, 'Warm-up then inverse square root decay (T5).'],
    ['step', stepSchedule, stepOptions, 'Multiply by gamma every stepSize updates (StepLR).'],
    ['sequential', sequentialSchedule, sequentialOptions, 'Schedules one after another at milestones.'],
    ['product', productSchedule, productOptions, 'The product of several schedules.'],
  ];
  // A run fills in totalSteps (its own length) for the schedules that need one.
  const usesTotalSteps = new Set(['linear', 'cosine']);
  for (const [name, factory, options, description] of entries) {
    if (!registry.schedule.has(name))
      registry.schedule.register(name, factory, {
        description,
        package: pkg,
        options,
        usesTotalSteps: usesTotalSteps.has(name),
      });
  }
}
