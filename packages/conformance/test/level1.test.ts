import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runConformance } from '@tessera/conformance';

const brokenBackends = join(import.meta.dirname, 'fixtures', 'broken-backends.js');

describe("level 1: tfjs-core's shared suite, in a child process", () => {
  it('cpu passes every spec (4,227 passed, 0 failed upstream)', async () => {
    const r = await runConformance({ backend: 'cpu', levels: [1] });
    const l1 = r.levels[0]!;
    expect(l1.status, l1.cases[0]!.message).toBe('pass');
    expect(l1.level1).toMatchObject({ failed: 0, expectedFailures: 0, unexpectedFailures: [], newPasses: [] });
    expect(l1.level1!.passed).toBe(4227);
    expect(l1.level1!.pending).toBe(5);
    expect(l1.level1!.tfjsCoreVersion).toBe('4.22.0');
    expect(l1.level1!.expectationsSource).toMatch(/expectations\/level1\/cpu\.json$/);
    expect(l1.cases[0]!.message).toMatch(/^4227 passed, 0 failed \(0 expected\), 5 pending in [\d.]+ s/);
  });

  // (A softmax 0.02% off passes tfjs-core's specs, which allow 1e-3; level 2 catches it.)
  it('a backend registered by an imported module runs there too; a regression fails by name', async () => {
    const r = await runConformance({
      backend: 'softmaxbug',
      levels: [1],
      imports: [brokenBackends],
      filter: 'softmax',
    });
    const l1 = r.levels[0]!;
    expect(l1.status).toBe('fail');
    expect(l1.level1!.failed).toBeGreaterThan(3);
    expect(l1.level1!.passed).toBeGreaterThan(0);
    const regressions = l1.cases.slice(1);
    expect(regressions.length).toBe(l1.level1!.failed);
    expect(regressions[0]!.name).toMatch(/softmax softmaxbug \{\}/);
    expect(regressions[0]!.message).toMatch(
      /^regression \(not in the expected-failure list\): (Error: )?Arrays differ: actual\[\d+\]/,
    );
    // The summary names the first regressions too, so a one-line log says which spec broke.
    expect(l1.cases[0]!.message).toMatch(
      /; not expected to fail: softmax softmaxbug \{\} .*Arrays differ.* \| and \d+ more$/,
    );
  });

  it('listed failures are expected; a listed spec that passes is reported as a new pass', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-l1-'));
    const list = join(dir, 'softmaxbug.json');
    writeFileSync(
      list,
      JSON.stringify({
        failures: ['softmax softmaxbug {} *', 'logSoftmax softmaxbug {} *'],
      }),
    );
    const r = await runConformance({
      backend: 'softmaxbug',
      levels: [1],
      imports: [brokenBackends],
      filter: 'softmax',
      level1: { expectedFailures: list },
    });
    const l1 = r.levels[0]!;
    expect(l1.status, l1.cases.map((c) => `${c.name}: ${c.message}`).join('\n')).toBe('pass');
    expect(l1.level1!.expectedFailures).toBe(l1.level1!.failed);
    // logSoftmax does not use the Softmax kernel: its listed specs pass and are reported.
    expect(l1.level1!.newPasses.some((n) => n.startsWith('logSoftmax softmaxbug {}'))).toBe(true);
    expect(l1.level1!.failed).toBeGreaterThan(3);
    expect(l1.cases.find((c) => c.name.startsWith('logSoftmax'))?.message).toMatch(/passes now: remove it from/);
  });

  it('a backend that crashes the child is reported with the spec it was running', async () => {
    const r = await runConformance({ backend: 'crashy', levels: [1], imports: [brokenBackends], filter: 'abs ' });
    expect(r.pass).toBe(false);
    expect(r.levels[0]!.cases[0]!.message).toMatch(
      /child process was killed by SIGKILL .* while running spec "abs crashy \{\} /,
    );
  });

  it('a crash that does not repeat is retried once and reported; one that repeats still fails', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-l1-crash-'));
    process.env.TESSERA_CRASH_ONCE_MARKER = join(dir, 'crashed');
    try {
      const r = await runConformance({ backend: 'crashonce', levels: [1], imports: [brokenBackends], filter: 'abs ' });
      const l1 = r.levels[0]!;
      expect(l1.status, l1.cases[0]!.message).toBe('pass');
      expect(l1.cases[0]!.message).toMatch(/one earlier attempt crashed and a retry ran clean: .*killed by SIGKILL/);
    } finally {
      delete process.env.TESSERA_CRASH_ONCE_MARKER;
    }
    const always = await runConformance({ backend: 'crashy', levels: [1], imports: [brokenBackends], filter: 'abs ' });
    expect(always.levels[0]!.cases[0]!.message).toMatch(/one earlier attempt crashed and the retry failed too/);
  });

  it('a spec that fails once is run again on its own: passing then, it is named as flaky', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-l1-flaky-'));
    process.env.TESSERA_FAIL_ONCE_MARKER = join(dir, 'failed');
    try {
      const r = await runConformance({ backend: 'failonce', levels: [1], imports: [brokenBackends], filter: 'abs ' });
      const l1 = r.levels[0]!;
      expect(l1.status, l1.cases[0]!.message).toBe('pass');
      expect(l1.level1!.failed).toBe(0);
      expect(l1.level1!.flaky).toHaveLength(1);
      expect(l1.level1!.flaky[0]!.name).toMatch(/^abs failonce \{\} /);
      expect(l1.cases[0]!.message).toMatch(
        /; 1 failed once and passed when run again on its own \(flaky, counted as passed\): abs failonce \{\} .*: /,
      );
    } finally {
      delete process.env.TESSERA_FAIL_ONCE_MARKER;
    }
    // A failure that repeats is a regression: the softmax bug fails on its retry too.
    const bug = await runConformance({
      backend: 'softmaxbug',
      levels: [1],
      imports: [brokenBackends],
      filter: 'softmax',
    });
    expect(bug.levels[0]!.level1!.flaky).toEqual([]);
    // Retries off: the one failure stands.
    process.env.TESSERA_FAIL_ONCE_MARKER = join(dir, 'failed-again');
    try {
      const off = await runConformance({
        backend: 'failonce',
        levels: [1],
        imports: [brokenBackends],
        filter: 'abs ',
        level1: { maxFailuresRetried: 0 },
      });
      expect(off.pass).toBe(false);
      expect(off.levels[0]!.level1!.unexpectedFailures).toHaveLength(1);
    } finally {
      delete process.env.TESSERA_FAIL_ONCE_MARKER;
    }
  });

  it('says why when the backend does not exist in the child', async () => {
    const { registerCpuDerivedBackend } = await import('@tessera/kernels-cpu');
    registerCpuDerivedBackend('onlyhere');
    const r = await runConformance({ backend: 'onlyhere', levels: [1], filter: 'abs' });
    expect(r.pass).toBe(false);
    expect(r.levels[0]!.cases[0]!.message).toMatch(/"onlyhere" is not registered in the child process.*as an import/);
  });
});
