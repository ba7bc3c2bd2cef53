// The AVX-512F kernels: OwnGemm's 6 × 64 tile (24 zmm accumulators), and attention's small
// GEMM with the same tile.
#include "simd_avx512.h"

#define TESSERA_ISA_TARGET __attribute__((target("avx512f")))
#define TESSERA_ISA_SIMD Avx512
#define TESSERA_ISA_VECS 4
// K blocks of 384: one block for the GPT's K of 384, so C is written once. A panel of 384 ×
// 64 floats is 96 KiB, in L2 (2 MiB on the Xeons measured); 192 rows of A beside it are 288
// KiB, and 768 rows 1.1 MiB.
#define TESSERA_ISA_GEMM_BLOCKS 384, 192, 768, 768
#define TESSERA_ISA_NAME "avx512f"
#define TESSERA_ISA_KERNELS IsaKernelsAvx512

#include "isa_kernels.inc"
