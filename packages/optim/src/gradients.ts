import { sumSquares, sumSquaresOp, TesseraError, tf } from '@tessera/tensor-core';

/** Gradients keyed by parameter name, as `valueAndGrads` returns them. */
export type Grads = Map<string, tf.Tensor> | Record<string, tf.Tensor>;

/** tf.tidy for results that are not tensor containers: tensors to keep must be tf.keep()-ed. */
export function scoped<T>(fn: () => T): T {
  let out: T | undefined;
  tf.tidy(() => {
    out = fn();
  });
  return out as T;
}

export function gradEntries(grads: Grads): [string, tf.Tensor][] {
  return grads instanceof Map ? [...grads] : Object.entries(grads);
}

export class NonFiniteGradientError extends TesseraError {
  constructor(readonly names: string[]) {
    super(
      `Non-finite gradient (NaN or Inf) in ${names.length} parameter(s): ${names.slice(0, 10).join(', ')}` +
        `${names.length > 10 ? ', ...' : ''}. The update was not applied. Lower the lr, clip gradients, ` +
        `or set the optimizer option nonFinite: "skip" to skip such steps (they are counted in skippedSteps).`,
    );
  }
}

/** Names of the gradients holding a NaN or Inf (one device read per gradient; call only after a failed check). */
export function nonFiniteNames(grads: Grads): string[] {
  const out: string[] = [];
  try {
    for (const [name, g] of gradEntries(grads)) {
      const ok = tf.tidy(() => tf.all(tf.isFinite(g)).dataSync()[0]);
      if (!ok) out.push(name);
    }
  } catch {
    // GPU backends in Node cannot read synchronously: the error then names no parameter
    // rather than replacing "non-finite gradients" with a read failure.
    return ['(which ones: not readable synchronously on this backend)'];
  }
  return out;
}

/**
 * A scalar that is 0 when every tensor is finite and NaN otherwise: Σ(x·0) per tensor (x·0 is 0
 * for finite x and NaN for NaN or ±Inf, and a sum of zeros cannot overflow), from the fused
 * sumSquares op, which backends run as one pass (the reference composition is Mul + Sum).
 */
export function finiteProbe(tensors: readonly tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => (tensors.length ? (tf.addN(tensors.map((g) => probeOf(g))) as tf.Scalar) : tf.scalar(0)));
}

// The fused op computes both statistics in one pass where the backend has a kernel; its
// reference composition computes both too, so elsewhere each caller composes only its own.
function probeOf(g: tf.Tensor): tf.Scalar {
  return sumSquaresOp.hasKernel() ? sumSquares(g).probe : (tf.sum(tf.mul(g, 0)) as tf.Scalar);
}
function sumSquaresOf(g: tf.Tensor): tf.Scalar {
  return sumSquaresOp.hasKernel() ? sumSquares(g).sumSquares : (tf.sum(tf.mul(g, g)) as tf.Scalar);
}

/** True when every gradient is finite; one device read for all of them. */
export function allFinite(grads: Grads): boolean {
  return tf.tidy(() => finiteProbe(gradEntries(grads).map(([, g]) => g)).dataSync()[0] === 0);
}

/** allFinite without a synchronous read (GPU backends in Node cannot read synchronously). */
export async function allFiniteAsync(grads: Grads): Promise<boolean> {
  const flag = finiteProbe(gradEntries(grads).map(([, g]) => g));
  const value = (await flag.data())[0];
  flag.dispose();
  return value === 0;
}

/** Global L2 norm over all gradients as a scalar tensor (torch's norm of per-tensor norms). */
export function globalNorm(grads: Grads): tf.Scalar {
  const entries = gradEntries(grads);
  return tf.tidy(() => {
    if (entries.length === 0) return tf.scalar(0);
    // Each norm as sqrt(Σg²) from the fused sumSquares op (one pass, float64 accumulation on
    // the cpu and native kernels): the value of tf.norm(g), whose |g|^2 goes through the
    // generic Abs and Pow kernels (slow JS on cpu-derived backends, two extra passes).
    return normOfSums(entries.map(([, g]) => sumSquaresOf(g)));
  });
}

/** The global norm from each gradient's Σg²: the norm of the per-tensor norms, as torch takes it. */
function normOfSums(sumsOfSquares: tf.Scalar[]): tf.Scalar {
  return tf.norm(tf.stack(sumsOfSquares.map((s) => tf.sqrt(s)))) as tf.Scalar;
}

/**
 * allFinite and globalNorm from one pass: each gradient's sumSquares gives its finiteness
 * probe and its Σg², and both results come back in one read. The norm is globalNorm's value
 * (normOfSums on the same sums). For callers inside a tidy scope: `norm` belongs to it.
 */
