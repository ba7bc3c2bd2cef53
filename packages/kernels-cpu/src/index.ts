/**
 * @tessera/kernels-cpu — backend "cpu": tfjs-backend-cpu for the standard kernels plus
 * pure-JS reference kernels (float64 accumulation) for every Tessera fused op. It is
 * the reference every other backend is compared against.
 */
import '@tensorflow/tfjs-backend-cpu';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { type FusedKernelTable, isFusedKernelName, registerBackend, registerFusedKernels } from '@tessera/tensor-core';
import * as tfc from '@tessera/tensor-core/tfjs';
import { activationKernels } from './activation.js';
import { adamwKernels, sumSquaresKernels } from './adamw.js';
import { attentionKernels } from './attention.js';
import { crossEntropyKernels } from './cross_entropy.js';
import { int8LinearKernels } from './int8_linear.js';
import { linearKernels } from './linear.js';
import { normKernels } from './norms.js';

export { erf } from './activation.js';
export { countLabels } from './cross_entropy.js';
export { quantizeRowInt8 } from './int8_linear.js';

/** Tessera's fused-op kernels on tfjs-backend-cpu storage, one op family per module. */
export const referenceKernels: FusedKernelTable = {
  ...activationKernels,
  ...normKernels,
  ...crossEntropyKernels,
  ...attentionKernels,
  ...adamwKernels,
  ...sumSquaresKernels,
  ...int8LinearKernels,
  ...linearKernels,
};

registerFusedKernels('cpu', referenceKernels);

// tfjs-backend-cpu's own factory prints an advert for tfjs-node on first write; ours does not.
tfc.removeBackend('cpu');
tfc.registerBackend('cpu', createCpuBackend, 1);

registerBackend('cpu', () => undefined, {
  description: 'Pure-JS reference backend (tfjs-backend-cpu + Tessera reference kernels)',
  priority: 10,
  package: '@tessera/kernels-cpu',
  isAvailable: () => ({ available: true, reason: 'pure-JS reference, always available', hardware: true }),
});

/** A new tfjs-backend-cpu instance: the storage every cpu kernel understands. */
export function createCpuBackend(): tfc.KernelBackend {
  const backend = new MathBackendCPU();
  (backend as unknown as { firstUse: boolean }).firstUse = false;
  return backend;
}

/**
 * Registers a new tfjs backend `name` whose storage is tfjs-backend-cpu's and copies every
 * "cpu" kernel (standard and fused) to it. A backend that accelerates a few kernels
 * starts here and overrides those; a third-party test backend can be exactly this.
 * `withFusedKernels: false` leaves out Tessera's fused kernels, so the fused ops run
 * their reference compositions there.
 */
export function registerCpuDerivedBackend(
  name: string,
  options: { priority?: number; create?: () => tfc.KernelBackend; withFusedKernels?: boolean } = {},
): void {
  if (name.includes('_'))
    throw new Error(`Backend name "${name}" may not contain "_" (tfjs splits kernel keys on it).`);
  tfc.registerBackend(name, options.create ?? createCpuBackend, options.priority ?? 1);
  const withFused = options.withFusedKernels ?? true;
  for (const kernel of tfc.getKernelsForBackend('cpu')) {
    if (!withFused && isFusedKernelName(kernel.kernelName)) continue;
    tfc.registerKernel({ ...kernel, backendName: name });
  }
}

/** The engine this package registered its kernels with (for the one-engine test). */
export function engineOfKernels(): ReturnType<typeof tfc.engine> {
  return tfc.engine();
}
