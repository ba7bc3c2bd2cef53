import { TesseraError, adamwUpdate, registry, tf, z } from '@tessera/tensor-core';
import {
  type GroupOptions,
  Optimizer,
  type OptimizerOptions,
  type ParamSource,
  type UpdateContext,
  lrSchema,
  optimizerSchema,
  parseOptions,
} from './optimizer.js';

type Update = { param: tf.Tensor; state: Record<string, tf.Tensor> };
const nonNegative = z.number().min(0);
const beta = z.number().min(0).lt(1);

// ---------------------------------------------------------------------------- SGD

export interface SGDGroupOptions extends GroupOptions {
  lr: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
}

export const sgdOptions = optimizerSchema({
  lr: lrSchema,
  weightDecay: nonNegative,
  momentum: nonNegative,
  dampening: nonNegative,
  nesterov: z.boolean(),
});

/** torch.optim.SGD: L2 weight decay added to the gradient, optional (Nesterov) momentum. */
export class SGD extends Optimizer<SGDGroupOptions> {
  constructor(params: ParamSource, options: OptimizerOptions<SGDGroupOptions> = {}) {
    const parsed = parseOptions('sgd', sgdOptions, options) as OptimizerOptions<SGDGroupOptions>;
    if (parsed.lr === undefined) throw new TesseraError('Optimizer "sgd" needs an lr (there is no sensible default).');
    super('sgd', params, parsed, { lr: parsed.lr, weightDecay: 0, momentum: 0, dampening: 0, nesterov: false });
  }

  protected override checkGroupOptions(o: SGDGroupOptions, index: number): void {
    super.checkGroupOptions(o, index);
    if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0)) {
      throw new TesseraError(`Optimizer "sgd" group ${index}: nesterov needs momentum > 0 and dampening 0.`);
    }
  }

  protected stateShapes(shape: readonly number[], o: SGDGroupOptions): Record<string, number[]> {
    return o.momentum > 0 ? { momentum: [...shape] } : {};
  }

  protected update(
    p: tf.Tensor,
    g: tf.Tensor,
    s: Record<string, tf.Tensor>,
    c: UpdateContext<SGDGroupOptions>,
  ): Update {
    const o = c.options;
    let d = o.weightDecay ? tf.add(g, tf.mul(p, o.weightDecay)) : g;
    if (o.momentum <= 0) return { param: tf.sub(p, tf.mul(d, c.lr!)), state: {} };
    // The first buffer is the gradient itself, undamped, as in torch.
    const buf = c.step === 1 ? tf.clone(d) : tf.add(tf.mul(s.momentum!, o.momentum), tf.mul(d, 1 - o.dampening));
    d = o.nesterov ? tf.add(d, tf.mul(buf, o.momentum)) : buf;
    return { param: tf.sub(p, tf.mul(d, c.lr!)), state: { momentum: buf } };
  }
}

// ---------------------------------------------------------------------------- Adam / AdamW

export interface AdamGroupOptions extends GroupOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
}

const adamShape = { lr: lrSchema, weightDecay: nonNegative, beta1: beta, beta2: beta, eps: nonNegative };
export const adamOptions = optimizerSchema(adamShape);
export const adamwOptions = optimizerSchema(adamShape);

/**
 * Adam and AdamW through tensor-core's fused AdamW op, so a backend's fused kernel
 * runs it. Adam's L2 decay is folded into the gradient and the op's decoupled decay
 * set to 0, which is exactly torch.optim.Adam.
 */
abstract class AdamBase extends Optimizer<AdamGroupOptions> {
  protected abstract readonly decoupled: boolean;

  protected stateShapes(shape: readonly number[]): Record<string, number[]> {
    return { m: [...shape], v: [...shape] };
  }

  protected update(
    p: tf.Tensor,
    g: tf.Tensor,
    s: Record<string, tf.Tensor>,
    c: UpdateContext<AdamGroupOptions>,
  ): Update {
    const o = c.options;
    const grad = !this.decoupled && o.weightDecay ? tf.add(g, tf.mul(p, o.weightDecay)) : g;
    const out = adamwUpdate(p, grad, s.m!, s.v!, {
      lr: c.lr!,
      beta1: o.beta1,
      beta2: o.beta2,
      eps: o.eps,
      weightDecay: this.decoupled ? o.weightDecay : 0,
      step: c.step,
    });
    return { param: out.param, state: { m: out.m, v: out.v } };
  }
}

/** torch.optim.Adam (L2 weight decay, default 0). */
export class Adam extends AdamBase {
  protected readonly decoupled = false;
  constructor(params: ParamSource, options: OptimizerOptions<AdamGroupOptions> = {}) {
    const parsed = parseOptions('adam', adamOptions, options) as OptimizerOptions<AdamGroupOptions>;
    super('adam', params, parsed, { lr: 1e-3, weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8 });
  }
}