export function finiteAndNormInScope(grads: Grads): { finite: boolean; norm: tf.Scalar; normValue: number } {
  const { probe, norm } = finiteProbeAndNorm(grads);
  const [probeValue, normValue] = tf.stack([probe, norm]).dataSync();
  return { finite: probeValue === 0, norm, normValue: normValue! };
}

/** finiteProbe and globalNorm as tensors from one sumSquares pass (for an asynchronous read). */
export function finiteProbeAndNorm(grads: Grads): { probe: tf.Scalar; norm: tf.Scalar } {
  const tensors = gradEntries(grads).map(([, g]) => g);
  if (tensors.length === 0) return { probe: tf.scalar(0), norm: tf.scalar(0) };
  // One fused call per gradient gives both; without the kernel, the two compositions.
  const stats = tensors.map((g) =>
    sumSquaresOp.hasKernel() ? sumSquares(g) : { probe: probeOf(g), sumSquares: sumSquaresOf(g) },
  );
  const probe = tf.addN(stats.map((s) => s.probe)) as tf.Scalar;
  return { probe, norm: normOfSums(stats.map((s) => s.sumSquares)) };
}

/**
 * Whether clipping's coefficient min(maxNorm / (norm + 1e-6), 1) is exactly 1 in float32, as
 * the tensors compute it (each float32 operation is the correctly rounded double result
 * rounded again, so Math.fround reproduces it): then every g·coef is g, and the pass over
 * the gradients that multiplies them can be skipped.
 */
function coefficientIsOne(maxNorm: number, norm: number): boolean {
  return Math.fround(Math.fround(maxNorm) / Math.fround(Math.fround(norm) + Math.fround(1e-6))) >= 1;
}

/**
 * Scales the gradients so their global L2 norm is at most `maxNorm`
 * (torch.nn.utils.clip_grad_norm_: coefficient maxNorm / (norm + 1e-6), capped at 1).
 * Returns new tensors (the caller owns them) and the norm before clipping.
 */
export function clipGradNorm(grads: Grads, maxNorm: number): { grads: Map<string, tf.Tensor>; norm: number } {
  return scoped(() => {
    const inputs = new Set(gradEntries(grads).map(([, g]) => g));
    const { grads: clipped, norm } = clipGradNormInScope(grads, maxNorm);
    // Unscaled gradients come back as themselves; the caller owns what this returns.
    const out = new Map([...clipped].map(([name, g]) => [name, tf.keep(inputs.has(g) ? tf.clone(g) : g)] as const));
    return { grads: out, norm };
  });
}

/**
 * clipGradNorm for callers already inside a tidy scope: the clipped tensors belong to that
 * scope, and when the norm is within `maxNorm` (coefficient 1) the gradients are returned as
 * they are, not multiplied by 1.
 */
export function clipGradNormInScope(
  grads: Grads,
  maxNorm: number,
  /** The norm already read by the caller (asynchronously, or with the finiteness probe): no read here. */
  knownNorm?: number,
  /** That norm as a tensor, when the caller has it: not computed again. */
  normTensor?: tf.Scalar,
): { grads: Map<string, tf.Tensor>; norm: number } {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) {
    throw new TesseraError(`clipGradNorm: maxNorm must be a finite number > 0; got ${maxNorm}.`);
  }
  let norm = normTensor;
  if (knownNorm === undefined) norm ??= globalNorm(grads);
  const value = knownNorm ?? norm!.dataSync()[0]!;
  if (coefficientIsOne(maxNorm, value)) return { grads: new Map(gradEntries(grads)), norm: value };
  norm ??= globalNorm(grads);
  const coef = tf.minimum(tf.div(maxNorm, tf.add(norm, 1e-6)), 1);
  const out = new Map(gradEntries(grads).map(([name, g]) => [name, tf.mul(g, coef)] as const));
  return { grads: out, norm: value };
}

/** Clamps every gradient element to [−value, value] (torch.nn.utils.clip_grad_value_). New tensors. */
export function clipGradValue(grads: Grads, value: number): Map<string, tf.Tensor> {
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new TesseraError(`clipGradValue: value must be a finite number > 0; got ${value}.`);
  }
  return new Map(gradEntries(grads).map(([name, g]) => [name, tf.clipByValue(g, -value, value)] as const));
}

/**
 * Sums gradients over micro-batches so that one update sees the large-batch gradient.
 * With losses that are means over each micro-batch, `add(grads, batchSize)` then
 * `mean()` gives the gradient of the mean over all examples; with equal micro-batches
 * the weights can be left at 1.
 */
