// AdamW over many tensors in one launch: blockIdx.y picks the tensor, a grid-stride loop in
// x walks it. torch.optim.AdamW's order: decoupled decay, then the bias-corrected step.
#include "../kernels.h"
#include "common.cuh"

namespace tessera {

namespace {

__global__ void adamwMulti(const AdamWTensor* __restrict__ tensors, AdamWHyper h) {
  const AdamWTensor t = tensors[blockIdx.y];
  const float decay = 1.f - h.lr * h.weightDecay;
  const float stepSize = h.lr / h.biasCorrection1;
  const float sqrtBc2 = sqrtf(h.biasCorrection2);
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < t.n; i += (int64_t)gridDim.x * blockDim.x) {
    float g = t.g[i];
    float m = h.beta1 * t.m[i] + (1.f - h.beta1) * g;
    float v = h.beta2 * t.v[i] + (1.f - h.beta2) * g * g;
    t.m1[i] = m;
    t.v1[i] = v;
    t.p1[i] = t.p[i] * decay - stepSize * m / (sqrtf(v) / sqrtBc2 + h.eps);
  }
}

}  // namespace

cudaError_t launchAdamW(const AdamWTensor* tensors, int count, int64_t maxN, const AdamWHyper& h,
                        cudaStream_t stream) {
  if (count == 0 || maxN == 0) return cudaSuccess;
  unsigned x = gridFor(maxN);
  if (x > 1024) x = 1024;  // the grid is x * count blocks: bound it, the loop covers big tensors
  adamwMulti<<<dim3(x, (unsigned)count), kThreads, 0, stream>>>(tensors, h);
  return cudaGetLastError();
}

}  // namespace tessera
