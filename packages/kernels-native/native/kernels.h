// Plain C++ kernels over caller-owned fp32 buffers (tfjs-backend-cpu's own Float32Arrays:
// no copies). The N-API layer in addon.cc only unpacks arguments and calls these.
#pragma once

#include <cstdint>

namespace tessera {

// One sgemm per batch entry: out[i] = op(a + aOff[i]) · op(b + bOff[i]) (+ bias[N] on every
// row when bias is not null), row-major, [M, N].
void MatMul(const float* a, const float* b, float* out, int64_t batch, const int64_t* aOff, const int64_t* bOff,
            int M, int N, int K, bool transA, bool transB, const float* bias = nullptr);

// A linear's weight and bias gradients from x [rows, in] and dy [rows, out]: dW = xᵀ·dy
// [in, out], or dyᵀ·x [out, in] when transposeWeight (nn.Linear's layout); db[out] = the
// column sums of dy (float64), when db is not null. On our own GEMM the sums come from the
// pass that packs dy for the product, so dy is read once.
void LinearWeightGrad(const float* x, const float* dy, float* dW, float* db, int64_t rows, int inF, int outF,
                      bool transposeWeight);

// out[r, 0:N] = row[0:N] for r in [0, rows): the bias a matmul then accumulates onto.
void FillRows(float* out, int64_t rows, int64_t N, const float* row);

void Gelu(const float* x, float* y, int64_t n, bool tanhForm);
void GeluGrad(const float* x, const float* dy, float* dx, int64_t n, bool tanhForm);

void LayerNorm(const float* x, const float* gamma, const float* beta, float* y, int64_t rows, int C, double eps);
void LayerNormGrad(const float* x, const float* dy, const float* gamma, float* dx, float* dgamma, float* dbeta,
                   int64_t rows, int C, double eps);
void RmsNorm(const float* x, const float* gamma, float* y, int64_t rows, int C, double eps);
void RmsNormGrad(const float* x, const float* dy, const float* gamma, float* dx, float* dgamma, int64_t rows, int C,
                 double eps);

// Sum over counted rows of logsumexp(row) - row[label]; rows labelled ignoreIndex count for nothing.
double CrossEntropy(const float* logits, const int32_t* labels, int64_t N, int V, int ignoreIndex);
void CrossEntropyGrad(const float* logits, const int32_t* labels, float* dlogits, int64_t N, int V, int ignoreIndex,
                      double scale);

// Where head (b, h) of a q/k/v/out tensor lives: element (b, h, t, d) is at
// offset + b·batch + h·head + t·row + d. Contiguous [B, H, T, D] is {0, H·T·D, T·D, D};
// GPT's packed projection [B, T, 3·H·D] gives q, k and v as views with row = 3·H·D, so
// attention reads them in place (no split, no head transposes) and writes [B, T, H·D].
struct HeadLayout {
  int64_t offset, batch, head, row;
  int64_t At(int b, int h) const { return offset + b * batch + h * head; }
  // One past the last element a [B, H, T, width] walk touches (0 when empty).
  int64_t Extent(int B, int H, int T, int width) const {
    if (B == 0 || H == 0 || T == 0 || width == 0) return 0;
    return offset + (B - 1) * batch + (H - 1) * head + static_cast<int64_t>(T - 1) * row + width;
  }
};
inline HeadLayout ContiguousHeads(int H, int T, int width) {
  return {0, static_cast<int64_t>(H) * T * width, static_cast<int64_t>(T) * width, width};
}

struct AttentionShape {
  int B, H, Tq, Tk, D, Dv;
  float scale;
  bool causal;
  const float* mask;     // [B, Tk] 1 = attend, or null
  const float* bias;     // broadcastable to [B, H, Tq, Tk], or null
  int biasShape[4];      // each 1 or the full size
  // q (and dq), k (and dk), v (and dv), out (and dy).
  HeadLayout ql, kl, vl, ol;
};
void Attention(const AttentionShape& s, const float* q, const float* k, const float* v, float* out);
// dbias has the bias's shape (or [B, H, Tq, Tk] without a bias; nullptr without a bias when
// the scores' gradient is not wanted). dq, dk and dv may be one
// buffer (the packed projection's gradient) when their layouts do not overlap.
void AttentionGrad(const AttentionShape& s, const float* dy, const float* q, const float* k, const float* v,
                   float* dq, float* dk, float* dv, float* dbias);

void AdamW(const float* p, const float* g, const float* m, const float* v, float* p1, float* m1, float* v1, int64_t n,
           double lr, double beta1, double beta2, double eps, double weightDecay, int step);

// out[i, :] = x[indices[i], :]; returns the position of the first index outside [0, rows), or -1.
int64_t Gather(const float* x, int64_t rows, const int32_t* indices, int64_t n, float* out, int64_t rowSize);
// out[s, :] = sum of x[i, :] over i with ids[i] == s; ids outside [0, numSegments) are dropped.
void SegmentSum(const float* x, const int32_t* ids, int64_t n, float* out, int64_t numSegments, int64_t rowSize);

// Copies a strided view of x (rank <= 8; dims in elements, strides in elements) into out,
// also strided: transpose, slice, split and concat are all this one loop.
void StridedCopy(const float* x, int64_t xOffset, const int64_t* xStrides, float* out, int64_t outOffset,
                 const int64_t* outStrides, const int64_t* dims, int rank);

// out[o, i] = sum over r of x[o, r, i] (float64 accumulation; over many rows, in fixed blocks of rows).
void ReduceSum(const float* x, int64_t outer, int64_t reduce, int64_t inner, float* out);

// out = a op b where the smaller operand repeats along the leading dims (trailing broadcast):
// aSize and bSize each equal n or divide it. op: 0 add, 1 sub, 2 mul.
void Binary(int op, const float* a, int64_t aSize, const float* b, int64_t bSize, float* out, int64_t n);
// op: 0 relu, 1 step (x > 0 ? 1 : alpha).
void Unary(int op, const float* x, float* out, int64_t n, float alpha);

}  // namespace tessera
