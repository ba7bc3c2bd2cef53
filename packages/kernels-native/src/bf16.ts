import { getMatmulPrecision, type PrecisionSupport } from '@tessera/tensor-core';
import type { NativeAddon } from './addon.js';

/**
 * Matmul precision "bf16" on backend native: native/bf16.cc's GEMM (operands rounded to
 * bf16 while packed, into fp32 accumulators: AMX tile multiplies where the CPU and OS allow
 * them, else vdpbf16ps) where the CPU has AVX-512 BF16; elsewhere a clear no.
 * TESSERA_NATIVE_DISABLE=avx512bf16 hides the feature, =amx only the tiles (tests).
 */
export function bf16Support(addon: NativeAddon): PrecisionSupport {
  const f = addon.cpuFeatures();
  return f.avx512f && f.avx512bw && f.avx512vl && f.avx512bf16
    ? {
        supported: true,
        reason: f.amxBf16 ? 'AMX tiles (tdpbf16ps), fp32 accumulation' : 'AVX-512 BF16 (vdpbf16ps), fp32 accumulation',
      }
    : {
        supported: false,
        reason: 'backend native on this CPU lacks AVX-512 BF16 (avx512_bf16); remove bf16 or use a CPU that has it',
      };
}

/** The matmul to run now: bf16 while `backend`'s matmul precision is "bf16", else OpenBLAS sgemm. */
export function matmulFor(addon: NativeAddon, backend: string): NativeAddon['matmul'] {
  return getMatmulPrecision(backend) === 'bf16' ? addon.bf16Matmul : addon.matmul;
}
