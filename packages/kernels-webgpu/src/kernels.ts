/**
 * WGSL kernels for Tessera's fused ops on tfjs-backend-webgpu's storage, forward and backward,
 * one module per op family; program plumbing in ./program.ts.
 */
import type { FusedKernelTable } from '@tessera/tensor-core';
import { activationKernels } from './activation.js';
import { adamwKernels } from './adamw.js';
import { attentionKernels } from './attention.js';
import { crossEntropyKernels } from './cross_entropy.js';
import { normKernels } from './norms.js';

export const webgpuKernels: FusedKernelTable = {
  ...activationKernels,
  ...normKernels,
  ...crossEntropyKernels,
  ...attentionKernels,
  ...adamwKernels,
};
