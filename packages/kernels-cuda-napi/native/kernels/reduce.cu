// Reductions over the middle axis of [outer, reduce, inner] and row softmax.
#include "../kernels.h"
#include "common.cuh"

namespace tessera {

namespace {

// inner == 1 (the common case: reduce the last axis): one block per output, coalesced reads.
__global__ void reduceRows(int op, const float* __restrict__ x, float* __restrict__ out, int64_t reduce) {
  __shared__ float shared[32];
  const float* row = x + blockIdx.x * reduce;
  bool isMax = op == kMaxR, isMin = op == kMinR;
  float acc = isMax ? -INFINITY : (isMin ? INFINITY : 0.f);
  bool nan = false;
  for (int64_t i = threadIdx.x; i < reduce; i += blockDim.x) {
    float v = row[i];
    nan |= v != v;
    acc = isMax ? fmaxf(acc, v) : (isMin ? fminf(acc, v) : acc + v);
  }
  if (isMax) acc = blockMax(acc, shared);
  else if (isMin) acc = -blockMax(-acc, shared);
  else acc = blockSum(acc, shared);
  // fmaxf drops NaN; tfjs's max keeps it.
  int anyNan = __syncthreads_or(nan);
  if (threadIdx.x == 0) {
    if (op == kMean) acc = reduce ? acc / reduce : NAN;
    out[blockIdx.x] = (anyNan && (isMax || isMin)) ? NAN : acc;
  }
}

// inner > 1: one thread per output column, walking the reduced axis (reads coalesce across threads).
__global__ void reduceColumns(int op, const float* __restrict__ x, float* __restrict__ out, int64_t outer,
                              int64_t reduce, int64_t inner) {
  for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < outer * inner;
       o += (int64_t)gridDim.x * blockDim.x) {
    int64_t b = o / inner, c = o % inner;
    const float* p = x + b * reduce * inner + c;
    bool isMax = op == kMaxR, isMin = op == kMinR;
    float acc = isMax ? -INFINITY : (isMin ? INFINITY : 0.f);
    bool nan = false;
    for (int64_t r = 0; r < reduce; r++) {
      float v = p[r * inner];
      nan |= v != v;
      acc = isMax ? fmaxf(acc, v) : (isMin ? fminf(acc, v) : acc + v);
    }
    if (op == kMean) acc = reduce ? acc / reduce : NAN;
    out[o] = (nan && (isMax || isMin)) ? NAN : acc;
  }
}

__global__ void softmaxRows(const float* __restrict__ x, float* __restrict__ out, int cols) {
  __shared__ float shared[32];
  const float* row = x + blockIdx.x * (int64_t)cols;
  float* dst = out + blockIdx.x * (int64_t)cols;
  float m = -INFINITY;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) m = fmaxf(m, row[i]);
  m = blockMax(m, shared);
  float s = 0.f;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) s += expf(row[i] - m);
  s = blockSum(s, shared);
  float inv = 1.f / s;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) dst[i] = expf(row[i] - m) * inv;
}

}  // namespace

cudaError_t launchReduce(int op, const float* x, float* out, int64_t outer, int64_t reduce, int64_t inner,
                         cudaStream_t stream) {
  if (op < 0 || op >= kNumReduce) return cudaErrorInvalidValue;
  if (outer * inner == 0) return cudaSuccess;
  if (inner == 1 && outer < (1ll << 31)) reduceRows<<<(unsigned)outer, kThreads, 0, stream>>>(op, x, out, reduce);
  else reduceColumns<<<gridFor(outer * inner), kThreads, 0, stream>>>(op, x, out, outer, reduce, inner);
  return cudaGetLastError();
}

cudaError_t launchSoftmax(const float* x, float* out, int64_t rows, int cols, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  softmaxRows<<<(unsigned)rows, kThreads, 0, stream>>>(x, out, cols);
  return cudaGetLastError();
}

}  // namespace tessera
