import { activate } from './backends.js';
import { type HostTensor, describeDeviation, deviation } from './compare.js';
import type { CaseResult, LevelResult, Tolerance } from './types.js';

/**
 * Level 3 — model conformance: one model family's forward and backward on the active
 * backend, against PyTorch fixtures. Provided by the package that implements the models
 * (@tessera/transformer), not by this one: the fixtures and the models live there.
 */
export interface ModelConformanceCase {
  /** e.g. "gpt/forward+backward L2 H2 E32". */
  name: string;
  /** The family: "gpt", "bert", "t5". */
  group: string;
  tolerance: Tolerance;
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
}

export interface ConformanceSuites {
  model?: ModelConformanceCase[];
  training?: TrainingConformanceCase[];
}

/**
 * Packages that may provide level-3/4 suites by exporting
 * `conformanceSuites(): ConformanceSuites | Promise<ConformanceSuites>`.
 */
export const SUITE_PACKAGES = ['@tessera/transformer'];

/** Suites given by the caller, else those the installed model packages export; with the reason when none. */
export async function discoverSuites(
  given: ConformanceSuites | undefined,
): Promise<{ suites: ConformanceSuites; missing: string }> {
  if (given) return { suites: given, missing: 'the caller passed no cases for this level' };
  const notes: string[] = [];
  const suites: ConformanceSuites = {};
  for (const pkg of SUITE_PACKAGES) {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pkg)) as Record<string, unknown>;
    } catch (err) {
      const message = (err as Error).message.split('\n')[0]!;
      notes.push(
        message.includes(`Cannot find package '${pkg}'`)
          ? `${pkg} is not installed (it holds GPT/BERT/T5 and their PyTorch fixtures)`
          : `${pkg} failed to load: ${message}`,
      );
      continue;
    }
    if (typeof mod.conformanceSuites !== 'function') {
      notes.push(`${pkg} does not export conformanceSuites() yet`);
      continue;
    }
    const s = (await (mod.conformanceSuites as () => ConformanceSuites | Promise<ConformanceSuites>)()) ?? {};
    suites.model = [...(suites.model ?? []), ...(s.model ?? [])];
    suites.training = [...(suites.training ?? []), ...(s.training ?? [])];
  }
  return { suites, missing: notes.join('; ') || 'no installed package provides cases for this level' };
}

function notAvailable(level: 3 | 4, title: string, reason: string): LevelResult {
  return { level, title, status: 'not-available', reason, cases: [], durationMs: 0 };
}

function compareNamed(
  level: 3 | 4,
  name: string,
  group: string,
  tol: Tolerance,
  actual: Record<string, HostTensor>,
  expected: Record<string, HostTensor>,
  against: string,
  started: number,
): CaseResult {
  const problems: string[] = [];
  let maxAbs = 0;
  let maxRel = 0;
  for (const [key, want] of Object.entries(expected)) {
    const have = actual[key];
    if (!have) {
      problems.push(`${key}: missing from the backend's results`);
      continue;
    }
    const d = deviation(have, want, tol);
    maxAbs = Math.max(maxAbs, d.maxAbs);
    maxRel = Math.max(maxRel, d.maxRel);
    if (!d.pass) problems.push(describeDeviation(key, d, have, want));
  }
  const pass = problems.length === 0;
  return {
    level,
    name,
    group,
    status: pass ? 'pass' : 'fail',
    pass,
    maxAbsErr: maxAbs,
    maxRelErr: maxRel,
    tolerance: tol,
    message: pass ? `${Object.keys(expected).join(', ')} match ${against}` : problems.join('; '),
    durationMs: Math.round(performance.now() - started),
  };
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

export async function runLevel3(
  backend: string,
  cases: ModelConformanceCase[] | undefined,
  missing: string,
  keep: (name: string) => boolean,
): Promise<LevelResult> {
  const title = 'model conformance (PyTorch fixtures)';
  if (!cases?.length) return notAvailable(3, title, missing);
  const started = performance.now();
  const results: CaseResult[] = [];
  for (const c of cases.filter((c) => keep(c.name))) {
    const t0 = performance.now();
    try {
      await activate(backend);
      results.push(compareNamed(3, c.name, c.group, c.tolerance, await c.run(), await c.expected(), 'PyTorch', t0));
    } catch (err) {
      results.push(failed(3, c, err, t0));
    }
  }
  return finish(3, title, results, started);
}

export async function runLevel4(
  backend: string,
  reference: string,
  cases: TrainingConformanceCase[] | undefined,
  missing: string,
  keep: (name: string) => boolean,
): Promise<LevelResult> {
  const title = `training conformance (loss curve vs ${reference})`;
  if (!cases?.length) return notAvailable(4, title, missing);
  const started = performance.now();
  const results: CaseResult[] = [];
  const curve = (losses: number[]): HostTensor => ({ shape: [losses.length], dtype: 'float32', values: losses });
  for (const c of cases.filter((c) => keep(c.name))) {
    const t0 = performance.now();
    try {
      await activate(reference);
      const want = curve(await c.run());
      await activate(backend);
      const have = curve(await c.run());
      results.push(compareNamed(4, c.name, c.group, c.tolerance, { loss: have }, { loss: want }, reference, t0));
    } catch (err) {
      results.push(failed(4, c, err, t0));
    }
  }
  return finish(4, title, results, started);
}

function finish(level: 3 | 4, title: string, cases: CaseResult[], started: number): LevelResult {
  return {
    level,
    title,
    status: cases.every((c) => c.pass) ? 'pass' : 'fail',
    cases,
    durationMs: Math.round(performance.now() - started),
  };
}
