// Attention's middle step, llm.c style: scores = q k^T come from one strided-batched cuBLASLt
// GEMM over B*H, this kernel turns them into probabilities in place (scale, causal band,
// key padding mask, additive bias, softmax), and a second batched GEMM gives probs v. The
// backward pass reuses the stored probabilities (softmaxBackward) between its GEMMs.
#include "../kernels.h"
#include "common.cuh"

namespace tessera {

namespace {

__global__ void attentionSoftmax(float* __restrict__ scores, AttentionDims d, float scale, bool causal,
                                 const float* __restrict__ mask, const float* __restrict__ bias) {
  __shared__ float shared[32];
  const int64_t row = blockIdx.x;  // (b, h, i)
  const int i = (int)(row % d.Tq);
  const int bh = (int)(row / d.Tq);
  const int b = bh / d.H, h = bh % d.H;
  float* s = scores + row * d.Tk;
  // The causal band ends at the last key: query i of Tq sees keys up to i + (Tk - Tq).
  const int lastKey = causal ? i + (d.Tk - d.Tq) : d.Tk - 1;
  const int bB = d.biasDims[0], bH = d.biasDims[1], bT = d.biasDims[2], bK = d.biasDims[3];
  const float* biasRow = nullptr;
  if (bias) {
    int64_t off = ((int64_t)(bB == 1 ? 0 : b) * bH + (bH == 1 ? 0 : h)) * bT + (bT == 1 ? 0 : i);
    biasRow = bias + off * bK;
  }
  float m = -INFINITY;
  for (int j = threadIdx.x; j < d.Tk; j += blockDim.x) {
    bool allowed = j <= lastKey && (!mask || mask[(int64_t)b * d.Tk + j] != 0.f);
    float v = allowed ? s[j] * scale + (biasRow ? biasRow[bK == 1 ? 0 : j] : 0.f) : -INFINITY;
    s[j] = v;
    m = fmaxf(m, v);
  }
  m = blockMax(m, shared);
  if (m == -INFINITY) {  // nothing to attend to: zeros, as the reference gives
    for (int j = threadIdx.x; j < d.Tk; j += blockDim.x) s[j] = 0.f;
    return;
  }
  float sum = 0.f;
  for (int j = threadIdx.x; j < d.Tk; j += blockDim.x) {
    float e = expf(s[j] - m);
    s[j] = e;
    sum += e;
  }
  float inv = 1.f / blockSum(sum, shared);
  for (int j = threadIdx.x; j < d.Tk; j += blockDim.x) s[j] *= inv;
}

__global__ void softmaxBackwardRows(const float* __restrict__ probs, float* __restrict__ dProbs, int cols) {
  __shared__ float shared[32];
  const float* p = probs + blockIdx.x * (int64_t)cols;
  float* dp = dProbs + blockIdx.x * (int64_t)cols;
  float dot = 0.f;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) dot += p[j] * dp[j];
  dot = blockSum(dot, shared);
  for (int j = threadIdx.x; j < cols; j += blockDim.x) dp[j] = p[j] * (dp[j] - dot);
}

}  // namespace

cudaError_t launchAttentionSoftmax(float* scores, const AttentionDims& d, float scale, bool causal, const float* mask,
                                   const float* bias, cudaStream_t stream) {
  int64_t rows = (int64_t)d.B * d.H * d.Tq;
  if (rows == 0 || d.Tk == 0) return cudaSuccess;
  attentionSoftmax<<<(unsigned)rows, kThreads, 0, stream>>>(scores, d, scale, causal, mask, bias);
  return cudaGetLastError();
}

cudaError_t launchSoftmaxBackward(const float* probs, float* dProbs, int64_t rows, int cols, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  softmaxBackwardRows<<<(unsigned)rows, kThreads, 0, stream>>>(probs, dProbs, cols);
  return cudaGetLastError();
}

}  // namespace tessera
