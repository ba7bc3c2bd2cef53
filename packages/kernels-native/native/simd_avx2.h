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
};

#undef TESSERA_SIMD_INLINE

}  // namespace tessera
