// Availability: the reason for each failing layer (pure functions over the addon's probe),
// and the package on this machine: registered, unavailable with the right reason, and
// skipped by "auto".
import { existsSync } from 'node:fs';
import { registry, useBackend } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';
import type { CudaAddon, CudaProbe } from '../src/addon.js';
import { cudaStatus, probeProblem, runsOn } from '../src/availability.js';
import { hasNvcc } from './helpers.js';

const probe = (over: Partial<CudaProbe>): CudaProbe => ({
  runtimeVersion: 13000,
  driverVersion: 13000,
  deviceCount: 1,
  error: null,
  errorString: null,
  devices: [{ name: 'NVIDIA H200', major: 9, minor: 0, totalMemory: 141 * 2 ** 30, multiProcessors: 132 }],
  ...over,
});
const archs = ['80', '90a'];

describe('availability reasons', () => {
  it('no driver', () => {
    const p = probe({ driverVersion: 0, deviceCount: 0, error: 'cudaErrorInsufficientDriver', devices: [] });
    expect(probeProblem(p, archs)).toMatchObject({
      kind: 'no-driver',
      reason: expect.stringMatching(/^cuda unavailable: no driver/),
    });
  });

  it('a driver older than the runtime', () => {
    const p = probe({ driverVersion: 12040, deviceCount: 0, error: 'cudaErrorInsufficientDriver', devices: [] });
    expect(probeProblem(p, archs)!.reason).toBe(
      'cuda unavailable: the NVIDIA driver supports CUDA 12.4 but the addon was built with CUDA 13.0 (update the driver)',
    );
  });

  it('no device', () => {
    const p = probe({ deviceCount: 0, error: 'cudaErrorNoDevice', devices: [] });
    expect(probeProblem(p, archs)).toMatchObject({
      kind: 'no-device',
      reason: 'cuda unavailable: no device (the driver sees no CUDA GPU)',
    });
  });

  it('a device the build has no kernels for, and the ones it has', () => {
    const blackwell = probe({
      devices: [{ name: 'NVIDIA B200', major: 10, minor: 0, totalMemory: 1, multiProcessors: 1 }],
    });
    expect(probeProblem(blackwell, archs)!.reason).toMatch(
      /NVIDIA B200 is sm_100 .* sm_80, sm_90a only \(rebuild with TESSERA_CUDA_ARCHS=100\)/,
    );
    expect(probeProblem(probe({}), archs)).toBeNull();
    expect(runsOn(archs, 8, 0)).toBe(true);
    expect(runsOn(archs, 8, 6)).toBe(true); // sm_80 SASS runs on 8.x
    expect(runsOn(archs, 9, 0)).toBe(true);
    expect(runsOn(['90a'], 9, 0)).toBe(true);
    expect(runsOn(['90a'], 8, 0)).toBe(false);
    expect(runsOn(['86'], 8, 0)).toBe(false);
    expect(runsOn(archs, 12, 0)).toBe(false);
  });

  const fakeAddon = (p: CudaProbe) => ({ probe: () => p }) as unknown as CudaAddon;

  it('built without nvcc', () => {
    const s = cudaStatus(
      { error: 'cuda unavailable: built without nvcc' },
      archs,
      () => [],
      () => {
        throw new Error('not reached');
      },
    );
    expect(s).toMatchObject({ available: false, kind: 'no-nvcc', reason: 'cuda unavailable: built without nvcc' });
  });

  it('cuBLAS not found: every place searched, in the order searched', () => {
    const dirs = [
      { dir: '', why: 'the dynamic loader path (LD_LIBRARY_PATH, ld.so.cache)' },
      { dir: '/opt/cuda/lib64', why: '$CUDA_HOME/lib64' },
    ];
    let asked: string[] = [];
    const s = cudaStatus(
      { addon: fakeAddon(probe({})) },
      archs,
      () => dirs,
      (d) => {
        asked = d;
        return {
          cublasLoaded: false,
          attempts: [
            { dir: '', file: 'libcublasLt.so.13', error: 'libcublasLt.so.13: cannot open shared object file' },
            { dir: '/opt/cuda/lib64', file: '/opt/cuda/lib64/libcublasLt.so.13', error: 'nope' },
          ],
        };
      },
    );
    expect(asked).toEqual(['', '/opt/cuda/lib64']);
    expect(s.kind).toBe('no-cublas');
    expect(s.reason).toMatch(/^cuda unavailable: cuBLAS not found/);
    expect(s.reason).toContain('/opt/cuda/lib64/libcublasLt.so.13 ($CUDA_HOME/lib64): nope');
  });

  it('available: names the device and the cuBLASLt it loaded', () => {
    const s = cudaStatus(
      { addon: fakeAddon(probe({})) },
      archs,
      () => [],
      () => ({
        cublasLoaded: true,
        cublasPath: '/x/libcublasLt.so.13',
        cublasVersion: 130100,
        attempts: [],
      }),
    );
    expect(s).toMatchObject({ available: true, kind: 'ok' });
    expect(s.reason).toBe('NVIDIA H200 (sm_90, 141 GiB), cuBLASLt /x/libcublasLt.so.13');
  });
});

// This machine: the package as a user imports it (dist).
const gpu = existsSync('/dev/nvidia0');

describe('backend "cuda" on this machine', () => {
  it('registers with priority 40 and reports why it is not available', async () => {
    const cuda = await import('@tessera/kernels-cuda-napi');
    const meta = registry.backend.get('cuda').meta as {
      priority: number;
      isAvailable(): { available: boolean; reason: string };
    };
    expect(meta.priority).toBe(40);
    const status = cuda.cudaBackendStatus();
    if (gpu) return; // a GPU machine: the device check covers it
    expect(status.available).toBe(false);
    if (!hasNvcc()) {
      expect(status).toMatchObject({ kind: 'no-nvcc', reason: 'cuda unavailable: built without nvcc' });
    } else {
      // nvcc but no GPU (this project's CI): the addon loads and the probe finds no driver or no device.
      expect(['no-driver', 'no-device', 'old-driver']).toContain(status.kind);
    }
    expect(meta.isAvailable()).toMatchObject({ available: false, reason: status.reason });
  });

  it.skipIf(gpu)(
    '"auto" moves on to the next backend and says why; asking for "cuda" by name fails with the reason',
    async () => {
      const cuda = await import('@tessera/kernels-cuda-napi');
      const lines: string[] = [];
      const choice = await useBackend('auto', { log: (l) => lines.push(l) });
      expect(choice.name).not.toBe('cuda');
      expect(choice.notice).toContain(`cuda: ${cuda.cudaBackendStatus().reason}`);
      await expect(useBackend('cuda')).rejects.toThrow(
        `Backend "cuda" is not available here: ${cuda.cudaBackendStatus().reason}`,
      );
    },
  );
});
