// The vector operations our generic kernels (gemm_kernels.inc, small_gemm_kernels.inc) are
// written in, for AVX-512F: sixteen floats a vector, __mmask16 lane masks.
// Every function carries its own target attribute, so this compiles in a build for any
// x86-64 CPU; the kernels that use it run only where the CPU has the set (cpu_features.h).
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "lanes.h"

namespace tessera {

#define TESSERA_SIMD_INLINE static inline __attribute__((target("avx512f"), always_inline))

struct Avx512 {
  using V = __m512;
  using Mask = __mmask16;
  using Idx = __m512i;
  static constexpr int kLanes = 16;
  TESSERA_SIMD_INLINE Mask MaskOf(int n) { return LaneMask(n); }
  TESSERA_SIMD_INLINE V Zero() { return _mm512_setzero_ps(); }
  TESSERA_SIMD_INLINE V Set1(float x) { return _mm512_set1_ps(x); }
  TESSERA_SIMD_INLINE V Load(const float* p) { return _mm512_load_ps(p); }
  TESSERA_SIMD_INLINE V LoadU(const float* p) { return _mm512_loadu_ps(p); }
  TESSERA_SIMD_INLINE V LoadMasked(Mask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  TESSERA_SIMD_INLINE void Store(float* p, V v) { _mm512_store_ps(p, v); }
  TESSERA_SIMD_INLINE void StoreU(float* p, V v) { _mm512_storeu_ps(p, v); }
  TESSERA_SIMD_INLINE void StoreMasked(float* p, Mask m, V v) { _mm512_mask_storeu_ps(p, m, v); }
  TESSERA_SIMD_INLINE void StoreTileColumn(float* p, Mask six, V v) { _mm512_mask_storeu_ps(p, six, v); }
  TESSERA_SIMD_INLINE V Fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  TESSERA_SIMD_INLINE V Mul(V a, V b) { return _mm512_mul_ps(a, b); }
  TESSERA_SIMD_INLINE V Add(V a, V b) { return _mm512_add_ps(a, b); }
  TESSERA_SIMD_INLINE Idx Strided(int stride) {
    const __m512i lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    return _mm512_mullo_epi32(lanes, _mm512_set1_epi32(stride));
  }
  TESSERA_SIMD_INLINE V Gather(Mask m, const float* base, Idx idx) {
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, base, 4);
  }
  // No register block transpose here: Transpose gathers a column of sixteen rows at a time.
  static constexpr bool kBlockTranspose = false;
  static void TransposeBlock(const float*, int64_t, float*, int64_t) {}
};

#undef TESSERA_SIMD_INLINE

}  // namespace tessera
