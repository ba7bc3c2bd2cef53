// The vector operations our generic kernels (gemm_kernels.inc, small_gemm_kernels.inc) are
// written in, for AVX2 + FMA: eight floats a vector, lane masks as all-ones lanes of a __m256i.
// Every function carries its own target attribute, so this compiles in a build for any
// x86-64 CPU; the kernels that use it run only where the CPU has the set (cpu_features.h).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace tessera {

#define TESSERA_SIMD_INLINE static inline __attribute__((target("avx2,fma"), always_inline))

struct Avx2 {
  using V = __m256;
  using Mask = __m256i;  // all ones in the lanes that take part
  using Idx = __m256i;
  static constexpr int kLanes = 8;
  TESSERA_SIMD_INLINE Mask MaskOf(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  TESSERA_SIMD_INLINE V Zero() { return _mm256_setzero_ps(); }
  TESSERA_SIMD_INLINE V Set1(float x) { return _mm256_set1_ps(x); }
  TESSERA_SIMD_INLINE V Load(const float* p) { return _mm256_load_ps(p); }
  TESSERA_SIMD_INLINE V LoadU(const float* p) { return _mm256_loadu_ps(p); }
  TESSERA_SIMD_INLINE V LoadMasked(Mask m, const float* p) { return _mm256_maskload_ps(p, m); }
  TESSERA_SIMD_INLINE void Store(float* p, V v) { _mm256_store_ps(p, v); }
  TESSERA_SIMD_INLINE void StoreU(float* p, V v) { _mm256_storeu_ps(p, v); }
  TESSERA_SIMD_INLINE void StoreMasked(float* p, Mask m, V v) { _mm256_maskstore_ps(p, m, v); }
  // All eight lanes: the two past the column are the next column's, written next (a masked
  // store costs AMD's CPUs several times a plain one).
  TESSERA_SIMD_INLINE void StoreTileColumn(float* p, Mask, V v) { _mm256_storeu_ps(p, v); }
  TESSERA_SIMD_INLINE V Fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  TESSERA_SIMD_INLINE V Mul(V a, V b) { return _mm256_mul_ps(a, b); }
  TESSERA_SIMD_INLINE V Add(V a, V b) { return _mm256_add_ps(a, b); }
  TESSERA_SIMD_INLINE Idx Strided(int stride) {
    return _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(stride));
  }
  TESSERA_SIMD_INLINE V Gather(Mask m, const float* base, Idx idx) {
    return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, idx, _mm256_castsi256_ps(m), 4);
  }
  // dst[c·ldDst + r] = src[r·ld + c] for an 8 × 8 block: eight row loads, 24 shuffles, eight
  // stores. A gather per column (the generic Transpose) is several times slower on Zen 3,
  // and reads each line of src eight times over.
  static constexpr bool kBlockTranspose = true;
  TESSERA_SIMD_INLINE void TransposeBlock(const float* src, int64_t ld, float* dst, int64_t ldDst) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * ld);
    for (int i = 0; i < 8; i += 2) {
      t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);      // rows i, i+1 interleaved: columns 0,1 | 4,5
      t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);  // columns 2,3 | 6,7
    }
    for (int i = 0; i < 8; i += 4) {
      r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);      // column 0 | 4 of rows i..i+3
      r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);  // column 1 | 5
      r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);  // column 2 | 6
      r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);  // column 3 | 7
    }
    for (int c = 0; c < 4; c++) {
      _mm256_storeu_ps(dst + c * ldDst, _mm256_permute2f128_ps(r[c], r[c + 4], 0x20));
      _mm256_storeu_ps(dst + (c + 4) * ldDst, _mm256_permute2f128_ps(r[c], r[c + 4], 0x31));
    }
  }
};

#undef TESSERA_SIMD_INLINE

}  // namespace tessera
