// See small_gemm.h: the kernels are in small_gemm_kernels.inc, compiled for AVX-512F
// (small_gemm_avx512.cc) and AVX2 + FMA (small_gemm_avx2.cc); this picks the widest the CPU has.
#include "small_gemm.h"

#include <climits>
#include <cstdint>

#include "cpu_features.h"

namespace tessera {

// In small_gemm_avx512.cc and small_gemm_avx2.cc; callable only where the CPU has the set.
void SmallGemmAvx512(int M, int N, int K, float alpha, const float* a, int64_t rsA, int64_t csA, const float* b,
                     int64_t ldb, float* c, int64_t ldc, bool accumulate);
void SmallGemmAvx2(int M, int N, int K, float alpha, const float* a, int64_t rsA, int64_t csA, const float* b,
                   int64_t ldb, float* c, int64_t ldc, bool accumulate);
void TransposeAvx512(const float* src, int64_t ld, int rows, int cols, float* dst, int64_t ldDst);
void TransposeAvx2(const float* src, int64_t ld, int rows, int cols, float* dst, int64_t ldDst);

namespace {

enum class Width { kNone, kAvx2, kAvx512 };

Width Widest() {
  static const Width width = Cpu().avx512f            ? Width::kAvx512
                             : Cpu().avx2 && Cpu().fma ? Width::kAvx2
                                                       : Width::kNone;
  return width;
}

}  // namespace

bool SmallGemmAvailable() { return Widest() != Width::kNone; }

void SmallGemm(int M, int N, int K, float alpha, const float* a, int64_t rsA, int64_t csA, const float* b,
               int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  if (Widest() == Width::kAvx512) SmallGemmAvx512(M, N, K, alpha, a, rsA, csA, b, ldb, c, ldc, accumulate);
  else SmallGemmAvx2(M, N, K, alpha, a, rsA, csA, b, ldb, c, ldc, accumulate);
}

void Transpose(const float* src, int64_t ld, int rows, int cols, float* dst, int64_t ldDst) {
  // Gather offsets are int32: lane 15 of a block sits 15 rows down.
  if (Widest() != Width::kNone && ld * 15 <= INT32_MAX) {
    if (Widest() == Width::kAvx512) TransposeAvx512(src, ld, rows, cols, dst, ldDst);
    else TransposeAvx2(src, ld, rows, cols, dst, ldDst);
    return;
  }
  for (int r = 0; r < rows; r++) {
    for (int c = 0; c < cols; c++) dst[static_cast<int64_t>(c) * ldDst + r] = src[r * ld + c];
  }
}

}  // namespace tessera