/** torch.optim.AdamW (decoupled weight decay, default 0.01). */
export class AdamW extends AdamBase {
  protected readonly decoupled = true;
  constructor(params: ParamSource, options: OptimizerOptions<AdamGroupOptions> = {}) {
    const parsed = parseOptions('adamw', adamwOptions, options) as OptimizerOptions<AdamGroupOptions>;
    super('adamw', params, parsed, { lr: 1e-3, weightDecay: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8 });
  }
}

// ---------------------------------------------------------------------------- Adafactor

export interface AdafactorGroupOptions extends GroupOptions {
  /** null with relativeStep: the step size is min(1e-2, 1/√t) (× parameter RMS with scaleParameter). */
  lr: number | null;
  /** Regulariser added to g² (eps1) and floor of the parameter scale (eps2). */
  eps1: number;
  eps2: number;
  clipThreshold: number;
  decayRate: number;
  /** First-moment decay; null keeps no first moment (the memory-saving default). */
  beta1: number | null;
  scaleParameter: boolean;
  relativeStep: boolean;
  warmupInit: boolean;
}

export const adafactorOptions = optimizerSchema({
  lr: lrSchema,
  weightDecay: nonNegative,
  eps1: nonNegative,
  eps2: nonNegative,
  clipThreshold: z.number().positive(),
  decayRate: z.number().max(0),
  beta1: beta.nullable(),
  scaleParameter: z.boolean(),
  relativeStep: z.boolean(),
  warmupInit: z.boolean(),
});

const rms = (x: tf.Tensor) => tf.sqrt(tf.mean(tf.square(x)));

/**
 * Adafactor (Shazeer & Stern, 2018) with HF transformers' semantics: factored second
 * moments (row and column means) for parameters of rank >= 2, time-dependent decay
 * 1 − t^decayRate, update clipping by RMS, relative step size scaled by the
 * parameter's RMS. T5's optimizer. With relativeStep the lr comes from the step count,
 * so a manual lr or a schedule is refused.
 */
export class Adafactor extends Optimizer<AdafactorGroupOptions> {
  constructor(params: ParamSource, options: OptimizerOptions<AdafactorGroupOptions> = {}) {
    const parsed = parseOptions('adafactor', adafactorOptions, options) as OptimizerOptions<AdafactorGroupOptions>;
    const relativeStep = parsed.relativeStep ?? parsed.lr === undefined;
    super('adafactor', params, parsed, {
      lr: parsed.lr ?? null,
      weightDecay: 0,
      eps1: 1e-30,
      eps2: 1e-3,
      clipThreshold: 1,
      decayRate: -0.8,
      beta1: null,
      scaleParameter: true,
      relativeStep,
      warmupInit: false,
    });
    if (this.schedule && this.groups.some((g) => g.options.relativeStep)) {
      throw new TesseraError(
        'Optimizer "adafactor": relativeStep computes its own lr from the step count; drop the schedule or set relativeStep: false with an lr.',
      );
    }
  }

  protected override checkGroupOptions(o: AdafactorGroupOptions, index: number): void {
    super.checkGroupOptions(o, index);
    if (o.relativeStep && o.lr !== null) {
      throw new TesseraError(
        `Optimizer "adafactor" group ${index}: a manual lr cannot be combined with relativeStep: true.`,
      );
    }
    if (!o.relativeStep && o.lr === null) {
      throw new TesseraError(`Optimizer "adafactor" group ${index}: relativeStep: false needs an lr.`);
    }
    if (o.warmupInit && !o.relativeStep) {
      throw new TesseraError(`Optimizer "adafactor" group ${index}: warmupInit needs relativeStep: true.`);
    }
  }

  protected stateShapes(shape: readonly number[], o: AdafactorGroupOptions): Record<string, number[]> {
    const out: Record<string, number[]> = {};
    if (o.beta1 !== null) out.m = [...shape];
    if (shape.length >= 2) {
      out.vRow = shape.slice(0, -1);
      out.vCol = [...shape.slice(0, -2), shape[shape.length - 1]!];
    } else {
      out.v = [...shape];
    }
    return out;
  }

