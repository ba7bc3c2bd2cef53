import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

// The recipe a third-party backend follows, proven from outside the workspace: the packed
// tarballs are installed into a fresh package in a temp dir, which registers backend
// "echo" by re-exporting every cpu kernel under that name and runs the suite from its own
// test file, exactly as its CI would.
const root = resolve(import.meta.dirname, '..', '..', '..');
const work = mkdtempSync(join(tmpdir(), 'tessera-oot-'));
const backendDir = join(work, 'tessera-backend-echo');

const BACKEND_INDEX = `// tessera-backend-echo: every cpu kernel, re-exported under the name "echo".
import { registerBackend, tf } from '@tessera/tensor-core';
import { createCpuBackend } from '@tessera/kernels-cpu';

tf.registerBackend('echo', createCpuBackend, 0);
for (const kernel of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...kernel, backendName: 'echo' });
registerBackend('echo', () => undefined, {
  description: 'cpu kernels under another name',
  priority: 0,
  package: 'tessera-backend-echo',
  isAvailable: () => ({ available: true, reason: 'pure JS' }),
});
`;

// The backend's own conformance test (what the README shows).
const BACKEND_TEST = `import { fileURLToPath } from 'node:url';
import { formatTable, runConformance } from '@tessera/conformance';
import '../index.js';

const result = await runConformance({
  backend: 'echo',
  levels: [1, 2, 3],
  imports: [fileURLToPath(new URL('../index.js', import.meta.url))],
  // Level 1 restricted to one family of specs to keep this test quick; levels 2 and 3 run whole.
  level1: { filter: process.argv[2] },
  // Level 3's PyTorch fixtures come with the installed @tessera/conformance: nothing to pass.
  requireAllLevels: true,
});
console.error(formatTable(result, { onlyFailures: true }));
console.log(JSON.stringify({
  pass: result.pass,
  levels: result.levels.map((l) => ({
    level: l.level,
    status: l.status,
    reason: l.reason,
    cases: l.cases.length,
    names: l.level === 3 ? l.cases.map((c) => c.name) : undefined,
    level1: l.level1,
  })),
}));
process.exit(result.pass ? 0 : 1);
`;

beforeAll(() => {
  const tarballs: Record<string, string> = {};
  for (const dir of ['tensor-core', 'kernels-cpu', 'transformer', 'conformance']) {
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', work], {
      cwd: join(root, 'packages', dir),
      encoding: 'utf8',
    });
    const [info] = JSON.parse(out) as { name: string; filename: string }[];
    tarballs[info!.name] = `file:${join(work, info!.filename)}`;
  }
  mkdirSync(join(backendDir, 'test'), { recursive: true });
  writeFileSync(
    join(backendDir, 'package.json'),
    JSON.stringify(
      {
        name: 'tessera-backend-echo',
        version: '0.0.1',
        private: true,
        type: 'module',
        main: 'index.js',
        dependencies: {
          '@tessera/tensor-core': tarballs['@tessera/tensor-core'],
          '@tessera/kernels-cpu': tarballs['@tessera/kernels-cpu'],
        },
        devDependencies: { '@tessera/conformance': tarballs['@tessera/conformance'] },
        // The packages depend on each other by version: point those at the tarballs too.
        overrides: tarballs,
      },
      null,
      2,
    ),
  );
  writeFileSync(join(backendDir, 'index.js'), BACKEND_INDEX);
  writeFileSync(join(backendDir, 'test', 'conformance.mjs'), BACKEND_TEST);
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts'], {
    cwd: backendDir,
    stdio: 'pipe',
  });
}, 300_000);

describe('an out-of-tree backend runs the suite from its own package', () => {
  it('levels 1, 2 and 3 pass on "echo", level 3 from the fixtures inside the installed tarball', () => {
    const out = execFileSync(process.execPath, ['test/conformance.mjs', 'matmul'], {
      cwd: backendDir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const r = JSON.parse(out.trim().split('\n').pop()!);
    expect(r.pass).toBe(true);
    expect(r.levels[0]).toMatchObject({ level: 1, status: 'pass' });
    expect(r.levels[0].level1.passed).toBeGreaterThan(20);
    expect(r.levels[0].level1.failed).toBe(0);
    expect(r.levels[1]).toMatchObject({ level: 2, status: 'pass' });
    expect(r.levels[1].cases).toBeGreaterThan(200);
    expect(r.levels[2]).toMatchObject({ level: 3, status: 'pass', cases: 5 });
    expect(r.levels[2].names.map((n: string) => n.split('/')[0])).toEqual([
      'gpt2',
      'bert-pretraining',
      'bert-classification',
      't5-v1_0',
      't5-v1_1',
    ]);
    // The fixtures were read from the install, not from this checkout.
    const installed = join(backendDir, 'node_modules', '@tessera', 'conformance');
    expect(existsSync(join(installed, 'fixtures', 'gpt2', 'expected.safetensors'))).toBe(true);
    expect(realpathSync(installed).startsWith(root)).toBe(false);
  });
});
