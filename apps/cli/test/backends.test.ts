// `tessera ops` and `tessera conformance` for a backend whose package the CLI does not import
// up front: it is imported by name, and an unavailable one is reported with its reason.
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '@tessera/cli';
import { capture } from './capture.js';

afterEach(() => vi.restoreAllMocks());

// On a machine with an NVIDIA GPU the cuda backend may well be available: these check the other case.
describe.skipIf(existsSync('/dev/nvidia0'))('backend "cuda" where it cannot run', () => {
  it('tessera ops --backend cuda: imports the package, says why it is unavailable, lists its kernels', async () => {
    const { out } = capture();
    expect(await main(['ops', '--backend', 'cuda'])).toBe(0);
    const text = out.join('\n');
    expect(text).toMatch(/^backend cuda: not available here \(cuda unavailable: /m);
    expect(text).toMatch(/TesseraAttention +kernel/);
    expect(text).toMatch(/tfjs kernels: \d+ on the backend, \d+ through host staging/);
  });

  it('tessera conformance --backend cuda: a clean usage-level error with the reason', async () => {
    const { err } = capture();
    expect(await main(['conformance', '--backend', 'cuda', '--level', '2'])).toBe(2);
    expect(err.join('\n')).toMatch(/^tessera conformance: Backend "cuda" is not available here: cuda unavailable: /m);
  });
});
