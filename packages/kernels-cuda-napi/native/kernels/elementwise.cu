// Elementwise kernels: binary ops with numpy broadcasting (strides of 0 on broadcast axes),
// unary ops, fill. Grid-stride loops, one element per thread per step.
#include "../kernels.h"
#include "common.cuh"

namespace tessera {

namespace {

__device__ __forceinline__ float applyBinary(int op, float a, float b) {
  switch (op) {
    case kAdd: return a + b;
    case kSub: return a - b;
    case kMul: return a * b;
    case kDiv: return a / b;
    case kMax: return (a != a || b != b) ? NAN : fmaxf(a, b);  // NaN propagates, as tfjs does
    case kMin: return (a != a || b != b) ? NAN : fminf(a, b);
    case kPow: return powf(a, b);
    case kSquaredDiff: { float d = a - b; return d * d; }
  }
  return NAN;
}

__global__ void binaryContiguous(int op, const float* __restrict__ a, const float* __restrict__ b,
                                 float* __restrict__ out, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = applyBinary(op, a[i], b[i]);
}

__global__ void binaryBroadcast(int op, const float* __restrict__ a, const float* __restrict__ b,
                                float* __restrict__ out, int64_t n, BroadcastDims d) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t rest = i, ia = 0, ib = 0;
    for (int k = d.rank - 1; k >= 0; k--) {
      int64_t idx = rest % d.shape[k];
      rest /= d.shape[k];
      ia += idx * d.aStrides[k];
      ib += idx * d.bStrides[k];
    }
    out[i] = applyBinary(op, a[ia], b[ib]);
  }
}

__device__ __forceinline__ float applyUnary(int op, float x, float alpha) {
  switch (op) {
    case kNeg: return -x;
    case kExp: return expf(x);
    case kLog: return logf(x);
    case kSqrt: return sqrtf(x);
    case kRsqrt: return rsqrtf(x);
    case kRelu: return x != x ? x : fmaxf(x, 0.f);
    case kStep: return x != x ? x : (x > 0.f ? 1.f : alpha);
    case kTanh: return tanhf(x);
    case kSigmoid: return 1.f / (1.f + expf(-x));
    case kAbs: return fabsf(x);
    case kSquare: return x * x;
    case kRecip: return 1.f / x;
    case kScale: return x * alpha;
  }
  return NAN;
}

__global__ void unaryKernel(int op, const float* __restrict__ x, float* __restrict__ out, int64_t n, float alpha) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = applyUnary(op, x[i], alpha);
}

__global__ void fillKernel(float* out, int64_t n, float value) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = value;
}

bool isContiguous(const BroadcastDims& d) {
  int64_t stride = 1;
  for (int k = d.rank - 1; k >= 0; k--) {
    if (d.shape[k] != 1 && (d.aStrides[k] != stride || d.bStrides[k] != stride)) return false;
    stride *= d.shape[k];
  }
  return true;
}

}  // namespace

cudaError_t launchBinary(int op, const float* a, const float* b, float* out, int64_t n, const BroadcastDims& d,
                         cudaStream_t stream) {
  if (op < 0 || op >= kNumBinary) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  if (isContiguous(d)) binaryContiguous<<<gridFor(n), kThreads, 0, stream>>>(op, a, b, out, n);
  else binaryBroadcast<<<gridFor(n), kThreads, 0, stream>>>(op, a, b, out, n, d);
  return cudaGetLastError();
}

cudaError_t launchUnary(int op, const float* x, float* out, int64_t n, float alpha, cudaStream_t stream) {
  if (op < 0 || op >= kNumUnary) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  unaryKernel<<<gridFor(n), kThreads, 0, stream>>>(op, x, out, n, alpha);
  return cudaGetLastError();
}

cudaError_t launchFill(float* out, int64_t n, float value, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  fillKernel<<<gridFor(n), kThreads, 0, stream>>>(out, n, value);
  return cudaGetLastError();
}

}  // namespace tessera
