// Sixteen-lane helpers: reductions written so that GCC vectorises them without -ffast-math,
// and the lane mask of a partial AVX-512 vector.
#pragma once

#include <cstdint>

namespace tessera {

// The mask of the first n of sixteen lanes (all for n >= 16, none for n <= 0): what a masked
// AVX-512 load or store of a row's last, partial vector takes (converts to __mmask16).
inline uint16_t LaneMask(int64_t n) {
  return n >= 16 ? uint16_t{0xFFFF} : n <= 0 ? uint16_t{0} : static_cast<uint16_t>((1u << n) - 1);
}

// The largest f(x[k]) over k, starting from `init`; a NaN value is skipped (as a running
// std::max(m, v) skips it). Sixteen independent lanes: a plain running max is a chain of
// scalar maxss, one element per 4 cycles, because GCC will not reorder a float max
// reduction without -ffast-math (not even under `omp simd`). `v > lane ? v : lane` is
// exactly what maxps computes, so each lane step is one vector instruction.
template <typename F>
inline float LaneMax(const float* __restrict x, int64_t n, float init, F f) {
  constexpr int kLanes = 16;
  float lane[kLanes];
  for (int l = 0; l < kLanes; l++) lane[l] = init;
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes) {
    for (int l = 0; l < kLanes; l++) {
      const float v = f(x[k + l]);
      lane[l] = v > lane[l] ? v : lane[l];
    }
  }
  for (; k < n; k++) {
    const float v = f(x[k]);
    lane[0] = v > lane[0] ? v : lane[0];
  }
  float m = init;
  for (int l = 0; l < kLanes; l++) m = lane[l] > m ? lane[l] : m;
  return m;
}

}  // namespace tessera
