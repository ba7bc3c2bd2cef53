import type { Tolerance } from './types.js';

/** A tensor read back to the host: what every comparison works on, whatever the backend. */
export interface HostTensor {
  shape: number[];
  dtype: string;
  values: ArrayLike<number>;
}

export interface Deviation {
  maxAbs: number;
  maxRel: number;
  /** Max |reference|: what maxRel is relative to. */
  scale: number;
  /** Flat index of the largest deviation, -1 when there is none. */
  worst: number;
  pass: boolean;
  /** What maxRel is relative to (Tolerance.scale). */
  mode: 'max' | 'norm' | 'element';
  /** Set when the comparison could not be made element by element (shape, dtype). */
  mismatch?: string;
}

/** Same value, counting NaN == NaN and equal infinities as equal (they are answers too). */
function same(a: number, e: number): boolean {
  return a === e || (Number.isNaN(a) && Number.isNaN(e));
}

/** Deviation of `actual` from `expected` under `tol` (see Tolerance for the rule). */
export function deviation(actual: HostTensor, expected: HostTensor, tol: Tolerance): Deviation {
  if (actual.shape.join(',') !== expected.shape.join(',')) {
    return {
      maxAbs: Number.POSITIVE_INFINITY,
      maxRel: Number.POSITIVE_INFINITY,
      scale: 0,
      worst: -1,
      pass: false,
      mode: tol.scale ?? 'max',
      mismatch: `shape [${actual.shape.join(', ')}], expected [${expected.shape.join(', ')}]`,
    };
  }
  if (actual.dtype !== expected.dtype) {
    return {
      maxAbs: Number.POSITIVE_INFINITY,
      maxRel: Number.POSITIVE_INFINITY,
      scale: 0,
      worst: -1,
      pass: false,
      mode: tol.scale ?? 'max',
      mismatch: `dtype ${actual.dtype}, expected ${expected.dtype}`,
    };
  }
  const a = actual.values;
  const e = expected.values;
  const mode = tol.scale ?? 'max';
  let scale = 0;
  if (mode === 'norm') {
    let sq = 0;
    for (let i = 0; i < e.length; i++) if (Number.isFinite(e[i]!)) sq += e[i]! * e[i]!;
    scale = Math.sqrt(sq);
  } else {
    for (let i = 0; i < e.length; i++) {
      const v = Math.abs(e[i]!);
      if (Number.isFinite(v) && v > scale) scale = v;
    }
  }
  if (mode !== 'element') scale = Math.max(scale, tol.floor ?? 0);
  let maxAbs = 0;
  let maxRel = 0;
  let worst = -1;
  let pass = true;
  for (let i = 0; i < e.length; i++) {
    if (same(a[i]!, e[i]!)) continue;
    // A NaN or an infinity where the reference has something else is as wrong as it gets.
    const d = Math.abs(a[i]! - e[i]!);
    const dist = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
    if (mode === 'element') {
      // Each element against its own magnitude: the worst is the largest relative deviation.
      const ref = Math.abs(e[i]!);
      const rel = ref === 0 ? Number.POSITIVE_INFINITY : dist / ref;
      if (!(dist <= tol.atol + tol.rtol * ref)) pass = false;
      if (rel > maxRel || worst < 0) {
        maxRel = rel;
        worst = i;
      }
      maxAbs = Math.max(maxAbs, dist);
      continue;
    }
    if (dist > maxAbs || worst < 0) {
      maxAbs = dist;
      worst = i;
    }
  }
  if (mode === 'element') {
    for (let i = 0; i < e.length; i++) scale = Math.max(scale, Number.isFinite(e[i]!) ? Math.abs(e[i]!) : 0);
    return { maxAbs, maxRel, scale, worst, pass, mode };
  }
  maxRel = scale === 0 ? (maxAbs === 0 ? 0 : Number.POSITIVE_INFINITY) : maxAbs / scale;
  return { maxAbs, maxRel, scale, worst, pass: maxAbs <= tol.atol + tol.rtol * scale, mode };
}

/** Anything with a shape and numbers: a host copy, or a tensor (read with dataSync). */
export type Comparable =
  | { shape: readonly number[]; dtype?: string; values: ArrayLike<number> }
  | { shape: readonly number[]; dtype: string; dataSync(): ArrayLike<number> };

/**
 * The tolerance a comparison takes: `Tolerance` without the justification, every bound
 * defaulting to 0 (exact).
 */
export type CloseTolerance = Partial<Omit<Tolerance, 'why'>> & { why?: string };

