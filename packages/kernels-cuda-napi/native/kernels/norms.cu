// Layer norm and RMS norm over the last axis, forward and backward. One block per row;
// statistics in fp32 with two passes over the row (mean first, then squared deviations),
// which keeps the variance from cancelling for rows with a large mean.
#include "../kernels.h"
#include "common.cuh"

namespace tessera {

namespace {

__global__ void layerNormForward(const float* __restrict__ x, const float* __restrict__ gamma,
                                 const float* __restrict__ beta, float* __restrict__ y, int C, float eps) {
  __shared__ float shared[32];
  const float* row = x + blockIdx.x * (int64_t)C;
  float* out = y + blockIdx.x * (int64_t)C;
  float s = 0.f;
  for (int i = threadIdx.x; i < C; i += blockDim.x) s += row[i];
  float mean = blockSum(s, shared) / C;
  float sq = 0.f;
  for (int i = threadIdx.x; i < C; i += blockDim.x) {
    float d = row[i] - mean;
    sq += d * d;
  }
  float rstd = rsqrtf(blockSum(sq, shared) / C + eps);
  for (int i = threadIdx.x; i < C; i += blockDim.x)
    out[i] = (row[i] - mean) * rstd * gamma[i] + (beta ? beta[i] : 0.f);
}

// Blocks walk rows with a stride; each accumulates dgamma/dbeta for its rows in shared
// memory (when C fits) and adds them to global memory once, instead of one atomic per row.
__global__ void layerNormBackward(const float* __restrict__ x, const float* __restrict__ dy,
                                  const float* __restrict__ gamma, float* __restrict__ dx, float* dgamma, float* dbeta,
                                  int64_t rows, int C, float eps, bool rms, bool sharedAccum) {
  extern __shared__ float acc[];  // [2 * C] when sharedAccum
  __shared__ float shared[32];
  if (sharedAccum)
    for (int i = threadIdx.x; i < 2 * C; i += blockDim.x) acc[i] = 0.f;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * C;
    const float* dyr = dy + r * C;
    float mean = 0.f;
    if (!rms) {
      float s = 0.f;
      for (int i = threadIdx.x; i < C; i += blockDim.x) s += xr[i];
      mean = blockSum(s, shared) / C;
    }
    float sq = 0.f;
    for (int i = threadIdx.x; i < C; i += blockDim.x) {
      float d = xr[i] - mean;
      sq += d * d;
    }
    float rstd = rsqrtf(blockSum(sq, shared) / C + eps);
    // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma (no mean(g) term for RMS).
    float sg = 0.f, sgx = 0.f;
    for (int i = threadIdx.x; i < C; i += blockDim.x) {
      float xhat = (xr[i] - mean) * rstd;
      float g = dyr[i] * gamma[i];
      sg += g;
      sgx += g * xhat;
    }
    float meanG = rms ? 0.f : blockSum(sg, shared) / C;
    float meanGX = blockSum(sgx, shared) / C;
    for (int i = threadIdx.x; i < C; i += blockDim.x) {
      float xhat = (xr[i] - mean) * rstd;
      float g = dyr[i] * gamma[i];
      dx[r * C + i] = rstd * (g - meanG - xhat * meanGX);
      if (sharedAccum) {
        acc[i] += dyr[i] * xhat;
        acc[C + i] += dyr[i];
      } else {
        atomicAdd(&dgamma[i], dyr[i] * xhat);
        if (dbeta) atomicAdd(&dbeta[i], dyr[i]);
      }
    }
  }
  if (sharedAccum) {
    __syncthreads();
    for (int i = threadIdx.x; i < C; i += blockDim.x) {
      atomicAdd(&dgamma[i], acc[i]);
      if (dbeta) atomicAdd(&dbeta[i], acc[C + i]);
    }
  }
}

__global__ void rmsNormForward(const float* __restrict__ x, const float* __restrict__ gamma, float* __restrict__ y,
                               int C, float eps) {
  __shared__ float shared[32];
  const float* row = x + blockIdx.x * (int64_t)C;
  float sq = 0.f;
  for (int i = threadIdx.x; i < C; i += blockDim.x) sq += row[i] * row[i];
  float r = rsqrtf(blockSum(sq, shared) / C + eps);
  for (int i = threadIdx.x; i < C; i += blockDim.x) y[blockIdx.x * (int64_t)C + i] = row[i] * r * gamma[i];
}

cudaError_t backward(const float* x, const float* dy, const float* gamma, float* dx, float* dgamma, float* dbeta,
                     int64_t rows, int C, float eps, bool rms, cudaStream_t stream) {
  if (rows == 0 || C == 0) return cudaSuccess;
  size_t sharedBytes = 2 * sizeof(float) * (size_t)C;
  bool sharedAccum = sharedBytes <= 40 * 1024;  // under the 48 KiB default with room for the rest
  unsigned blocks = (unsigned)(rows < 1024 ? rows : 1024);
  layerNormBackward<<<blocks, kThreads, sharedAccum ? sharedBytes : 0, stream>>>(x, dy, gamma, dx, dgamma, dbeta,
                                                                                 rows, C, eps, rms, sharedAccum);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launchLayerNorm(const float* x, const float* gamma, const float* beta, float* y, int64_t rows, int C,
                            float eps, cudaStream_t stream) {
  if (rows == 0 || C == 0) return cudaSuccess;
  layerNormForward<<<(unsigned)rows, kThreads, 0, stream>>>(x, gamma, beta, y, C, eps);
  return cudaGetLastError();
}

cudaError_t launchLayerNormGrad(const float* x, const float* dy, const float* gamma, float* dx, float* dgamma,
                                float* dbeta, int64_t rows, int C, float eps, cudaStream_t stream) {
  return backward(x, dy, gamma, dx, dgamma, dbeta, rows, C, eps, false, stream);
}

cudaError_t launchRmsNorm(const float* x, const float* gamma, float* y, int64_t rows, int C, float eps,
                          cudaStream_t stream) {
  if (rows == 0 || C == 0) return cudaSuccess;
  rmsNormForward<<<(unsigned)rows, kThreads, 0, stream>>>(x, gamma, y, C, eps);
  return cudaGetLastError();
}

cudaError_t launchRmsNormGrad(const float* x, const float* dy, const float* gamma, float* dx, float* dgamma,
                              int64_t rows, int C, float eps, cudaStream_t stream) {
  return backward(x, dy, gamma, dx, dgamma, nullptr, rows, C, eps, true, stream);
}

}  // namespace tessera
