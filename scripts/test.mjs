#!/usr/bin/env node
// Runs every package's tests in one vitest run (root vitest.config.ts lists the
// projects), the conformance suite of every backend included, prints each backend's
// conformance report and ends with the plain summary line "N passed, N failed, N skipped".
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
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

// Reports from an earlier run must not pass for this one's.
const reports = join(root, '.tmp', 'conformance');
rmSync(reports, { recursive: true, force: true });

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

// Conformance runs inside the vitest run above: each backend package instantiates the
// suite in its test/conformance.test.ts (one test per case, counted in the totals) and
// writes its report to .tmp/conformance/<backend>.md, printed here.
const backends = [
  { name: 'cpu', pkg: 'kernels-cpu' },
  { name: 'native', pkg: 'kernels-native' },
  { name: 'webgpu', pkg: 'kernels-webgpu' },
  { name: 'cuda', pkg: 'kernels-cuda-napi' },
];
for (const backend of backends) {
  const file = join(reports, `${backend.name}.md`);
  if (existsSync(file)) {
    console.log(`\n===== conformance report: ${backend.name} (${file}) =====`);
    console.log(readFileSync(file, 'utf8'));
    continue;
  }
  let why = `its tests (packages/${backend.pkg}/test/conformance.test.ts) wrote no report; see their result above`;
  // A backend that cannot run here (cuda without a GPU) leaves its reason instead of a report.
  const notRun = join(reports, `${backend.name}.not-run.txt`);
  if (existsSync(notRun)) why = readFileSync(notRun, 'utf8').trim();
  if (backend.name === 'webgpu' && !webgpuReady) {
    why = 'no Vulkan adapter (run packages/kernels-webgpu/scripts/setup-lavapipe.mjs as root)';
  }
  const buildError = join(root, 'packages/kernels-native/dist/native/build-error.txt');
  if (backend.name === 'native' && existsSync(buildError)) {
    why += ` (the native addon did not build: ${readFileSync(buildError, 'utf8').trim()})`;
  }
  console.log(`\nconformance ${backend.name}: not run, ${why}`);
}
if (lintFailed) failed += 1;
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : (run.status ?? 1));
