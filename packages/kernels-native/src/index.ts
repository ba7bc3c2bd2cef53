/**
 * @tessera/kernels-native — backend "native": an N-API addon (C++17, a thread pool,
 * OpenBLAS sgemm) over tfjs-backend-cpu's storage. The hot kernels (matmul, the fused
 * ops forward and backward, embedding gather and scatter-add) run natively on the cpu
 * backend's own Float32Arrays; every other kernel is the cpu backend's, so the backend is
 * complete from day one. Where the addon is not built, the backend says why and "auto"
 * picks cpu.
 */
import '@tessera/kernels-cpu';
import { registerCpuDerivedBackend } from '@tessera/kernels-cpu';
import { registerBackend, registerFusedKernels, TesseraError } from '@tessera/tensor-core';
import * as tfc from '@tessera/tensor-core/tfjs';
import { type CpuFeatures, defaultThreadCount, loadAddon, type NativeAddon } from './addon.js';
import { createNativeBackend, guardViews } from './backend.js';
import { bf16Support } from './bf16.js';
import { makeKernels } from './kernels.js';
import { BufferPool, type PoolStats } from './pool.js';

export type { CpuFeatures, NativeAddon } from './addon.js';
export type { PoolStats } from './pool.js';
export { INT8_PATHS, type Int8Path, int8Dispatch } from './int8.js';

const BACKEND_NAME = 'native';
const loaded = loadAddon();
const pool = new BufferPool(undefined, loaded.addon ? alignedArrays(loaded.addon) : undefined);
const kernels = loaded.addon ? makeKernels({ addon: loaded.addon, pool }) : undefined;

/**
 * Float32Arrays whose data starts on a 64-byte boundary: a view into an ArrayBuffer 64 bytes
 * longer, at the offset the addon reads off its address. The GEMM's rows then fill whole
 * cache lines (V8 puts large backing stores 16 bytes past a page boundary).
 */
function alignedArrays(addon: NativeAddon): (length: number) => Float32Array {
  return (length) => {
    const buffer = new ArrayBuffer(length * Float32Array.BYTES_PER_ELEMENT + 64);
    const skip = addon.alignmentSkip(buffer);
    return new Float32Array(buffer, skip % Float32Array.BYTES_PER_ELEMENT === 0 ? skip : 0, length);
  };
}

/** Kernel names the native backend runs in C++ (everything else is the cpu backend's). */
export const nativeKernelNames: readonly string[] = kernels
  ? [...Object.keys(kernels.standard), ...Object.keys(kernels.fused)]
  : [];

/** The one way a tfjs (non-fused) kernel lands on "native": it replaces what was there. */
function setNativeKernel(kernel: Omit<tfc.KernelConfig, 'backendName'>): void {
  if (tfc.getKernel(kernel.kernelName, BACKEND_NAME)) tfc.unregisterKernel(kernel.kernelName, BACKEND_NAME);
  tfc.registerKernel({ ...kernel, backendName: BACKEND_NAME });
}

if (kernels) {
  // Priority 2 (> cpu's 1) only matters for code that uses tfjs without useBackend().
  // Fused kernels are not copied from cpu: every one has a native kernel, registered below.
  registerCpuDerivedBackend(BACKEND_NAME, {
    priority: 2,
    create: () => createNativeBackend(pool),
    withFusedKernels: false,
  });
  // Inherited cpu kernels may return views of their inputs: guard them. Ours never do (their
  // own cpu fallbacks are guarded in standard.ts).
  for (const kernel of tfc.getKernelsForBackend(BACKEND_NAME)) {
    if (!(kernel.kernelName in kernels.standard)) {
      setNativeKernel({ ...kernel, kernelFunc: guardViews(kernel.kernelFunc, pool) });
    }
  }
  for (const [kernelName, kernelFunc] of Object.entries(kernels.standard)) setNativeKernel({ kernelName, kernelFunc });
  registerFusedKernels(BACKEND_NAME, kernels.fused);
}

/**
 * The output-buffer pool of backend "native": what it holds and how often it served an
 * allocation. `clear` drops every pooled buffer; `capMB` bounds what it keeps (default
 * TESSERA_NATIVE_POOL_MB, else 1024).
 */
export function nativePool(): { stats(): PoolStats; clear(): void; setCapMB(mb: number): void } {
  return {
    stats: () => pool.stats(),
    clear: () => pool.clear(),
    setCapMB: (mb: number) => {
      if (!(mb >= 0)) throw new TesseraError(`nativePool().setCapMB: need a number of MiB >= 0; got ${mb}.`);
      pool.setCapBytes(mb * 2 ** 20);
    },
  };
}

registerBackend(
  BACKEND_NAME,
  () => {
    if (!loaded.addon) throw new TesseraError(`Backend "native" is not available: ${loaded.error}.`);
  },
  {
    description: 'Native CPU backend: N-API addon with OpenBLAS and threads over tfjs-backend-cpu storage',
    priority: 20,
    package: '@tessera/kernels-native',
    isAvailable: () =>
      loaded.addon
        ? {
            available: true,
            reason: `native addon, ${describeBlas()}, ${loaded.addon.getNumThreads()} threads`,
            hardware: true,
          }
        : { available: false, reason: loaded.error },
    matmulPrecision: () =>
      loaded.addon
        ? bf16Support(loaded.addon)
        : { supported: false, reason: `backend native is not available: ${loaded.error}` },
  },
);

function describeBlas(): string {
  const config = loaded.addon!.blasConfig();
  const m = /^OpenBLAS (\S+).*?\b(\w+) MAX_THREADS/.exec(config);
  const blas = m ? `OpenBLAS ${m[1]} (${m[2]})` : config;
  const own = loaded.addon!.ownGemm();
  return own ? `${blas}, own GEMM on ${own}` : blas;
}

/** The instruction set the large products' own GEMM runs on ("avx512f", "avx2"), or "" where they go to sgemm. */
export function nativeOwnGemm(): string {
  return requireAddon().ownGemm();
}

/** Whether the addon loaded, and if not why (one line, naming what to install). */
export function nativeStatus(): { available: boolean; reason: string } {
  return loaded.addon ? { available: true, reason: describeBlas() } : { available: false, reason: loaded.error };
}

/**
 * Threads for the native kernels and OpenBLAS (default: TESSERA_NATIVE_THREADS, else every
 * core). Results are identical for every thread count except matmuls, whose OpenBLAS
 * blocking may depend on it; a given count always gives the same bits.
 */
export function setNumThreads(n: number = defaultThreadCount()): void {
  if (!Number.isInteger(n) || n < 1) throw new TesseraError(`setNumThreads: need an integer >= 1; got ${n}.`);
  requireAddon().setNumThreads(n);
}

/** What the running CPU has; the int8 and bf16 kernels use VNNI / AVX-512 BF16 only where these say so. */
export function nativeCpuFeatures(): CpuFeatures {
  return requireAddon().cpuFeatures();
}

export function getNumThreads(): number {
  return requireAddon().getNumThreads();
}

function requireAddon() {
  if (!loaded.addon) throw new TesseraError(`Backend "native" is not available: ${loaded.error}.`);
  return loaded.addon;
}
