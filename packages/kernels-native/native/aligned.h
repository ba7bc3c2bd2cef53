// Float scratch from a 64-byte boundary, for the kernels' aligned vector loads and their
// whole-cache-line row strides.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tessera {

// `floats` floats of `scratch` from its first 64-byte boundary, growing it (never shrinking:
// a kernel called again with the same sizes allocates nothing).
inline float* AlignedScratch(std::vector<float>& scratch, size_t floats) {
  if (scratch.size() < floats + 16) scratch.resize(floats + 16);
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t{63});
}

}  // namespace tessera
