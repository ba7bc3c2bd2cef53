import { fork } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { CaseResult, LevelResult } from '../types.js';
import { type Level1Report, type Level1Request, SPEC_MARKER } from './protocol.js';

export interface Level1Options {
  backend: string;
  /** Modules the child imports so that `backend` exists there (package names or file paths). */
  imports?: string[];
  filter?: string;
  /**
   * Specs expected to fail on this backend: full spec names, or prefixes ending in "*".
   * An array, a path to a JSON file ({ "failures": [...] }), or omitted for the list this
   * package keeps in expectations/level1/<backend>.json (none: every spec must pass).
   */
  expectedFailures?: string[] | string;
  /** Kills the child after this long (default 15 minutes). */
  timeoutMs?: number;
  /**
   * Runs the suite once more when the child dies by a signal (default 1). Mesa's lavapipe has
   * been seen to SIGSEGV once in many full runs inside a tfjs-core spec; a crash that repeats
   * still fails, and one that does not is reported in the result's message.
   */
  retriesOnCrash?: number;
  /**
   * Runs the specs that failed unexpectedly once more, on their own, when there are at most
   * this many (default 20; 0 turns it off). One that passes then is counted as passed and
   * named as flaky in the result; one that fails again is a regression. Some tfjs-core specs
   * wait on timers or the clock and can fail once on a loaded machine.
   */
  maxFailuresRetried?: number;
}

export interface ExpectedFailures {
  source: string;
  patterns: string[];
}

/** The expected-failure list for `backend`: the caller's, or the one kept in this package. */
export function loadExpectedFailures(backend: string, given?: string[] | string): ExpectedFailures {
  if (Array.isArray(given)) return { source: 'caller', patterns: given };
  const file =
    given ?? fileURLToPath(new URL(`../expectations/level1/${encodeURIComponent(backend)}.json`, import.meta.url));
  if (!existsSync(file)) {
    if (given) throw new Error(`level 1: expected-failure file ${given} does not exist`);
    return { source: 'none', patterns: [] };
  }
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { failures?: unknown };
  if (!Array.isArray(parsed.failures) || parsed.failures.some((f) => typeof f !== 'string')) {
    throw new Error(`level 1: ${file} must hold { "failures": [spec names or "prefix*"] }`);
  }
  return { source: file, patterns: parsed.failures as string[] };
}

function matches(name: string, patterns: string[]): boolean {
  return patterns.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
}

// Paths are relative to the bundle: dist/index.js (or a chunk beside it).
const CHILD = fileURLToPath(new URL('./level1/child.js', import.meta.url));

/** The child's report, and how it died when it sent none. */
type ChildOutcome = Level1Report & { crashSignal?: string };

