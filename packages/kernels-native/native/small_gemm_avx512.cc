// SmallGemm and Transpose on AVX-512F: a 6 × 64 tile (24 zmm accumulators).
#include <algorithm>
#include <cstdint>

#include "simd_avx512.h"
#include "small_gemm.h"

namespace tessera {
namespace {

#define TESSERA_SMALL_GEMM_TARGET __attribute__((target("avx512f")))

using S = Avx512;
constexpr int kTileVectors = 4;

#include "small_gemm_kernels.inc"

}  // namespace

void SmallGemmAvx512(int M, int N, int K, float alpha, const float* a, int64_t rsA, int64_t csA, const float* b,
                     int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  SmallGemmKernel(M, N, K, alpha, a, rsA, csA, b, ldb, c, ldc, accumulate);
}

void TransposeAvx512(const float* src, int64_t ld, int rows, int cols, float* dst, int64_t ldDst) {
  TransposeKernel(src, ld, rows, cols, dst, ldDst);
}

}  // namespace tessera
