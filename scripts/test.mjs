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
  env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
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
if (lintFailed) failed += 1;
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : (run.status ?? 1));
