import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { TesseraError, tf } from '@tessera/tensor-core';
import { activate } from './backends.js';
import type { OpCase } from './level2/case.js';
import { fusedOpCases } from './level2/fused.js';
import { standardOpCases } from './level2/ops.js';
import { runCase } from './level2/run.js';
import { type Level1Options, runLevel1 } from './level1/run.js';
import { type Level3Options, modelCases } from './level3.js';
import { type Level4Options, trainingCases } from './level4.js';
import { type ConformanceSuites, runModelCase, runTrainingCase } from './levels34.js';
import type { CaseResult, ConformanceResult, LevelNumber, LevelResult, Tolerance } from './types.js';

export type CaseFilter = string | RegExp | ((name: string) => boolean);

export interface ConformanceOptions {
  /** The backend under test, by the name it registered (tfjs or Tessera registry). */
  backend: string;
  /** Which levels to run; default all four. */
  levels?: LevelNumber[];
  /** The backend results are compared with; default "cpu". */
  reference?: string;
  /** Per-case or per-group (op) tolerance overrides for levels 2 (shown as overridden in the report). */
  tolerances?: Record<string, Partial<Tolerance>>;
  /** Keeps only the cases (and level-1 specs) whose name matches: a substring (case-insensitive), a RegExp or a predicate. */
  filter?: CaseFilter;
  /**
   * Modules that register the backend (package names or file paths). Imported here before
   * anything runs, and by level 1's child process, which starts with only tensor-core and cpu.
   */
  imports?: string[];
  /** Level-1 settings: the expected-failure list, a time limit, and a filter of its own (default: `filter`). */
  level1?: Pick<Level1Options, 'expectedFailures' | 'timeoutMs' | 'filter' | 'maxFailuresRetried'>;
  /**
   * Level 3: where the PyTorch fixtures are (`fixturesDir`; default the ones this package
   * ships in fixtures/) and which to run.
   */
  level3?: Level3Options;
  /** Level 4: steps per family (default 20) and which families (default gpt, bert, t5). */
  level4?: Level4Options;
  /** Level-3/4 cases that replace the built-in ones (for a level, when given). */
  suites?: ConformanceSuites;
  /** Treat a level that is not available as a failure (default false: it is reported, not failed). */
  requireAllLevels?: boolean;
  /** Called after each level-2/3/4 case and each level: progress for long runs. */
  onCase?: (c: CaseResult) => void;
  onLevel?: (l: LevelResult) => void;
}

/** Every level-2 case: the standard kernels GPT/BERT/T5 training touches, then the Tessera fused ops. */
export function level2Cases(): OpCase[] {
  return [...standardOpCases(), ...fusedOpCases()];
}

export function matcher(filter: CaseFilter | undefined): (name: string) => boolean {
  if (filter === undefined || filter === '') return () => true;
  if (typeof filter === 'function') return filter;
  if (filter instanceof RegExp) return (n) => filter.test(n);
  const f = filter.toLowerCase();
  return (n) => n.toLowerCase().includes(f);
}

async function importAll(modules: readonly string[]): Promise<void> {
  for (const spec of modules) {
    const target = spec.startsWith('.') || isAbsolute(spec) ? pathToFileURL(resolve(spec)).href : spec;
    await import(target);
  }
}

/** One case of a planned run: its name up front, its result when `run` is awaited. */
export interface ConformanceCase {
  level: LevelNumber;
  /** Unique within its level: a test runner can name a test after it. */
  name: string;
  group: string;
  /** Runs the case (on the backend under test, and the reference where it compares with one) and records the result in the plan. */
  run(): Promise<CaseResult>;
  /** How long the case may take (level 1's child process runs thousands of specs). */
  timeoutMs: number;
}

export interface PlannedLevel {
  level: LevelNumber;
  title: string;
  /** Set when the level cannot run here (no fixtures, no cases): why, and what would make it available. */
  reason?: string;
  cases: ConformanceCase[];
}

