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

// The ops in tensor-core's FALLBACK_FUSED_KERNELS (attention layouts, gradient statistics,
// int8 linear) run as their reference composition on the kernels below.
export const webgpuKernels: FusedKernelTable = {
  ...activationKernels,
  ...normKernels,
  ...crossEntropyKernels,
  ...attentionKernels,
  ...adamwKernels,
};