export class GradientAccumulator {
  #sum = new Map<string, tf.Tensor>();
  #weight = 0;
  #count = 0;

  /** Adds one micro-batch's gradients (not disposed: the caller still owns them). */
  add(grads: Grads, weight = 1): void {
    if (!(weight > 0) || !Number.isFinite(weight)) {
      throw new TesseraError(`GradientAccumulator.add: weight must be a finite number > 0; got ${weight}.`);
    }
    const entries = gradEntries(grads);
    if (this.#count > 0) {
      const known = [...this.#sum.keys()].sort().join(',');
      const now = entries
        .map(([n]) => n)
        .sort()
        .join(',');
      if (known !== now) {
        throw new TesseraError(
          `GradientAccumulator.add: micro-batch ${this.#count + 1} has gradients for [${now}] but earlier ones had [${known}].`,
        );
      }
    }
    for (const [name, g] of entries) {
      const prior = this.#sum.get(name);
      const next = tf.tidy(() => {
        const scaled = weight === 1 ? tf.clone(g) : tf.mul(g, weight);
        return prior ? tf.add(prior, scaled) : scaled;
      });
      prior?.dispose();
      this.#sum.set(name, next);
    }
    this.#weight += weight;
    this.#count++;
  }

  /** Micro-batches added since the last `mean()` / `reset()`. */
  get count(): number {
    return this.#count;
  }

  /** The weighted mean of the accumulated gradients (caller owns them); resets the accumulator. */
  mean(): Map<string, tf.Tensor> {
    if (this.#count === 0) throw new TesseraError('GradientAccumulator.mean: no gradients were added.');
    const inv = 1 / this.#weight;
    const out = new Map<string, tf.Tensor>();
    for (const [name, s] of this.#sum)
      out.set(
        name,
        tf.tidy(() => tf.mul(s, inv)),
      );
    this.reset();
    return out;
  }

  /**
   * The weighted sum of the accumulated gradients and the total weight (caller owns the
   * tensors); resets the accumulator. Data-parallel training all-reduces both and divides.
   */
  takeSum(): { grads: Map<string, tf.Tensor>; weight: number } {
    const out = { grads: new Map(this.#sum), weight: this.#weight };
    this.#sum.clear();
    this.reset();
    return out;
  }

  reset(): void {
    for (const s of this.#sum.values()) s.dispose();
    this.#sum.clear();
    this.#weight = 0;
    this.#count = 0;
  }

  dispose(): void {
    this.reset();
  }
}

/**
 * Hook for mixed precision: the loss is multiplied by `scale` before backward, the
 * optimizer divides the gradients by it, skips the update when they overflowed and
 * reports each outcome through `update` so the scale can adapt.
 */
export interface LossScaler {
  readonly scale: number;
  update(foundNonFinite: boolean): void;
  stateDict(): Record<string, number>;
  loadStateDict(state: Record<string, number>): void;
}

/** torch.cuda.amp.GradScaler's policy: halve on overflow, double after `growthInterval` clean steps. */
export class DynamicLossScaler implements LossScaler {
  #scale: number;
  #goodSteps = 0;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;

  constructor(
    options: { initScale?: number; growthFactor?: number; backoffFactor?: number; growthInterval?: number } = {},
  ) {
    this.#scale = options.initScale ?? 2 ** 16;
    this.growthFactor = options.growthFactor ?? 2;
    this.backoffFactor = options.backoffFactor ?? 0.5;
    this.growthInterval = options.growthInterval ?? 2000;
    if (!(this.#scale > 0)) throw new TesseraError(`DynamicLossScaler: initScale must be > 0; got ${this.#scale}.`);
  }

  get scale(): number {
    return this.#scale;
  }

  /** The loss times the current scale, for the backward pass. */
  scaleLoss(loss: tf.Scalar): tf.Scalar {
    return tf.mul(loss, this.#scale);
  }

  update(foundNonFinite: boolean): void {
    if (foundNonFinite) {
      this.#scale *= this.backoffFactor;
      this.#goodSteps = 0;
    } else if (++this.#goodSteps >= this.growthInterval) {
      this.#scale *= this.growthFactor;
      this.#goodSteps = 0;
    }
  }

  stateDict(): Record<string, number> {
    return { scale: this.#scale, goodSteps: this.#goodSteps };
  }

  loadStateDict(state: Record<string, number>): void {
    if (!(Number(state.scale) > 0) || !Number.isInteger(state.goodSteps)) {
      throw new TesseraError(
        `DynamicLossScaler.loadStateDict needs { scale > 0, goodSteps }; got ${JSON.stringify(state)}.`,
      );
    }
    this.#scale = state.scale!;
    this.#goodSteps = state.goodSteps!;
  }
}
