// OwnGemm's tile and packing on AVX2 + FMA: a 6 × 16 tile (12 of the 16 ymm registers).
#include <algorithm>
#include <climits>
#include <cstdint>

#include "gemm_kernels.h"
#include "simd_avx2.h"

namespace tessera {
namespace {

#define TESSERA_GEMM_TARGET __attribute__((target("avx2,fma")))

using S = Avx2;
constexpr int kVecs = 2;

#include "gemm_kernels.inc"

}  // namespace

// K blocks of 384, as on AVX-512: C written once for the GPT's K of 384 (blocks of 256, whose
// panel and tile of A fit L1 together, measured 2 % slower on Zen 3). 120 rows of A are 180
// KiB at that K, in L2 beside the 24 KiB panel on the smallest L2 of AVX2 CPUs (256 KiB).
const GemmKernels& GemmKernelsAvx2() {
  static constexpr GemmKernels kernels{"avx2", kNr, 384, 120, 240, Tile, PackPanel, PackRows};
  return kernels;
}

}  // namespace tessera
