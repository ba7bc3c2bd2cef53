// Softmax cross-entropy fused with its gradient: one block per row computes the row's
// log-sum-exp once and writes the loss and (when asked) scale * (softmax - onehot), so the
// [N, V] probabilities are never stored.
#include "../kernels.h"
#include "common.cuh"

namespace tessera {

namespace {

__global__ void crossEntropyRows(const float* __restrict__ logits, const int32_t* __restrict__ labels,
                                 float* __restrict__ rowLoss, float* __restrict__ dlogits, int V, int ignoreIndex,
                                 float scale, const float* __restrict__ dyScale) {
  __shared__ float shared[32];
  const int64_t r = blockIdx.x;
  const float* row = logits + r * V;
  const int label = labels[r];
  if (label == ignoreIndex) {
    if (threadIdx.x == 0 && rowLoss) rowLoss[r] = 0.f;
    if (dlogits)
      for (int i = threadIdx.x; i < V; i += blockDim.x) dlogits[r * V + i] = 0.f;
    return;
  }
  float m = -INFINITY;
  for (int i = threadIdx.x; i < V; i += blockDim.x) m = fmaxf(m, row[i]);
  m = blockMax(m, shared);
  float s = 0.f;
  for (int i = threadIdx.x; i < V; i += blockDim.x) s += expf(row[i] - m);
  s = blockSum(s, shared);
  // Labels were range-checked on the host (the reference's own check and message).
  if (threadIdx.x == 0 && rowLoss) rowLoss[r] = logf(s) + m - row[label];
  if (dlogits) {
    float inv = 1.f / s;
    if (dyScale) scale *= *dyScale;
    for (int i = threadIdx.x; i < V; i += blockDim.x)
      dlogits[r * V + i] = scale * (expf(row[i] - m) * inv - (i == label ? 1.f : 0.f));
  }
}

}  // namespace

cudaError_t launchCrossEntropy(const float* logits, const int32_t* labels, float* rowLoss, float* dlogits, int64_t N,
                               int V, int ignoreIndex, float scale, const float* dyScale, cudaStream_t stream) {
  if (N == 0) return cudaSuccess;
  crossEntropyRows<<<(unsigned)N, kThreads, 0, stream>>>(logits, labels, rowLoss, dlogits, V, ignoreIndex, scale,
                                                               dyScale);
  return cudaGetLastError();
}

}  // namespace tessera
