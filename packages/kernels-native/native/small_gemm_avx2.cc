// SmallGemm and Transpose on AVX2 + FMA: a 6 × 16 tile (12 ymm accumulators).
#include <algorithm>
#include <cstdint>

#include "simd_avx2.h"
#include "small_gemm.h"

namespace tessera {
namespace {

#define TESSERA_SMALL_GEMM_TARGET __attribute__((target("avx2,fma")))

using S = Avx2;
constexpr int kTileVectors = 2;

#include "small_gemm_kernels.inc"

}  // namespace

void SmallGemmAvx2(int M, int N, int K, float alpha, const float* a, int64_t rsA, int64_t csA, const float* b,
                     int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  SmallGemmKernel(M, N, K, alpha, a, rsA, csA, b, ldb, c, ldc, accumulate);
}

void TransposeAvx2(const float* src, int64_t ld, int rows, int cols, float* dst, int64_t ldDst) {
  TransposeKernel(src, ld, rows, cols, dst, ldDst);
}

}  // namespace tessera
