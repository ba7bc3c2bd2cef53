// The instruction-set-specific kernels, once per vector width: OwnGemm's register tile and
// packing (gemm.h; gemm.cc holds the blocking and the threading, the same for every width)
// and attention's small GEMM (small_gemm.h). Each is written once, gemm_kernels.inc and
// small_gemm_kernels.inc over the vector operations of simd_*.h, and compiled once per
// instruction set through isa_kernels.inc: isa_avx512.cc (AVX-512F), isa_avx2.cc (AVX2 + FMA).
#pragma once

#include <cstdint>

#include "cpu_features.h"

namespace tessera {

// Rows per register tile, for every width: 6 rows × two or four vectors of accumulators.
constexpr int kGemmMr = 6;

struct GemmKernels {
  // Columns per tile and per packed panel of B (four zmm or two ymm).
  int nr;
  // K per block. 384 on both widths: the GPT's K of 384 is then one block and C is written
  // once, though the panel (24 KiB on AVX2, 96 on AVX-512) and a tile's 9 KiB of A then
  // outgrow L1 together (isa_avx2.cc has the measurement).
  int kc;
  // Rows per block of A when B is packed once for all threads, and when each thread packs
  // its own panels (then every block packs them afresh, so blocks are larger): A's block
  // stays in L2 beside a panel. mcSharedRows: rows per block of Aᵀ packed once for all
  // threads, which then split the panels (OwnGemm's shared-rows path).
  int mc, mcOwnPanels, mcSharedRows;

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

using SmallGemmFn = void (*)(int M, int N, int K, float alpha, const float* a, int64_t rsA, int64_t csA,
                            const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate);
using TransposeFn = void (*)(const float* src, int64_t ld, int rows, int cols, float* dst, int64_t ldDst);

struct IsaKernels {
  const char* name;  // "avx512f", "avx2"
  GemmKernels gemm;
  // SmallGemm and Transpose (small_gemm.h); Transpose's gathers need ld · 15 to fit int32.
  SmallGemmFn smallGemm;
  TransposeFn transpose;
};

// Each is callable only where the CPU has its instruction set.
const IsaKernels& IsaKernelsAvx512();
const IsaKernels& IsaKernelsAvx2();

// The kernels of the widest instruction set this CPU has, or null where it has neither.
inline const IsaKernels* WidestIsaKernels() {
  static const IsaKernels* const widest = Cpu().avx512f             ? &IsaKernelsAvx512()
                                          : Cpu().avx2 && Cpu().fma ? &IsaKernelsAvx2()
                                                                    : nullptr;
  return widest;
}

}  // namespace tessera
