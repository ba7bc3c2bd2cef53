/**
 * @tessera/kernels-cuda-napi — backend "cuda": a tfjs KernelBackend whose tensors live in GPU
 * memory (see backend.ts), with cuBLASLt GEMMs (dlopen'ed at run time) and CUDA kernels for
 * the fused ops, elementwise/reduction/softmax and data movement (kernels/). Every other
 * kernel runs as the cpu backend's on host copies (fallback.ts), counted.
 *
 * Importing registers the backend and its kernels and loads the addon, but touches no GPU:
 * the first isAvailable() (or useBackend) probes the driver and the device and loads
 * cuBLASLt, and says which of them is missing.
 */
import { createCpuBackend } from '@tessera/kernels-cpu';
import { registerBackend, TesseraError } from '@tessera/tensor-core';
import * as tfc from '@tessera/tensor-core/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type AllocatorStats, type CudaAddon, type CudaKernels, loadAddon } from './addon.js';
export { loadAddon } from './addon.js';
import { type CudaStatus, cudaStatus } from './availability.js';
import { CudaBackend } from './backend.js';
import { cublasSearchDirs } from './cublas_search.js';
import { registerCudaKernels } from './register.js';

export type { AllocatorStats, CudaAddon, CudaInit, CudaProbe, DeviceMemory, LoadAttempt } from './addon.js';
export { type CudaStatus, type CudaStatusKind, cudaStatus, probeProblem, runsOn } from './availability.js';
export { CudaBackend } from './backend.js';
export {
  cublasNotFoundMessage,
  cublasSearchDirs,
  pythonSiteDirs,
  type SearchDir,
  type SearchEnv,
} from './cublas_search.js';
export { HOST_FALLBACK, hostFallback } from './fallback.js';
export * as layout from './kernels/layout.js';
export { registerCudaKernels } from './register.js';

export const BACKEND_NAME = 'cuda';
const loaded = loadAddon();

/** The targets the addon was built for (build-info.json), for the device check. */
function builtArchs(): string[] {
  const info = fileURLToPath(new URL('./native/build-info.json', import.meta.url));
  if (!existsSync(info)) return ['80', '90a'];
  return (JSON.parse(readFileSync(info, 'utf8')) as { archs: string[] }).archs;
}

let status: (CudaStatus & { init?: unknown }) | undefined;

/** Whether the backend can run here and why (not); probes once, then remembers. */
export function cudaBackendStatus(): CudaStatus {
  status ??= cudaStatus(
    loaded,
    builtArchs(),
    () => cublasSearchDirs(Math.floor((loaded.addon?.probe().runtimeVersion ?? 13000) / 1000)),
    (dirs) => loaded.addon!.init(dirs),
  );
  return { available: status.available, kind: status.kind, reason: status.reason };
}

/** Kernels call the addon; where it did not load they exist (for `tessera ops`) but cannot run. */
const kernelAddon: CudaKernels =
  loaded.addon ??
  (new Proxy({} as CudaKernels, {
    get: () => () => {
      throw new TesseraError(`Backend "cuda" is not available: ${cudaBackendStatus().reason}.`);
    },
  }) as CudaKernels);

const registered = registerCudaKernels(BACKEND_NAME, kernelAddon, { tf32: process.env.TESSERA_CUDA_TF32 === '1' });

/** tfjs kernels with a device implementation (each may still hand unusual cases to the host). */
export const cudaKernelNames: readonly string[] = registered.device;
/** tfjs kernels that always run as the cpu kernel through host staging. */
export const cudaHostKernelNames: readonly string[] = registered.host;

// tfjs priority 0: plain tfjs never picks cuda implicitly; useBackend decides.
tfc.registerBackend(
  BACKEND_NAME,
  () => {
    const s = cudaBackendStatus();
    if (!s.available) throw new TesseraError(`Backend "cuda" is not available here: ${s.reason}.`);
    return new CudaBackend(loaded.addon as CudaAddon, createCpuBackend());
  },
  0,
);

registerBackend(
  BACKEND_NAME,
  () => {
    const s = cudaBackendStatus();
    if (!s.available) throw new TesseraError(`Backend "cuda" is not available here: ${s.reason}.`);
  },
  {
    description: 'CUDA backend: N-API addon, cuBLASLt GEMMs, CUDA kernels, caching allocator, one stream',
    priority: 40,
    package: '@tessera/kernels-cuda-napi',
    isAvailable: () => {
      const s = cudaBackendStatus();
      return { available: s.available, reason: s.reason, hardware: true };
    },
  },
);

function activeCudaBackend(): CudaBackend {
  const b = tfc.findBackend(BACKEND_NAME);
  if (!(b instanceof CudaBackend)) {
    throw new TesseraError('cuda: the backend has not been started (useBackend("cuda") first).');
  }
  return b;
}

/** Host fallbacks since the backend started, by kernel name: what to move onto the device next. */
export function cudaFallbackCounts(): Record<string, number> {
  return Object.fromEntries([...activeCudaBackend().fallbacks].sort((a, b) => b[1] - a[1]));
}

/** The caching allocator's figures (allocated, reserved, peaks, cudaMalloc calls, cache hits, ...). */
export function cudaMemoryStats(): AllocatorStats {
  return activeCudaBackend().device.stats();
}

/** Returns every cached, wholly free segment to the driver (torch.cuda.empty_cache()). */
export function cudaEmptyCache(): void {
  activeCudaBackend().device.emptyCache();
}
