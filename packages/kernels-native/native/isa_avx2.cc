// The AVX2 + FMA kernels: OwnGemm's 6 × 16 tile (12 of the 16 ymm registers), and
// attention's small GEMM with the same tile.
#include "simd_avx2.h"

#define TESSERA_ISA_TARGET __attribute__((target("avx2,fma")))
#define TESSERA_ISA_SIMD Avx2
#define TESSERA_ISA_VECS 2
// K blocks of 384, as on AVX-512: C written once for the GPT's K of 384 (blocks of 256, whose
// panel and tile of A fit L1 together, measured 2 % slower on Zen 3). 120 rows of A are 180
// KiB at that K, in L2 beside the 24 KiB panel on the smallest L2 of AVX2 CPUs (256 KiB).
// Aᵀ's rows shared by all threads (OwnGemm's shared-rows path) in blocks of 384: 3-4 % faster than 240
// for the GPT's Xᵀ·dY on Zen 3, with half the meetings.
#define TESSERA_ISA_GEMM_BLOCKS 384, 120, 240, 384
#define TESSERA_ISA_NAME "avx2"
#define TESSERA_ISA_KERNELS IsaKernelsAvx2

#include "isa_kernels.inc"
