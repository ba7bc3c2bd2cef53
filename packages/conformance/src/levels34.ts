import { type MatmulPrecision, withMatmulPrecision } from '@tessera/tensor-core';
import { activate } from './backends.js';
import { type HostTensor, describeDeviation, deviation, fmt } from './compare.js';
import type { CaseResult, Tolerance } from './types.js';

/**
 * Level 3 — model conformance: one model's forward and backward on the active backend,
 * against PyTorch fixtures. The built-in cases (src/level3.ts) load @tessera/transformer's
 * fixtures; a caller may pass its own through `suites`.
 */
export interface ModelConformanceCase {
  /** e.g. "gpt/forward+backward L2 H2 E32". */
  name: string;
  /** The family: "gpt", "bert", "t5". */
  group: string;
  /** The tolerance shown in the report, and used for every output `toleranceFor` does not name. */
  tolerance: Tolerance;
  /** Per-output tolerance (e.g. gradients against their norm, logits absolute). */
  toleranceFor?: (output: string) => Tolerance;
  /** Runs on the active backend; returns named results (logits, loss, chosen parameter gradients). */
  run(): Promise<Record<string, HostTensor>>;
  /** The PyTorch fixture values under the same names. */
  expected(): Promise<Record<string, HostTensor>>;
}

/** Level 4 — training conformance: N optimizer steps from a seeded start; the loss curve must match cpu's. */
export interface TrainingConformanceCase {
  name: string;
  group: string;
  tolerance: Tolerance;
  /** Trains on the active backend from the same seed every time; returns the loss after each step. */
  run(): Promise<number[]>;
  /** The matmul precision of the backend under test for this case (default fp32); the reference runs fp32. */
  matmulPrecision?: MatmulPrecision;
}

export interface ConformanceSuites {
  model?: ModelConformanceCase[];
  training?: TrainingConformanceCase[];
}

function compareNamed(
  level: 3 | 4,
  name: string,
  group: string,
  tol: Tolerance,
  toleranceFor: ((output: string) => Tolerance) | undefined,
  actual: Record<string, HostTensor>,
  expected: Record<string, HostTensor>,
  against: string,
  started: number,
): CaseResult {
  const problems: string[] = [];
  let maxAbs = 0;
  let maxRel = 0;
  let worstKey = '';
  for (const [key, want] of Object.entries(expected)) {
    const have = actual[key];
    if (!have) {
      problems.push(`${key}: missing from the backend's results`);
      continue;
    }
    const d = deviation(have, want, toleranceFor?.(key) ?? tol);
    maxAbs = Math.max(maxAbs, d.maxAbs);
    if (d.maxRel > maxRel || !worstKey) {
      maxRel = d.maxRel;
      worstKey = key;
    }
    if (!d.pass) problems.push(describeDeviation(key, d, have, want));
  }
  const pass = problems.length === 0;
  const keys = Object.keys(expected);
  return {
    level,
    name,
    group,
    status: pass ? 'pass' : 'fail',
    pass,
    maxAbsErr: maxAbs,
    maxRelErr: maxRel,
    tolerance: tol,
    message: pass
      ? `${summarizeKeys(keys)} match ${against}${keys.length > 1 ? ` (largest relative error: ${worstKey})` : ''}`
      : problems.slice(0, 5).join('; ') + (problems.length > 5 ? `; and ${problems.length - 5} more` : ''),
    durationMs: Math.round(performance.now() - started),
  };
}

/** "logits, loss, 38 grad.*" rather than 40 names. */
function summarizeKeys(keys: string[]): string {
  const groups = new Map<string, number>();
  const plain: string[] = [];
  for (const k of keys) {
    const dot = k.indexOf('.');
    if (dot < 0) plain.push(k);
    else groups.set(k.slice(0, dot), (groups.get(k.slice(0, dot)) ?? 0) + 1);
  }
  return [...plain, ...[...groups].map(([g, n]) => `${n} ${g}.*`)].join(', ');
}

function failed(level: 3 | 4, c: { name: string; group: string; tolerance: Tolerance }, err: unknown, started: number) {
  const r: CaseResult = {
    level,
    name: c.name,
    group: c.group,
    status: 'fail',
    pass: false,
    maxAbsErr: null,
    maxRelErr: null,
    tolerance: c.tolerance,
    message: `threw: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
    durationMs: Math.round(performance.now() - started),
  };
  return r;
}

/** One level-3 case on `backend`: run it there, compare every output with PyTorch's. */
export async function runModelCase(backend: string, c: ModelConformanceCase): Promise<CaseResult> {
  const t0 = performance.now();
  try {
    await activate(backend);
    return compareNamed(
      3,
      c.name,
      c.group,
      c.tolerance,
      c.toleranceFor,
      await c.run(),
      await c.expected(),
      'PyTorch',
      t0,
    );
  } catch (err) {
    return failed(3, c, err, t0);
  }
}

/** One level-4 case: train on `reference`, then on `backend`, and compare the loss curves step by step. */
export async function runTrainingCase(
  backend: string,
  reference: string,
  c: TrainingConformanceCase,
): Promise<CaseResult> {
  const t0 = performance.now();
  const curve = (losses: number[]): HostTensor => ({ shape: [losses.length], dtype: 'float32', values: losses });
  try {
    await activate(reference);
    const want = curve(await c.run());
    await activate(backend);
    const have = curve(await withMatmulPrecision(c.matmulPrecision ?? 'fp32', () => c.run(), backend));
    const r = compareNamed(4, c.name, c.group, c.tolerance, undefined, { loss: have }, { loss: want }, reference, t0);
    r.message += ` — ${describeCurves(have.values, want.values, reference)}`;
    return r;
  } catch (err) {
    return failed(4, c, err, t0);
  }
}

/** "20 steps, cpu's loss 4.16 → 1.61; largest deviation rel 1.2e-6 (abs 2.6e-6) at step 15". */
function describeCurves(have: ArrayLike<number>, want: ArrayLike<number>, reference: string): string {
  const n = want.length;
  if (!n) return 'no steps';
  let worst = 0;
  let at = 0;
  for (let i = 0; i < n; i++) {
    const d = Math.abs(have[i]! - want[i]!);
    const rel = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d / Math.abs(want[i]!);
    if (rel > worst) {
      worst = rel;
      at = i;
    }
  }
  return (
    `${n} steps, ${reference}'s loss ${want[0]!.toFixed(4)} → ${want[n - 1]!.toFixed(4)}; ` +
    `largest deviation rel ${fmt(worst)} (abs ${fmt(Math.abs(have[at]! - want[at]!))}) at step ${at + 1}`
  );
}
