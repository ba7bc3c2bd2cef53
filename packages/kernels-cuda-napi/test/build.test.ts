// The build step: with nvcc (this project's CI has CUDA 13, no GPU) the addon exists, targets
// sm_80 and sm_90a, links no CUDA library but the static runtime, and PTXAS.md covers every
// kernel for both; without nvcc the package still builds and says so.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../src/addon.js';
import { hasNvcc, hosttest, nativeOut, pkgDir } from './helpers.js';

const nvcc = hasNvcc();

describe('build', () => {
  it('always builds the host test binary (g++ only)', () => {
    expect(existsSync(hosttest)).toBe(true);
  });

  it(
    nvcc ? 'built the addon with nvcc (this machine has nvcc)' : 'recorded why the addon was not built (no nvcc here)',
    () => {
      const addon = join(nativeOut, 'tessera_cuda.node');
      if (!nvcc) {
        expect(existsSync(addon)).toBe(false);
        expect(readFileSync(join(nativeOut, 'build-error.txt'), 'utf8')).toMatch(/^built without nvcc/);
        return;
      }
      expect(existsSync(addon)).toBe(true);
      const info = JSON.parse(readFileSync(join(nativeOut, 'build-info.json'), 'utf8'));
      expect(info.archs).toEqual(['80', '90a']);
      // Only the static runtime: no libcudart.so, no cuBLAS (dlopen'ed at run time), no libcuda.
      expect(info.linked.filter((l: string) => /cuda|cublas/.test(l))).toEqual([]);
      const syms = spawnSync('sh', ['-c', `cuobjdump --list-elf ${addon} 2>/dev/null || true`], {
        encoding: 'utf8',
      }).stdout;
      if (syms) {
        expect(syms).toMatch(/sm_80/);
        expect(syms).toMatch(/sm_90a/);
      }
    },
  );

  it.skipIf(!nvcc)('PTXAS.md reports every __global__ kernel for both targets', () => {
    const report = readFileSync(join(pkgDir, 'PTXAS.md'), 'utf8');
    const dir = join(pkgDir, 'native', 'kernels');
    const kernels = readdirSync(dir)
      .filter((f) => f.endsWith('.cu'))
      .flatMap((f) => [...readFileSync(join(dir, f), 'utf8').matchAll(/__global__ void (\w+)\(/g)].map((m) => m[1]!));
    expect(kernels.length).toBeGreaterThanOrEqual(15);
    for (const k of kernels) {
      expect(report).toMatch(new RegExp(`\`${k}\` \\| sm_80 \\| \\d+`));
      expect(report).toMatch(new RegExp(`\`${k}\` \\| sm_90a \\| \\d+`));
    }
    expect(report).toContain('No kernel spills registers.');
  });

  it('without nvcc the build succeeds, writes the reason, and the backend says "built without nvcc"', () => {
    const out = mkdtempSync(join(tmpdir(), 'tessera-cuda-build-'));
    try {
      const r = spawnSync(process.execPath, [join(pkgDir, 'scripts', 'build-native.mjs')], {
        encoding: 'utf8',
        env: { ...process.env, TESSERA_CUDA_NVCC: 'none', TESSERA_CUDA_OUT: out },
      });
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/CUDA addon NOT built: built without nvcc/);
      expect(existsSync(join(out, 'hosttest'))).toBe(true);
      expect(existsSync(join(out, 'tessera_cuda.node'))).toBe(false);
      const load = loadAddon({ addon: join(out, 'tessera_cuda.node'), buildError: join(out, 'build-error.txt') });
      expect(load.error).toBe('cuda unavailable: built without nvcc');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
