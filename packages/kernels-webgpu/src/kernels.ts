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

/**
 * Fused ops webgpu runs as their reference composition, on the kernels above: the attention
 * layouts that only save copies on cpu-storage backends (the composition's transposes feed
 * this backend's own attention kernel), and the one-pass gradient statistics (optim composes
 * only the statistic it needs where a backend has no kernel), and the int8 linear (its
 * composition dequantizes the weights and runs this backend's matmul: the fp32 fallback).
 */
export const WEBGPU_COMPOSED = [
  'TesseraPackedAttention',
  'TesseraPackedAttentionGrad',
  'TesseraSeqAttention',
  'TesseraSeqAttentionGrad',
  'TesseraSumSquares',
  'TesseraInt8Linear',
] as const;

export const webgpuKernels: Omit<FusedKernelTable, (typeof WEBGPU_COMPOSED)[number]> = {
  ...activationKernels,
  ...normKernels,
  ...crossEntropyKernels,
  ...attentionKernels,
  ...adamwKernels,
};
