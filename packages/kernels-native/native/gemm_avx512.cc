// OwnGemm's tile and packing on AVX-512F: a 6 × 64 tile (24 zmm accumulators).
#include <algorithm>
#include <climits>
#include <cstdint>

#include "gemm_kernels.h"
#include "simd_avx512.h"

namespace tessera {
namespace {

#define TESSERA_GEMM_TARGET __attribute__((target("avx512f")))

using S = Avx512;
constexpr int kVecs = 4;

#include "gemm_kernels.inc"

}  // namespace

// K blocks of 384: one block for the GPT's K of 384, so C is written once. A panel of 384 ×
// 64 floats is 96 KiB, in L2 (2 MiB on the Xeons measured); 192 rows of A beside it are 288
// KiB, and 768 rows 1.1 MiB.
const GemmKernels& GemmKernelsAvx512() {
  static constexpr GemmKernels kernels{"avx512f", kNr, 384, 192, 768, Tile, PackPanel, PackRows};
  return kernels;
}

}  // namespace tessera
