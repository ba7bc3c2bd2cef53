import type { FusedKernelTable } from '@tessera/tensor-core';
import type * as tfc from '@tessera/tensor-core/tfjs';
import { activationKernels } from './activation.js';
import { adamwKernels } from './adamw.js';
import { attentionKernels } from './attention.js';
import { crossEntropyKernels } from './cross_entropy.js';
import { int8Kernels } from './int8.js';
import { linearKernels } from './linear.js';
import { normKernels } from './norms.js';
import { standardKernels } from './standard.js';
import type { NativeContext } from './storage.js';

export interface NativeKernels {
  /** Every Tessera fused op, registered through tensor-core's registerFusedKernels. */
  fused: FusedKernelTable;
  /** tfjs kernels by tfjs kernel name; they replace the cpu backend's. */
  standard: Readonly<Record<string, tfc.KernelFunc>>;
}

/** The native kernels, one module per op family. */
export function makeKernels(context: NativeContext): NativeKernels {
  return {
    fused: {
      ...activationKernels(context),
      ...normKernels(context),
      ...crossEntropyKernels(context),
      ...attentionKernels(context),
      ...adamwKernels(context),
      ...int8Kernels(context),
      ...linearKernels(context),
    },
    standard: standardKernels(context),
  };
}
