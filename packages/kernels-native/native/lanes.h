// Reductions written so that GCC vectorises them without -ffast-math, and the lane mask of a
// partial AVX-512 vector.
#pragma once

#include <cstdint>

namespace tessera {

// The mask of the first n of sixteen lanes (all for n >= 16, none for n <= 0): what a masked
// AVX-512 load or store of a row's last, partial vector takes (converts to __mmask16).
inline uint16_t LaneMask(int64_t n) {
  return n >= 16 ? uint16_t{0xFFFF} : n <= 0 ? uint16_t{0} : static_cast<uint16_t>((1u << n) - 1);
}

// The largest f(x[k]) over k, starting from `init`; a NaN value is skipped (as a running
// std::max(m, v) skips it). A plain running max is a chain of scalar maxss, one element per
// 4 cycles, because GCC will not reorder a float max reduction without -ffast-math; `omp
// simd reduction(max)` allows exactly that reordering (a max is exact in any order), and
// `v > m ? v : m` is what maxps computes. Sixteen explicit lanes, the earlier form, were
// left scalar by GCC 12 (maxss or, under -fno-trapping-math, integer cmov per lane).
template <typename F>
inline float LaneMax(const float* __restrict x, int64_t n, float init, F f) {
  float m = init;
#pragma omp simd reduction(max : m)
  for (int64_t k = 0; k < n; k++) {
    const float v = f(x[k]);
    m = v > m ? v : m;
  }
  return m;
}

}  // namespace tessera
