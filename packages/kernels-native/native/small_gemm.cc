// See small_gemm.h: the kernels are in small_gemm_kernels.inc, compiled per instruction set
// (isa_kernels.h); this picks the widest the CPU has.
#include "small_gemm.h"

#include <climits>
#include <cstdint>

#include "isa_kernels.h"

namespace tessera {

bool SmallGemmAvailable() { return WidestIsaKernels() != nullptr; }

void SmallGemm(int M, int N, int K, float alpha, const float* a, int64_t rsA, int64_t csA, const float* b,
               int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  WidestIsaKernels()->smallGemm(M, N, K, alpha, a, rsA, csA, b, ldb, c, ldc, accumulate);
}

void Transpose(const float* src, int64_t ld, int rows, int cols, float* dst, int64_t ldDst) {
  // Gather offsets are int32: lane 15 of a block sits 15 rows down.
  if (WidestIsaKernels() && ld * 15 <= INT32_MAX) {
    WidestIsaKernels()->transpose(src, ld, rows, cols, dst, ldDst);
    return;
  }
  for (int r = 0; r < rows; r++) {
    for (int c = 0; c < cols; c++) dst[static_cast<int64_t>(c) * ldDst + r] = src[r * ld + c];
  }
}

}  // namespace tessera
