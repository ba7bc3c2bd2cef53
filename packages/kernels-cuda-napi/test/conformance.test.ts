// GPU-only: the conformance suite (levels 1-4) for "cuda" against the cpu reference, where the
// backend is available. Elsewhere (CI: nvcc, no GPU) it is one skipped test whose name gives
// the reason, also written for scripts/test.mjs to print; scripts/device-check.sh runs the
// suite on a GPU through the CLI.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { describeConformance, REPORT_DIR } from '../../../tools/testing/conformance.js';

const cuda = await import('@tessera/kernels-cuda-napi');
const status = cuda.cudaBackendStatus();

if (status.available) {
  await describeConformance({ backend: 'cuda', imports: ['@tessera/kernels-cuda-napi'], requireAllLevels: true });
} else {
  mkdirSync(REPORT_DIR, { recursive: true });
  writeFileSync(join(REPORT_DIR, 'cuda.not-run.txt'), `${status.reason.split('\n')[0]}\n`);
  describe('conformance: backend "cuda" (GPU-only)', () => {
    it.skip(`levels 1-4 need a GPU: ${status.reason.split('\n')[0]}`, () => {});
  });
}
