// Host-side launchers for the CUDA kernels (native/kernels/*.cu). Every launcher enqueues
// on `stream` and returns cudaGetLastError() of its launch; none synchronises. Pointers
// are device pointers; sizes are element counts.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace tessera {

constexpr int kMaxRank = 6;

/** Shape of the output plus each operand's element strides (0 on broadcast axes), padded to kMaxRank. */
struct BroadcastDims {
  int rank;
  int64_t shape[kMaxRank];
  int64_t aStrides[kMaxRank];
  int64_t bStrides[kMaxRank];
};

enum BinaryOp : int { kAdd = 0, kSub, kMul, kDiv, kMax, kMin, kPow, kSquaredDiff, kNumBinary };
enum UnaryOp : int {
  kNeg = 0, kExp, kLog, kSqrt, kRsqrt, kRelu, kStep, kTanh, kSigmoid, kAbs, kSquare, kRecip, kScale, kNumUnary
};
enum ReduceOp : int { kSum = 0, kMean, kMaxR, kMinR, kNumReduce };

cudaError_t launchBinary(int op, const float* a, const float* b, float* out, int64_t n, const BroadcastDims& d,
                         cudaStream_t stream);
cudaError_t launchUnary(int op, const float* x, float* out, int64_t n, float alpha, cudaStream_t stream);
cudaError_t launchFill(float* out, int64_t n, float value, cudaStream_t stream);
/** x viewed as [outer, reduce, inner] -> out [outer, inner]. */
cudaError_t launchReduce(int op, const float* x, float* out, int64_t outer, int64_t reduce, int64_t inner,
                         cudaStream_t stream);
/** Row softmax over the last axis of [rows, cols]. */
cudaError_t launchSoftmax(const float* x, float* out, int64_t rows, int cols, cudaStream_t stream);

cudaError_t launchGelu(const float* x, float* y, int64_t n, bool tanhApprox, cudaStream_t stream);
cudaError_t launchGeluGrad(const float* x, const float* dy, float* dx, int64_t n, bool tanhApprox,
                           cudaStream_t stream);

cudaError_t launchLayerNorm(const float* x, const float* gamma, const float* beta, float* y, int64_t rows, int C,
                            float eps, cudaStream_t stream);
/** dgamma/dbeta must be zeroed: rows accumulate into them. */
cudaError_t launchLayerNormGrad(const float* x, const float* dy, const float* gamma, float* dx, float* dgamma,
                                float* dbeta, int64_t rows, int C, float eps, cudaStream_t stream);
cudaError_t launchRmsNorm(const float* x, const float* gamma, float* y, int64_t rows, int C, float eps,
                          cudaStream_t stream);
cudaError_t launchRmsNormGrad(const float* x, const float* dy, const float* gamma, float* dx, float* dgamma,
                              int64_t rows, int C, float eps, cudaStream_t stream);

/**
 * Per-row loss (0 for ignored rows; rowLoss may be null) and, when dlogits is non-null,
 * s * (softmax - onehot) with s = scale * (*dyScale) (dyScale: the upstream gradient, a device
 * scalar, so the backward pass never waits to read it; null means 1).
 */
cudaError_t launchCrossEntropy(const float* logits, const int32_t* labels, float* rowLoss, float* dlogits,
                               int64_t N, int V, int ignoreIndex, float scale, const float* dyScale,
                               cudaStream_t stream);

/** One AdamW tensor: what the multi-tensor launch walks. */
struct AdamWTensor {
  const float* p;
  const float* g;
  const float* m;
  const float* v;
  float* p1;
  float* m1;
  float* v1;
  int64_t n;
};
struct AdamWHyper {
  float lr, beta1, beta2, eps, weightDecay, biasCorrection1, biasCorrection2;
};
/** Every tensor in one launch; `tensors` is a device array of `count` entries. */
cudaError_t launchAdamW(const AdamWTensor* tensors, int count, int64_t maxN, const AdamWHyper& h,
                        cudaStream_t stream);

/**
 * Attention scores -> probabilities in place, llm.c style: scores [B*H, Tq, Tk] from a batched
 * GEMM are scaled, masked (causal band aligned to the end, key padding mask [B, Tk], additive
 * bias broadcast from [bB, bH, bTq, bTk]) and soft-maxed in one kernel. A fully masked row gives 0.
 */
struct AttentionDims {
  int B, H, Tq, Tk;
  int biasDims[4];
};
cudaError_t launchAttentionSoftmax(float* scores, const AttentionDims& d, float scale, bool causal, const float* mask,
                                   const float* bias, cudaStream_t stream);
/** dScores = probs * (dProbs - rowsum(dProbs * probs)), in place over dProbs. */
cudaError_t launchSoftmaxBackward(const float* probs, float* dProbs, int64_t rows, int cols, cudaStream_t stream);

/** out[i, :] = x[indices[i], :]; out-of-range indices give zeros and set *badIndex (device int). */
cudaError_t launchGather(const float* x, int64_t rows, const int32_t* indices, int64_t count, float* out,
                         int64_t rowSize, int32_t* badIndex, cudaStream_t stream);
/** out[ids[i], :] += x[i, :] (out zeroed first by the caller); ids outside [0, numSegments) are dropped. */
cudaError_t launchScatterAdd(const float* x, const int32_t* ids, int64_t count, float* out, int64_t numSegments,
                             int64_t rowSize, cudaStream_t stream);

/** out[...] = x[offset + sum(idx_k * inStrides_k)] over `dims`: transpose, slice, one piece of a concat or pad. */
struct StridedDims {
  int rank;
  int64_t dims[kMaxRank];
  int64_t inStrides[kMaxRank];
  int64_t outStrides[kMaxRank];
};
cudaError_t launchStridedCopy(const float* x, int64_t inOffset, float* out, int64_t outOffset, const StridedDims& d,
                              int64_t n, cudaStream_t stream);

}  // namespace tessera
