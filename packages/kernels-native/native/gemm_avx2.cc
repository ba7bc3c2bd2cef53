// OwnGemm's tile and packing on AVX2 + FMA: a 6 × 16 tile (12 of the 16 ymm registers).
#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cstdint>

#include "gemm_kernels.h"

namespace tessera {
namespace {

#define TESSERA_GEMM_TARGET __attribute__((target("avx2,fma")))
#define TESSERA_GEMM_INLINE static inline TESSERA_GEMM_TARGET __attribute__((always_inline))

struct S {
  using V = __m256;
  using Mask = __m256i;  // all ones in the lanes that take part
  using Idx = __m256i;
  static constexpr int kLanes = 8;
  TESSERA_GEMM_INLINE Mask MaskOf(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  TESSERA_GEMM_INLINE V Zero() { return _mm256_setzero_ps(); }
  TESSERA_GEMM_INLINE V Set1(float x) { return _mm256_set1_ps(x); }
  TESSERA_GEMM_INLINE V Load(const float* p) { return _mm256_load_ps(p); }
  TESSERA_GEMM_INLINE V LoadU(const float* p) { return _mm256_loadu_ps(p); }
  TESSERA_GEMM_INLINE V LoadMasked(Mask m, const float* p) { return _mm256_maskload_ps(p, m); }
  TESSERA_GEMM_INLINE void Store(float* p, V v) { _mm256_store_ps(p, v); }
  TESSERA_GEMM_INLINE void StoreU(float* p, V v) { _mm256_storeu_ps(p, v); }
  TESSERA_GEMM_INLINE void StoreMasked(float* p, Mask m, V v) { _mm256_maskstore_ps(p, m, v); }
  // All eight lanes: the two past the column are the next column's, written next (a masked
  // store costs AMD's CPUs several times a plain one).
  TESSERA_GEMM_INLINE void StoreTileColumn(float* p, Mask, V v) { _mm256_storeu_ps(p, v); }
  TESSERA_GEMM_INLINE V Fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  TESSERA_GEMM_INLINE Idx Strided(int stride) {
    return _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(stride));
  }
  TESSERA_GEMM_INLINE V Gather(Mask m, const float* base, Idx idx) {
    return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, idx, _mm256_castsi256_ps(m), 4);
  }
};
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