  protected update(
    p: tf.Tensor,
    g: tf.Tensor,
    s: Record<string, tf.Tensor>,
    c: UpdateContext<AdafactorGroupOptions>,
  ): Update {
    const o = c.options;
    const t = c.step;
    let lr: tf.Tensor | number = o.relativeStep ? Math.min(o.warmupInit ? 1e-6 * t : 1e-2, 1 / Math.sqrt(t)) : c.lr!;
    if (o.scaleParameter) lr = tf.mul(tf.maximum(rms(p), o.eps2), lr);
    const beta2t = 1 - t ** o.decayRate;
    const sq = tf.add(tf.square(g), o.eps1);
    const state: Record<string, tf.Tensor> = {};
    let u: tf.Tensor;
    if (p.rank >= 2) {
      const row = tf.add(tf.mul(s.vRow!, beta2t), tf.mul(tf.mean(sq, -1), 1 - beta2t));
      const col = tf.add(tf.mul(s.vCol!, beta2t), tf.mul(tf.mean(sq, -2), 1 - beta2t));
      const rFactor = tf.expandDims(tf.rsqrt(tf.div(row, tf.mean(row, -1, true))), -1);
      const cFactor = tf.expandDims(tf.rsqrt(col), -2);
      u = tf.mul(tf.mul(rFactor, cFactor), g);
      state.vRow = row;
      state.vCol = col;
    } else {
      const v = tf.add(tf.mul(s.v!, beta2t), tf.mul(sq, 1 - beta2t));
      u = tf.mul(tf.rsqrt(v), g);
      state.v = v;
    }
    u = tf.div(u, tf.maximum(tf.div(rms(u), o.clipThreshold), 1));
    u = tf.mul(u, lr);
    if (o.beta1 !== null) {
      const m = tf.add(tf.mul(s.m!, o.beta1), tf.mul(u, 1 - o.beta1));
      state.m = m;
      u = m;
    }
    let param = p;
    if (o.weightDecay) param = tf.add(param, tf.mul(param, tf.mul(lr, -o.weightDecay)));
    return { param: tf.sub(param, u), state };
  }
}

// ---------------------------------------------------------------------------- Lion

export interface LionGroupOptions extends GroupOptions {
  lr: number;
  beta1: number;
  beta2: number;
}

export const lionOptions = optimizerSchema({ lr: lrSchema, weightDecay: nonNegative, beta1: beta, beta2: beta });

/**
 * Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms"): the update
 * is the sign of an interpolation of momentum and gradient, with decoupled weight decay.
 */
export class Lion extends Optimizer<LionGroupOptions> {
  constructor(params: ParamSource, options: OptimizerOptions<LionGroupOptions> = {}) {
    const parsed = parseOptions('lion', lionOptions, options) as OptimizerOptions<LionGroupOptions>;
    super('lion', params, parsed, { lr: 1e-4, weightDecay: 0, beta1: 0.9, beta2: 0.99 });
  }

  protected stateShapes(shape: readonly number[]): Record<string, number[]> {
    return { m: [...shape] };
  }

  protected update(
    p: tf.Tensor,
    g: tf.Tensor,
    s: Record<string, tf.Tensor>,
    c: UpdateContext<LionGroupOptions>,
  ): Update {
    const o = c.options;
    const lr = c.lr!;
    const interp = tf.add(tf.mul(s.m!, o.beta1), tf.mul(g, 1 - o.beta1));
    const decayed = o.weightDecay ? tf.mul(p, 1 - lr * o.weightDecay) : p;
    const param = tf.sub(decayed, tf.mul(tf.sign(interp), lr));
    const m = tf.add(tf.mul(s.m!, o.beta2), tf.mul(g, 1 - o.beta2));
    return { param, state: { m } };
  }
}

// ---------------------------------------------------------------------------- registry

export type OptimizerFactory = (options: unknown, params: ParamSource) => Optimizer;

export function registerOptimizers(): void {
  const pkg = '@tessera/optim';
  const entries: [string, OptimizerFactory, z.ZodType, string][] = [
    [
      'sgd',
      (o, p) => new SGD(p, o as never),
      sgdOptions,
      'SGD with momentum, Nesterov and L2 weight decay (torch.optim.SGD).',
    ],
    [
      'adam',
      (o, p) => new Adam(p, o as never),
      adamOptions,
      'Adam with L2 weight decay (torch.optim.Adam), via the fused AdamW op.',
    ],
    [
      'adamw',
      (o, p) => new AdamW(p, o as never),
      adamwOptions,
      'AdamW, decoupled weight decay (torch.optim.AdamW), via the fused op.',
    ],
    [
      'adafactor',
      (o, p) => new Adafactor(p, o as never),
      adafactorOptions,
      'Adafactor: factored second moments, relative step (T5).',
    ],
    ['lion', (o, p) => new Lion(p, o as never), lionOptions, 'Lion: sign of interpolated momentum (Chen et al. 2023).'],
  ];
  for (const [name, factory, options, description] of entries) {
    if (!registry.optimizer.has(name))
      registry.optimizer.register(name, factory, { description, package: pkg, options });
  }
}
