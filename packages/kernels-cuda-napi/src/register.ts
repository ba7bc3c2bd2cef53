import { isFusedKernelName, registerFusedKernels, TesseraError } from '@tessera/tensor-core';
import * as tfc from '@tessera/tensor-core/tfjs';
import type { CudaKernels } from './addon.js';
import { hostFallback } from './fallback.js';
import { fusedKernels } from './kernels/fused.js';
import { standardKernels } from './kernels/standard.js';

/**
 * Registers every kernel of a CUDA backend under `backendName`: the device kernels
 * (kernels/standard.ts, kernels/fused.ts) over `addon`, and every other kernel the cpu
 * backend has through host staging. The package registers "cuda" with the real addon; the
 * tests register a backend over a fake device with the same code.
 */
export function registerCudaKernels(
  backendName: string,
  addon: CudaKernels,
  options: { tf32?: boolean } = {},
): { device: string[]; host: string[] } {
  const fallbacks = new Map<string, tfc.KernelFunc>();
  const fallback = (name: string): tfc.KernelFunc => {
    let f = fallbacks.get(name);
    if (!f) {
      const cpu = tfc.getKernel(name, 'cpu');
      if (!cpu) throw new TesseraError(`${backendName}: no device kernel and no cpu kernel for ${name}.`);
      f = hostFallback(name, cpu.kernelFunc);
      fallbacks.set(name, f);
    }
    return f;
  };
  const context = { addon, tf32: options.tf32 ?? false, fallback };
  const standard = standardKernels(context);
  const set = (kernelName: string, kernelFunc: tfc.KernelFunc) => {
    if (tfc.getKernel(kernelName, backendName)) tfc.unregisterKernel(kernelName, backendName);
    tfc.registerKernel({ kernelName, backendName, kernelFunc });
  };
  for (const [kernelName, kernelFunc] of Object.entries(standard)) set(kernelName, kernelFunc);
  const host: string[] = [];
  for (const kernel of tfc.getKernelsForBackend('cpu')) {
    if (kernel.kernelName in standard || isFusedKernelName(kernel.kernelName)) continue;
    set(kernel.kernelName, fallback(kernel.kernelName));
    host.push(kernel.kernelName);
  }
  registerFusedKernels(backendName, fusedKernels(context));
  return { device: Object.keys(standard), host };
}
