// The instruction-set-specific parts of OwnGemm (gemm.h): the register tile and the packing
// of its operands, once per vector width. gemm.cc holds the blocking and the threading, the
// same for every width; gemm_kernels.inc is the one source of the parts below, compiled once
// for AVX-512F (gemm_avx512.cc) and once for AVX2 + FMA (gemm_avx2.cc).
#pragma once

#include <cstdint>

namespace tessera {

// Rows per register tile, for every width: 6 rows × two or four vectors of accumulators.
constexpr int kGemmMr = 6;

struct GemmKernels {
  const char* name;  // "avx512f", "avx2"
  // Columns per tile and per packed panel of B (four zmm or two ymm).
  int nr;
  // K per block: a panel of kc × nr and one tile's kc × 6 of A together stay in L1.
  int kc;
  // Rows per block of A when B is packed once for all threads, and when each thread packs
  // its own panels (then every block packs them afresh, so blocks are larger): A's block
  // stays in L2 beside a panel.
  int mc, mcOwnPanels;

  // One mr × nr tile of C over one K block of kc (mr = 1..kGemmMr). `first`: C starts from
  // init (the bias's nr columns, or zero when null) rather than from its own values. Columns
  // past `width` are left untouched; the packed B is zero there. op(A)[r, k] = a[r·rsA + k·csA].
  void (*tile)(int mr, int kc, const float* a, int64_t rsA, int64_t csA, const float* bp, float* c, int64_t ldc,
               int width, bool first, const float* init);
  // Packs op(B)[k0 : k0 + kc, j0 : j0 + nr] into dst [kc, nr] (64-byte aligned), zeros past N,
  // and with colSums the panel's nr column sums over those kc rows, in float64, k in order.
  void (*packPanel)(const float* b, int64_t ldb, bool transB, int N, int k0, int kc, int j0, float* dst,
                    double* colSums);
  // Packs op(A)[i0 : i0 + rows, k0 : k0 + kc] as tiles of kGemmMr rows, each [kc, kGemmMr] (a
  // last tile's missing rows zero), and with rowSums each row's sum over the block (float64).
  void (*packRows)(const float* a, int64_t rsA, int64_t csA, int i0, int rows, int k0, int kc, float* dst,
                   double* rowSums);
};

// Each is callable only where the CPU has its instruction set (cpu_features.h).
const GemmKernels& GemmKernelsAvx512();
const GemmKernels& GemmKernelsAvx2();

}  // namespace tessera
