// OwnGemm's tile and packing on AVX-512F: a 6 × 64 tile (24 zmm accumulators).
#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cstdint>

#include "gemm_kernels.h"
#include "lanes.h"

namespace tessera {
namespace {

#define TESSERA_GEMM_TARGET __attribute__((target("avx512f")))
#define TESSERA_GEMM_INLINE static inline TESSERA_GEMM_TARGET __attribute__((always_inline))

struct S {
  using V = __m512;
  using Mask = __mmask16;
  using Idx = __m512i;
  static constexpr int kLanes = 16;
  TESSERA_GEMM_INLINE Mask MaskOf(int n) { return LaneMask(n); }
  TESSERA_GEMM_INLINE V Zero() { return _mm512_setzero_ps(); }
  TESSERA_GEMM_INLINE V Set1(float x) { return _mm512_set1_ps(x); }
  TESSERA_GEMM_INLINE V Load(const float* p) { return _mm512_load_ps(p); }
  TESSERA_GEMM_INLINE V LoadU(const float* p) { return _mm512_loadu_ps(p); }
  TESSERA_GEMM_INLINE V LoadMasked(Mask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  TESSERA_GEMM_INLINE void Store(float* p, V v) { _mm512_store_ps(p, v); }
  TESSERA_GEMM_INLINE void StoreU(float* p, V v) { _mm512_storeu_ps(p, v); }
  TESSERA_GEMM_INLINE void StoreMasked(float* p, Mask m, V v) { _mm512_mask_storeu_ps(p, m, v); }
  TESSERA_GEMM_INLINE void StoreTileColumn(float* p, Mask six, V v) { _mm512_mask_storeu_ps(p, six, v); }
  TESSERA_GEMM_INLINE V Fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  TESSERA_GEMM_INLINE Idx Strided(int stride) {
    const __m512i lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    return _mm512_mullo_epi32(lanes, _mm512_set1_epi32(stride));
  }
  TESSERA_GEMM_INLINE V Gather(Mask m, const float* base, Idx idx) {
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, base, 4);
  }
};
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
