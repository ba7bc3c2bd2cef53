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
import { type ConformanceSuites, runLevel3, runLevel4 } from './levels34.js';
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
  level1?: Pick<Level1Options, 'expectedFailures' | 'timeoutMs' | 'filter'>;
  /**
   * Level 3: where the PyTorch fixtures are (`fixturesDir`; default @tessera/transformer's
   * test/fixtures in a checkout, else the level is not available) and which to run.
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

async function runLevel2(options: ConformanceOptions, reference: string, keep: (n: string) => boolean) {
  const started = performance.now();
  const cases: CaseResult[] = [];
  const previous = tf.getBackend();
  try {
    for (const c of level2Cases().filter((c) => keep(c.name))) {
      const r = await runCase(c, { backend: options.backend, reference, tolerances: options.tolerances });
      cases.push(r);
      options.onCase?.(r);
    }
  } finally {
    // Leave the caller on the backend it was using.
    if (previous && tf.getBackend() !== previous) await tf.setBackend(previous);
  }
  const level: LevelResult = {
    level: 2,
    title: `op and gradient conformance (vs ${reference})`,
    status: cases.every((c) => c.pass) ? 'pass' : 'fail',
    cases,
    durationMs: Math.round(performance.now() - started),
  };
  if (!cases.length) {
    level.status = 'fail';
    level.cases.push({
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
    });
  }
  return level;
}

/**
 * Runs the conformance suite for `backend` and returns a structured result: per level a
 * status, per case the max absolute and relative error, the tolerance and a message.
 * Level 3 reports "not-available" (with the reason) when it finds no PyTorch fixtures.
 */
export async function runConformance(options: ConformanceOptions): Promise<ConformanceResult> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const levels = [...new Set(options.levels ?? [1, 2, 3, 4])].sort();
  for (const l of levels) {
    if (![1, 2, 3, 4].includes(l))
      throw new TesseraError(`Conformance level ${l} does not exist (levels: 1, 2, 3, 4).`);
  }
  const reference = options.reference ?? 'cpu';
  const keep = matcher(options.filter);
  await importAll(options.imports ?? []);
  // Fail early, with the list of known backends, rather than once per case.
  const previous = tf.getBackend();
  await activate(options.backend);
  await activate(reference);
  if (previous) await tf.setBackend(previous);

  const results: LevelResult[] = [];
  const push = (l: LevelResult) => {
    results.push(l);
    options.onLevel?.(l);
  };
  for (const level of levels) {
    if (level === 1) {
      const filter = options.level1?.filter ?? options.filter;
      if (filter !== undefined && typeof filter !== 'string') {
        throw new TesseraError('Level 1 runs in a child process and takes only a string filter (level1.filter).');
      }
      push(await runLevel1({ backend: options.backend, imports: options.imports, ...options.level1, filter }));
    } else if (level === 2) {
      push(await runLevel2(options, reference, keep));
    } else {
      const given = 'the caller passed no cases for this level';
      let l: LevelResult;
      if (level === 3) {
        const { cases, missing } = options.suites
          ? { cases: options.suites.model, missing: given }
          : modelCases(options.level3);
        l = await runLevel3(options.backend, cases, missing, keep);
      } else {
        const cases = options.suites ? options.suites.training : trainingCases(options.level4);
        l = await runLevel4(options.backend, reference, cases, given, keep);
      }
      for (const c of l.cases) options.onCase?.(c);
      push(l);
    }
  }
  const all = results.flatMap((l) => l.cases);
  const pass = results.every((l) => l.status === 'pass' || (l.status === 'not-available' && !options.requireAllLevels));
  return {
    backend: options.backend,
    reference,
    pass,
    levels: results,
    counts: {
      cases: all.length,
      passed: all.filter((c) => c.status === 'pass').length,
      failed: all.filter((c) => c.status === 'fail').length,
      skipped: all.filter((c) => c.status === 'skip').length,
    },
    durationMs: Math.round(performance.now() - started),
    startedAt,
  };
}
