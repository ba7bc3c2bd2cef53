// Embedding gather and its gradient (scatter-add), and the strided copy that transpose,
// slice, concat and pad are made of.
#include "../kernels.h"
#include "common.cuh"

namespace tessera {

namespace {

__global__ void gatherRows(const float* __restrict__ x, int64_t rows, const int32_t* __restrict__ indices,
                           int64_t count, float* __restrict__ out, int64_t rowSize, int32_t* badIndex) {
  const int64_t n = count * rowSize;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = i / rowSize, c = i % rowSize;
    int32_t src = indices[r];
    if (src < 0 || src >= rows) {
      out[i] = 0.f;
      if (c == 0 && badIndex) atomicCAS(badIndex, -1, (int32_t)r);  // first bad position, reported by the host
    } else {
      out[i] = x[src * rowSize + c];
    }
  }
}

__global__ void scatterAddRows(const float* __restrict__ x, const int32_t* __restrict__ ids, int64_t count,
                               float* __restrict__ out, int64_t numSegments, int64_t rowSize) {
  const int64_t n = count * rowSize;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = i / rowSize, c = i % rowSize;
    int32_t dst = ids[r];
    if (dst >= 0 && dst < numSegments) atomicAdd(&out[dst * rowSize + c], x[i]);
  }
}

__global__ void stridedCopy(const float* __restrict__ x, int64_t inOffset, float* __restrict__ out, int64_t outOffset,
                            StridedDims d, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t rest = i, src = inOffset, dst = outOffset;
    for (int k = d.rank - 1; k >= 0; k--) {
      int64_t idx = rest % d.dims[k];
      rest /= d.dims[k];
      src += idx * d.inStrides[k];
      dst += idx * d.outStrides[k];
    }
    out[dst] = x[src];
  }
}

}  // namespace

cudaError_t launchGather(const float* x, int64_t rows, const int32_t* indices, int64_t count, float* out,
                         int64_t rowSize, int32_t* badIndex, cudaStream_t stream) {
  if (count * rowSize == 0) return cudaSuccess;
  gatherRows<<<gridFor(count * rowSize), kThreads, 0, stream>>>(x, rows, indices, count, out, rowSize, badIndex);
  return cudaGetLastError();
}

cudaError_t launchScatterAdd(const float* x, const int32_t* ids, int64_t count, float* out, int64_t numSegments,
                             int64_t rowSize, cudaStream_t stream) {
  if (count * rowSize == 0) return cudaSuccess;
  scatterAddRows<<<gridFor(count * rowSize), kThreads, 0, stream>>>(x, ids, count, out, numSegments, rowSize);
  return cudaGetLastError();
}

cudaError_t launchStridedCopy(const float* x, int64_t inOffset, float* out, int64_t outOffset, const StridedDims& d,
                              int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  stridedCopy<<<gridFor(n), kThreads, 0, stream>>>(x, inOffset, out, outOffset, d, n);
  return cudaGetLastError();
}

}  // namespace tessera
