#!/usr/bin/env node
// Runs every package's tests in one vitest run (root vitest.config.ts lists the
// projects) and ends with the plain summary line "N passed, N failed, N skipped".
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const report = join(root, '.tmp', 'vitest-report.json');
mkdirSync(dirname(report), { recursive: true });

// Lint and format first (biome, repo-wide); a finding counts as one failure but the tests still run.
const biome = join(root, 'node_modules', '@biomejs', 'biome', 'bin', 'biome');
const lint = spawnSync(process.execPath, [biome, 'check', '.', '--max-diagnostics=30'], {
  cwd: root,
  stdio: 'inherit',
});
const lintFailed = lint.status !== 0;
if (lintFailed)
  console.error('lint: biome check failed; run `npm run format` and `npx biome check --write .` to fix most findings.');

// WebGPU on lavapipe: when setup made it available, its tests must run, not skip.
const lavapipe = join(root, 'packages', 'kernels-webgpu', 'scripts', 'setup-lavapipe.mjs');
const webgpuReady =
  existsSync(lavapipe) && spawnSync(process.execPath, [lavapipe, '--check'], { stdio: 'ignore' }).status === 0;

const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const args = [
  vitest,
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${report}`,
  ...process.argv.slice(2),
];
const run = spawnSync(process.execPath, args, {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...(webgpuReady ? { TESSERA_REQUIRE_WEBGPU: '1' } : {}) },
});

let passed = 0;
let failed = 0;
let skipped = 0;
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed = r.numPassedTests ?? 0;
  failed =
    (r.numFailedTests ?? 0) +
    (r.testResults ?? []).filter((f) => f.status === 'failed' && !f.assertionResults?.length).length;
  skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
}
if (run.status !== 0 && failed === 0) failed = 1;

// Conformance for every backend that can run here: each report is written to a file and
// printed, and its cases count in the summary.
const cli = join(root, 'apps', 'cli', 'dist', 'bin.js');
const backends = [
  { name: 'cpu', imports: [] },
  {
    name: 'native',
    imports: ['@tessera/kernels-native'],
    needs: join(root, 'packages/kernels-native/dist/native/tessera_native.node'),
  },
  ...(webgpuReady ? [{ name: 'webgpu', imports: ['@tessera/kernels-webgpu'] }] : []),
];
if (!webgpuReady) {
  console.log(
    '\nconformance webgpu: not run, no Vulkan adapter (run packages/kernels-webgpu/scripts/setup-lavapipe.mjs as root)',
  );
}
for (const backend of backends) {
  if (backend.needs && !existsSync(backend.needs)) {
    const why = join(root, 'packages/kernels-native/dist/native/build-error.txt');
    console.log(
      `\nconformance ${backend.name}: not run, the native addon is not built${existsSync(why) ? ` (${readFileSync(why, 'utf8').trim()})` : ''}`,
    );
    failed += 1;
    continue;
  }
  const report = join(root, '.tmp', 'conformance', `${backend.name}.md`);
  const args = [
    cli,
    'conformance',
    '--backend',
    backend.name,
    ...backend.imports.flatMap((m) => ['--import', m]),
    '--report',
    report,
  ];
  const conf = spawnSync(process.execPath, args, {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  });
  const text = `${conf.stdout ?? ''}${conf.stderr ?? ''}`;
  console.log(`\n===== conformance report: ${backend.name} (${report}) =====`);
  console.log(existsSync(report) ? readFileSync(report, 'utf8') : text);
  // The suite's own summary line ("PASS: 232 passed, 0 failed"), not level 1's spec counts.
  const counts = [...text.matchAll(/(?:PASS|FAIL): (\d+) passed, (\d+) failed/g)].at(-1);
  if (counts) {
    passed += Number(counts[1]);
    failed += Number(counts[2]);
  }
  if (conf.status !== 0 && (!counts || Number(counts[2]) === 0)) failed += 1;
}
if (lintFailed) failed += 1;
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : (run.status ?? 1));
