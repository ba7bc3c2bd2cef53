// See small_gemm.h. A 6-row × 64-column register tile (24 zmm accumulators): per k, four
// vectors of B's row, six broadcasts of A's column, 24 FMAs, which keeps both FMA ports busy
// while the loads stay at half the load ports' rate. Columns past N are masked, not padded.
#include "small_gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "cpu_features.h"
#include "lanes.h"

namespace tessera {
namespace {

#define TESSERA_SMALL_GEMM_TARGET __attribute__((target("avx512f")))

constexpr int kTileRows = 6;
constexpr int kTileVectors = 4;  // 16 floats each: 64 columns

// One tile of MR rows × NV vectors; the last vector's columns are `last` (a lane mask).
template <int MR, int NV>
TESSERA_SMALL_GEMM_TARGET void Tile(int K, float alpha, const float* a, int64_t rsA, int64_t csA, const float* b,
                                    int64_t ldb, float* c, int64_t ldc, __mmask16 last, bool accumulate) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
  }
  for (int k = 0; k < K; k++) {
    const float* bk = b + k * ldb;
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
      bv[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(last, bk + 16 * v) : _mm512_loadu_ps(bk + 16 * v);
    }
    const float* ak = a + k * csA;
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      const __m512 ar = _mm512_set1_ps(ak[r * rsA]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
    }
  }
  const __m512 scale = _mm512_set1_ps(alpha);
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++) {
    float* cr = c + r * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
      const __mmask16 m = v == NV - 1 ? last : static_cast<__mmask16>(0xFFFF);
      __m512 x = _mm512_mul_ps(acc[r][v], scale);
      if (accumulate) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, cr + 16 * v));
      _mm512_mask_storeu_ps(cr + 16 * v, m, x);
    }
  }
}

using TileFn = void (*)(int, float, const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t, __mmask16,
                        bool);

template <int MR>
constexpr TileFn TileFor(int nv) {
  return nv == 1 ? Tile<MR, 1> : nv == 2 ? Tile<MR, 2> : nv == 3 ? Tile<MR, 3> : Tile<MR, 4>;
}

TileFn TileOf(int mr, int nv) {
  switch (mr) {
    case 1: return TileFor<1>(nv);
    case 2: return TileFor<2>(nv);
    case 3: return TileFor<3>(nv);
    case 4: return TileFor<4>(nv);
    case 5: return TileFor<5>(nv);
    default: return TileFor<6>(nv);
  }
}

// Columns [0, cols) of sixteen rows (fewer, masked, at the end), one gather per column.
TESSERA_SMALL_GEMM_TARGET void TransposeAvx512(const float* src, int64_t ld, int rows, int cols, float* dst,
                                               int64_t ldDst) {
  const __m512i lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  for (int r0 = 0; r0 < rows; r0 += 16) {
    const int n = std::min(16, rows - r0);
    const __mmask16 m = LaneMask(n);
    // Offsets of rows r0 .. r0 + 15 from row r0, in floats (the caller checked ld · 15 fits int32).
    const __m512i offsets = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(static_cast<int>(ld)));
    const float* block = src + r0 * ld;
    for (int c = 0; c < cols; c++) {
      const __m512 column = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, offsets, block + c, 4);
      _mm512_mask_storeu_ps(dst + static_cast<int64_t>(c) * ldDst + r0, m, column);
    }
  }
}

}  // namespace

void Transpose(const float* src, int64_t ld, int rows, int cols, float* dst, int64_t ldDst) {
  if (SmallGemmAvailable() && ld * 15 <= INT32_MAX) {
    TransposeAvx512(src, ld, rows, cols, dst, ldDst);
    return;
  }
  for (int r = 0; r < rows; r++) {
    for (int c = 0; c < cols; c++) dst[static_cast<int64_t>(c) * ldDst + r] = src[r * ld + c];
  }
}

bool SmallGemmAvailable() {
  static const bool available = Cpu().avx512f;
  return available;
}

void SmallGemm(int M, int N, int K, float alpha, const float* a, int64_t rsA, int64_t csA, const float* b,
               int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  constexpr int kTileColumns = 16 * kTileVectors;
  // Column panels outside, row tiles inside: one K × 64 panel of B serves every row tile
  // while it is still in L1 (K ≤ 128) or L2.
  for (int j0 = 0; j0 < N; j0 += kTileColumns) {
    const int width = std::min(kTileColumns, N - j0);
    const int nv = (width + 15) / 16;
    const __mmask16 last = LaneMask(width - 16 * (nv - 1));
    for (int i0 = 0; i0 < M; i0 += kTileRows) {
      const int mr = std::min(kTileRows, M - i0);
      TileOf(mr, nv)(K, alpha, a + i0 * rsA, rsA, csA, b + j0, ldb, c + i0 * ldc + j0, ldc, last, accumulate);
    }
  }
}

}  // namespace tessera