/**
 * The suite for one backend, case by case, so a test runner can make each case a test of
 * its own (a failure then names the case) and still get the report of the whole run.
 */
export interface ConformancePlan {
  backend: string;
  reference: string;
  levels: PlannedLevel[];
  /** The result of one level: the cases that have run so far (a not-available level with its reason). */
  levelResult(level: LevelNumber): LevelResult;
  /** The result of every case that has run so far, in the shape `runConformance` returns. */
  result(): ConformanceResult;
  /** Whether the result counts a not-available level as a failure (`requireAllLevels`). */
  requireAllLevels: boolean;
}

interface LevelState {
  planned: PlannedLevel;
  results: CaseResult[];
  durationMs: number;
  /** Level 1 reports more rows than its one case (regressions, specs that now pass). */
  full?: LevelResult;
}

const CASE_TIMEOUT_MS = 10 * 60_000;
const LEVEL1_TIMEOUT_MS = 15 * 60_000;

/**
 * Prepares the suite for `options.backend` without running it: imports the modules that
 * register it, checks that it and the reference exist, and lists every case by level.
 * `runConformance` runs the cases of such a plan in order.
 */
export async function planConformance(options: ConformanceOptions): Promise<ConformancePlan> {
  const startedAt = new Date().toISOString();
  const levels = [...new Set(options.levels ?? [1, 2, 3, 4])].sort();
  for (const l of levels) {
    if (![1, 2, 3, 4].includes(l))
      throw new TesseraError(`Conformance level ${l} does not exist (levels: 1, 2, 3, 4).`);
  }
  const backend = options.backend;
  const reference = options.reference ?? 'cpu';
  const keep = matcher(options.filter);
  const level1Filter = options.level1?.filter ?? options.filter;
  if (levels.includes(1) && level1Filter !== undefined && typeof level1Filter !== 'string') {
    throw new TesseraError('Level 1 runs in a child process and takes only a string filter (level1.filter).');
  }
  await importAll(options.imports ?? []);
  // Fail early, with the list of known backends, rather than once per case.
  const previous = tf.getBackend();
  await activate(backend);
  await activate(reference);
  if (previous) await tf.setBackend(previous);

  const states = new Map<LevelNumber, LevelState>();
  let lastFinished = performance.now();
  const started = performance.now();
  const record = (state: LevelState, run: () => Promise<CaseResult>) => async () => {
    const t0 = performance.now();
    const before = tf.getBackend();
    let r: CaseResult;
    try {
      r = await run();
    } finally {
      // Leave the caller on the backend it was using.
      if (before && tf.getBackend() !== before) await tf.setBackend(before);
    }
    // Run again (a runner's retry): the latest result stands.
    const again = state.results.findIndex((x) => x.name === r.name);
    if (again >= 0) state.results.splice(again, 1);
    state.results.push(r);
    lastFinished = performance.now();
    state.durationMs += Math.round(lastFinished - t0);
    if (state.planned.level !== 1) options.onCase?.(r);
    return r;
  };
  const level = (n: LevelNumber, title: string, reason?: string): LevelState => {
    const state: LevelState = {
      planned: { level: n, title, cases: [], ...(reason ? { reason } : {}) },
      results: [],
      durationMs: 0,
    };
    states.set(n, state);
    return state;
  };
  const add = (
    state: LevelState,
    name: string,
    group: string,
    run: () => Promise<CaseResult>,
    timeoutMs = CASE_TIMEOUT_MS,
  ) => {
    state.planned.cases.push({ level: state.planned.level, name, group, run: record(state, run), timeoutMs });
  };

  const given = 'the caller passed no cases for this level';
  for (const n of levels) {
    if (n === 1) {
      const state = level(1, "tfjs-core's shared op suite");
      add(
        state,
        'tfjs-core shared suite',
        'tfjs-core',
        async () => {
          const full = await runLevel1({
            backend,
            imports: options.imports,
            ...options.level1,
            filter: level1Filter as string | undefined,
          });
          state.full = full;
          return full.cases[0]!;
        },
        // Past the child's own limit, so that its message (which spec hung) is the one seen.
        (options.level1?.timeoutMs ?? LEVEL1_TIMEOUT_MS) + 60_000,
      );
    } else if (n === 2) {
      const state = level(2, `op and gradient conformance (vs ${reference})`);
      const cases = level2Cases().filter((c) => keep(c.name));
      for (const c of cases) {
        add(state, c.name, c.group, () => runCase(c, { backend, reference, tolerances: options.tolerances }));
      }
      if (!cases.length) {
        add(state, 'level 2', 'filter', async () => ({
          level: 2,
          name: 'level 2',
          group: 'filter',
          status: 'fail',
          pass: false,
          maxAbsErr: null,
          maxRelErr: null,
          tolerance: null,
          message: 'no level-2 case matched the filter',
          durationMs: 0,
        }));
      }
    } else if (n === 3) {
      const { cases, missing } = options.suites
        ? { cases: options.suites.model, missing: given }
        : modelCases(options.level3);
      const state = level(3, 'model conformance (PyTorch fixtures)', cases?.length ? undefined : missing);
      for (const c of (cases ?? []).filter((c) => keep(c.name)))
        add(state, c.name, c.group, () => runModelCase(backend, c));
    } else {
      const cases = options.suites ? options.suites.training : trainingCases(options.level4);
      const state = level(4, `training conformance (loss curve vs ${reference})`, cases?.length ? undefined : given);
      for (const c of (cases ?? []).filter((c) => keep(c.name))) {
        add(state, c.name, c.group, () => runTrainingCase(backend, reference, c));
      }
    }
  }

  const levelResult = (n: LevelNumber): LevelResult => {
    const state = states.get(n);
    if (!state) throw new TesseraError(`Level ${n} is not part of this plan (levels: ${levels.join(', ')}).`);
    const { planned } = state;
    if (planned.reason) {
      return {
        level: n,
        title: planned.title,
        status: 'not-available',
        reason: planned.reason,
        cases: [],
        durationMs: 0,
      };
    }
    if (state.full) return { ...state.full, durationMs: state.durationMs };
    const cases = [...state.results];
    return {
      level: n,
      title: planned.title,
      status: cases.every((c) => c.pass) ? 'pass' : 'fail',
      cases,
      durationMs: state.durationMs,
    };
  };
  const requireAllLevels = options.requireAllLevels ?? false;
  return {
    backend,
    reference,
    levels: [...states.values()].map((s) => s.planned),
    requireAllLevels,
    levelResult,
    result(): ConformanceResult {
      // A level none of whose cases has run yet is left out (a runner that skipped it).
      const results = [...states.values()]
        .filter((s) => s.planned.reason || s.results.length || !s.planned.cases.length)
        .map((s) => levelResult(s.planned.level));
      const all = results.flatMap((l) => l.cases);
      const pass = results.every((l) => l.status === 'pass' || (l.status === 'not-available' && !requireAllLevels));
      return {
        backend,
        reference,
        pass,
        levels: results,
        counts: {
          cases: all.length,
          passed: all.filter((c) => c.status === 'pass').length,
          failed: all.filter((c) => c.status === 'fail').length,
          skipped: all.filter((c) => c.status === 'skip').length,
        },
        durationMs: Math.round(lastFinished - started),
        startedAt,
      };
    },
  };
}

/**
 * Runs the conformance suite for `backend` and returns a structured result: per level a
 * status, per case the max absolute and relative error, the tolerance and a message.
 * Level 3 reports "not-available" (with the reason) when it finds no PyTorch fixtures.
 */
export async function runConformance(options: ConformanceOptions): Promise<ConformanceResult> {
  const plan = await planConformance(options);
  for (const level of plan.levels) {
    for (const c of level.cases) await c.run();
    options.onLevel?.(plan.levelResult(level.level));
  }
  return plan.result();
}
