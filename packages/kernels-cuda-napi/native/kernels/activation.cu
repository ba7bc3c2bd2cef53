// GELU (exact erf form and the tanh approximation) and its gradient.
#include "../kernels.h"
#include "common.cuh"

namespace tessera {

namespace {

constexpr float kSqrtHalf = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
constexpr float kSqrt2OverPi = 0.79788456080286536f;
constexpr float kCubic = 0.044715f;

__global__ void geluForward(const float* __restrict__ x, float* __restrict__ y, int64_t n, bool tanhApprox) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float v = x[i];
    y[i] = tanhApprox ? 0.5f * v * (1.f + tanhf(kSqrt2OverPi * (v + kCubic * v * v * v)))
                      : 0.5f * v * (1.f + erff(v * kSqrtHalf));
  }
}

__global__ void geluBackward(const float* __restrict__ x, const float* __restrict__ dy, float* __restrict__ dx,
                             int64_t n, bool tanhApprox) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float v = x[i], d;
    if (tanhApprox) {
      float t = tanhf(kSqrt2OverPi * (v + kCubic * v * v * v));
      d = 0.5f * (1.f + t) + 0.5f * v * (1.f - t * t) * kSqrt2OverPi * (1.f + 3.f * kCubic * v * v);
    } else {
      d = 0.5f * (1.f + erff(v * kSqrtHalf)) + v * kInvSqrt2Pi * expf(-0.5f * v * v);
    }
    dx[i] = dy[i] * d;
  }
}

}  // namespace

cudaError_t launchGelu(const float* x, float* y, int64_t n, bool tanhApprox, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  geluForward<<<gridFor(n), kThreads, 0, stream>>>(x, y, n, tanhApprox);
  return cudaGetLastError();
}

cudaError_t launchGeluGrad(const float* x, const float* dy, float* dx, int64_t n, bool tanhApprox,
                           cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  geluBackward<<<gridFor(n), kThreads, 0, stream>>>(x, dy, dx, n, tanhApprox);
  return cudaGetLastError();
}

}  // namespace tessera