function runChild(request: Level1Request, timeoutMs: number): Promise<ChildOutcome> {
  return new Promise((resolve) => {
    const child = fork(CHILD, [JSON.stringify(request)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    // The specs print (profiler tables, warnings); keep the end of it for a crash message.
    let tail = '';
    let lastSpec = '';
    let partial = '';
    const keep = (chunk: Buffer) => {
      tail = (tail + chunk.toString()).slice(-4000);
    };
    const keepErr = (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      const other: string[] = [];
      for (const line of lines) {
        if (line.startsWith(SPEC_MARKER)) lastSpec = line.slice(SPEC_MARKER.length);
        else other.push(line);
      }
      if (other.length) keep(Buffer.from(`${other.join('\n')}\n`));
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keepErr);
    let report: Level1Report | undefined;
    child.on('message', (m) => {
      report = m as Level1Report;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (report) return resolve(report);
      // A native backend that corrupts memory takes the child down: say how it died.
      const why = timedOut
        ? `timed out after ${Math.round(timeoutMs / 1000)} s`
        : signal
          ? `was killed by ${signal} (a crash in the backend?)`
          : `exited with code ${code}`;
      resolve({
        ...(signal && !timedOut ? { crashSignal: signal } : {}),
        ok: false,
        error:
          `the level-1 child process ${why} without a report` +
          (lastSpec ? `, while running spec "${lastSpec}"` : '') +
          `. Last output:\n${tail.trim().split('\n').slice(-10).join('\n')}`,
        passed: [],
        failed: [],
        pending: 0,
        isDataSync: true,
        tfjsCoreVersion: 'unknown',
        durationMs: 0,
      });
    });
  });
}

/** Level 1: tfjs-core's shared suite on `backend`, judged against its expected-failure list. */
export async function runLevel1(options: Level1Options): Promise<LevelResult> {
  const started = performance.now();
  const title = "tfjs-core's shared op suite";
  const expected = loadExpectedFailures(options.backend, options.expectedFailures);
  const request = { backend: options.backend, imports: options.imports ?? [], filter: options.filter };
  const timeoutMs = options.timeoutMs ?? 15 * 60_000;
  let report = await runChild(request, timeoutMs);
  const crashes: string[] = [];
  for (let retry = 0; retry < (options.retriesOnCrash ?? 1) && report.crashSignal; retry++) {
    crashes.push(report.error ?? report.crashSignal);
    report = await runChild(request, timeoutMs);
  }
  const crashNote = crashes.length
    ? `; ${crashes.length === 1 ? 'one earlier attempt' : `${crashes.length} earlier attempts`} crashed and ${report.ok ? 'a retry ran clean' : 'the retry failed too'}: ${crashes.map((c) => c.split('\n')[0]).join(' | ')}`
    : '';
  let flaky: { name: string; message: string }[] = [];
  const firstUnexpected = report.ok ? report.failed.filter((f) => !matches(f.name, expected.patterns)) : [];
  if (firstUnexpected.length > 0 && firstUnexpected.length <= (options.maxFailuresRetried ?? 20)) {
    const retry = await runChild({ ...request, names: firstUnexpected.map((f) => f.name) }, timeoutMs);
    const passedAgain = new Set(retry.ok ? retry.passed : []);
    flaky = firstUnexpected.filter((f) => passedAgain.has(f.name));
    report = {
      ...report,
      passed: [...report.passed, ...flaky.map((f) => f.name)],
      failed: report.failed.filter((f) => !passedAgain.has(f.name)),
    };
  }
  const flakyNote = flaky.length
    ? `; ${flaky.length} failed once and passed when run again on its own (flaky, counted as passed): ${flaky
        .map(describeFailure)
        .join(' | ')}`
    : '';
  const durationMs = Math.round(performance.now() - started);
  const base = { level: 1 as const, group: 'tfjs-core', maxAbsErr: null, maxRelErr: null, tolerance: null };
  if (!report.ok) {
    const c: CaseResult = {
      ...base,
      name: 'tfjs-core shared suite',
      status: 'fail',
      pass: false,
      message: `${report.error ?? 'failed to run'}${crashNote}`,
      durationMs,
    };
    return { level: 1, title, status: 'fail', cases: [c], durationMs };
  }
  const unexpected = report.failed.filter((f) => !matches(f.name, expected.patterns));
  const expectedNames = report.failed.filter((f) => matches(f.name, expected.patterns)).map((f) => f.name);
  const newPasses = report.passed.filter((n) => matches(n, expected.patterns));
  const ran = report.passed.length + report.failed.length;
  const pass = unexpected.length === 0 && ran > 0;
  const summary =
    `${report.passed.length} passed, ${report.failed.length} failed (${expectedNames.length} expected), ` +
    `${report.pending} pending in ${(report.durationMs / 1000).toFixed(1)} s` +
    (report.isDataSync ? '' : '; async-only backend: sync-read specs skipped') +
    (ran === 0 ? '; no spec matched the filter' : '');
  const cases: CaseResult[] = [
    {
      ...base,
      name: 'tfjs-core shared suite',
      status: pass ? 'pass' : 'fail',
      pass,
      // Name the regressions here too: a CI log often shows only this first case's message.
      message: `${summary}; expected failures: ${expected.source}${crashNote}${flakyNote}${unexpectedNote(unexpected)}`,
      durationMs: report.durationMs,
    },
    ...unexpected.map(
      (f): CaseResult => ({
        ...base,
        name: f.name,
        status: 'fail',
        pass: false,
        message: `regression (not in the expected-failure list): ${f.message}`,
        durationMs: 0,
      }),
    ),
    ...newPasses.map(
      (n): CaseResult => ({
        ...base,
        name: n,
        status: 'pass',
        pass: true,
        message: `listed as an expected failure but passes now: remove it from ${expected.source}`,
        durationMs: 0,
      }),
    ),
  ];
  return {
    level: 1,
    title,
    status: pass ? 'pass' : 'fail',
    cases,
    durationMs,
    level1: {
      passed: report.passed.length,
      failed: report.failed.length,
      pending: report.pending,
      expectedFailures: expectedNames.length,
      unexpectedFailures: unexpected.map((f) => f.name),
      newPasses,
      flaky,
      expectationsSource: expected.source,
      tfjsCoreVersion: report.tfjsCoreVersion,
    },
  };
}

function unexpectedNote(unexpected: { name: string; message: string }[]): string {
  if (unexpected.length === 0) return '';
  const shown = unexpected.slice(0, 3).map(describeFailure);
  const more = unexpected.length > shown.length ? ` | and ${unexpected.length - shown.length} more` : '';
  return `; not expected to fail: ${shown.join(' | ')}${more}`;
}

/** A failed spec in one line of a summary: its name and the start of its message. */
function describeFailure(f: { name: string; message: string }): string {
  return `${f.name}: ${f.message.slice(0, 300)}`;
}
