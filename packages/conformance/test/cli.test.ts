import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@tessera/tensor-core';
import { conformanceCli } from '@tessera/conformance';
import './fixtures/broken-backends.js';

async function cli(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await conformanceCli(args, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const dir = mkdtempSync(join(tmpdir(), 'tessera-conformance-cli-'));

beforeAll(async () => {
  await useBackend('cpu', { log: () => {} });
});

describe('tessera conformance (conformanceCli)', () => {
  it('prints a table and exits 0 when everything passes', async () => {
    const none = join(dir, 'no-fixtures');
    const { code, out } = await cli(['--backend', 'cpu', '--level', '2,3', '--filter', 'gelu', '--fixtures', none]);
    expect(code).toBe(0);
    expect(out).toMatch(/level\s+case\s+max abs err \(rel\)\s+tolerance\s+pass/);
    expect(out).toMatch(/2\s+gelu none\/\[3,7\]\s+0 \(rel 0\)\s+rtol 1\.00e-5 \+ atol 1\.00e-6\s+pass/);
    expect(out).toMatch(
      /level 3 model conformance \(PyTorch fixtures\): NOT AVAILABLE: no fixtures directory: .*no-fixtures does not exist/,
    );
    expect(out).toMatch(/^PASS: 8 passed, 0 failed, 0 skipped; level 3 not available/m);
  });

  it('exits 1 on a failing backend and says what failed', async () => {
    const report = join(dir, 'nomask.md');
    const { code, out } = await cli([
      '--backend',
      'nomask',
      '--level',
      '2',
      '--filter',
      'attention/',
      '--failures-only',
      '--report',
      report,
    ]);
    expect(code).toBe(1);
    expect(out).toMatch(/attention\/padding mask .* FAIL\n\s+-> y: max abs err/);
    expect(out).not.toMatch(/attention\/\[2,3,5,8\]/);
    // The masked cases of all three layouts (head-major, sequence-major, packed) fail.
    expect(out).toMatch(/^FAIL: 21 passed, 8 failed/m);
    const md = readFileSync(report, 'utf8');
    expect(md).toMatch(/^# Conformance: `nomask` vs `cpu`/);
    expect(md).toMatch(/\| 2 \| attention\/padding mask .* \| \*\*FAIL\*\* \| y: max abs err/);
  });

  it('writes a JSON report', async () => {
    const report = join(dir, 'cpu.json');
    const { code } = await cli(['--backend', 'cpu', '--level', '2', '--filter', 'matMul/[3,7]', '--report', report]);
    expect(code).toBe(0);
    const json = JSON.parse(readFileSync(report, 'utf8'));
    expect(json).toMatchObject({ backend: 'cpu', reference: 'cpu', pass: true });
    expect(json.levels[0].cases[0]).toMatchObject({ level: 2, name: 'matMul/[3,7]x[7,5]', pass: true, maxAbsErr: 0 });
  });

  it('rejects bad usage with exit 2 and the usage text', async () => {
    expect((await cli([])).code).toBe(2);
    expect((await cli([])).err).toMatch(/--backend is required[\s\S]*usage: tessera conformance/);
    expect((await cli(['--backend', 'cpu', '--level', '5'])).err).toMatch(/--level must be 1, 2, 3 or 4; got 5/);
    expect((await cli(['--backend', 'cpu', '--report', 'x.txt'])).err).toMatch(/\.md or \.json/);
    expect((await cli(['--backend', 'cpu', '--bogus'])).code).toBe(2);
    const unknown = await cli(['--backend', 'nosuch', '--level', '2']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/Backend "nosuch" is not registered\. Known backends: .*cpu/);
    expect((await cli(['--help'])).code).toBe(0);
  });

  it('--require-all turns a level that is not available into a failure', async () => {
    const { code } = await cli(['--backend', 'cpu', '--level', '3', '--fixtures', join(dir, 'none'), '--require-all']);
    expect(code).toBe(1);
  });
});