/** What `compareTensors` found: the deviation, and one line that says it. */
export interface Comparison extends Deviation {
  tolerance: Tolerance;
  /** "label: max abs err 3.1e-6 at [2, 5] (got ..., expected ...), rel ... — allowed rtol 1e-6" */
  message: string;
}

/** A host copy of `x`. A tensor is read synchronously: use `toHost` for a backend that cannot. */
export function hostOf(x: Comparable, dtype?: string): HostTensor {
  const values = 'values' in x ? x.values : x.dataSync();
  return { shape: [...x.shape], dtype: x.dtype ?? dtype ?? 'float32', values };
}

/**
 * A copy of a tensor read back asynchronously (`await t.data()`), as a backend such as
 * WebGPU in Node needs; a copy because some backends hand out their own storage, which
 * a later kernel may reuse once the tensor is disposed.
 */
export async function toHost(t: {
  shape: readonly number[];
  dtype: string;
  data(): Promise<ArrayLike<number> & { slice(): ArrayLike<number> }>;
}): Promise<HostTensor> {
  return { shape: [...t.shape], dtype: t.dtype, values: (await t.data()).slice() };
}

function fullTolerance(tol: CloseTolerance): Tolerance {
  return { ...tol, rtol: tol.rtol ?? 0, atol: tol.atol ?? 0, why: tol.why ?? 'stated by the caller' };
}

/**
 * `actual` against `expected` under the suite's rule: passes when
 * maxAbs <= atol + rtol * scale (see Tolerance). The same rule level 2 and level 3 apply,
 * for tests that compare a backend with the reference outside the suite.
 */
export function compareTensors(
  actual: Comparable,
  expected: Comparable,
  tolerance: CloseTolerance,
  label = 'result',
): Comparison {
  const want = hostOf(expected, 'dtype' in actual ? actual.dtype : undefined);
  const have = hostOf(actual, want.dtype);
  const tol = fullTolerance(tolerance);
  const d = deviation(have, want, tol);
  const message = d.pass
    ? `${label}: max abs err ${fmt(d.maxAbs)}, rel ${fmt(d.maxRel)} — within ${formatTolerance(tol)}`
    : `${describeDeviation(label, d, have, want)} — allowed ${formatTolerance(tol)}`;
  return { ...d, tolerance: tol, message };
}

/**
 * Throws (with `compareTensors`'s message) unless `actual` is within `tolerance` of
 * `expected`; returns the deviation otherwise. Works under any test runner.
 */
export function expectClose(
  actual: Comparable,
  expected: Comparable,
  tolerance: CloseTolerance,
  label = 'result',
): Comparison {
  const c = compareTensors(actual, expected, tolerance, label);
  if (!c.pass) throw new Error(c.message);
  return c;
}

/** "[1, 3]" for flat index `i` of `shape`. */
export function indexOf(shape: readonly number[], i: number): string {
  const idx: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    const n = shape[d]!;
    idx.unshift(i % n);
    i = Math.floor(i / n);
  }
  return `[${idx.join(', ')}]`;
}

export function fmt(x: number | null): string {
  if (x === null) return '-';
  if (x === 0) return '0';
  if (!Number.isFinite(x)) return String(x);
  return x.toExponential(2);
}

export function formatTolerance(t: Tolerance | null): string {
  if (!t) return '-';
  if (t.rtol === 0 && t.atol === 0) return 'exact';
  const parts = [];
  const of =
    t.scale === 'norm'
      ? ` of ‖ref‖${t.floor ? ` (floor ${fmt(t.floor)})` : ''}`
      : t.scale === 'element'
        ? ' per element'
        : '';
  if (t.rtol) parts.push(`rtol ${fmt(t.rtol)}${of}`);
  if (t.atol) parts.push(`atol ${fmt(t.atol)}`);
  return parts.join(' + ');
}

/** One readable line for a failed comparison of output `name`. */
export function describeDeviation(name: string, d: Deviation, actual: HostTensor, expected: HostTensor): string {
  if (d.mismatch) return `${name}: ${d.mismatch}`;
  const at = d.worst >= 0 ? indexOf(expected.shape, d.worst) : '';
  const got = d.worst >= 0 ? actual.values[d.worst] : undefined;
  const want = d.worst >= 0 ? expected.values[d.worst] : undefined;
  return (
    `${name}: max abs err ${fmt(d.maxAbs)} at ${at} (got ${got}, expected ${want}), ` +
    (d.mode === 'element'
      ? `worst rel ${fmt(d.maxRel)} (each element against itself)`
      : `rel ${fmt(d.maxRel)} of ${d.mode === 'norm' ? '‖ref‖' : 'scale'} ${fmt(d.scale)}`)
  );
}
