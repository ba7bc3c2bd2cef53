// The native kernels. Conventions:
// - fp32 storage, fp32 inner loops written as axpy over contiguous memory so the compiler
//   vectorises them; float64 for the few scalars where cancellation matters (row
//   statistics, softmax denominators, loss sums, AdamW).
// - Determinism: each output element is computed by exactly one thread, in an order that
//   does not depend on how the work was split; cross-row reductions (dgamma, dbeta,
//   broadcast dbias, the loss) are summed per fixed block of rows and then in block order.
#include "kernels.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "aligned.h"
#include "gemm.h"
#include "lanes.h"
#include "pool.h"
#include "small_gemm.h"

namespace tessera {

namespace {

constexpr int64_t kRowBlock = 16;        // rows per partial sum in cross-row reductions
constexpr int64_t kElementGrain = 8192;  // elementwise items per thread, at least

constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr double kCoeff = 0.044715;

inline int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// exp for fp32 that the compiler can vectorise (glibc's expf/tanhf are scalar calls, and
// tanhf dominated GELU at ~30 ns/element): Cephes' range reduction and degree-6
// polynomial, within ~2 ulp over the clamped range.
inline float VecExp(float x) {
  x = std::min(88.0f, std::max(-87.0f, x));
  // Round to nearest by the 1.5·2^23 trick rather than std::floor: GCC vectorises floorf
  // only under -fno-trapping-math, and then this loop ran scalar (~5 ns per GELU element).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return e * scale;
}

// erfc for fp32 that vectorises (glibc's erfcf is a scalar call, ~15 ns per element in the
// exact GELU): the Chebyshev-fitted form t·exp(-z² + P(t)), t = 1 / (1 + z/2), z = |x|
// (Numerical Recipes' "erfcc", 1.2e-7 relative in exact arithmetic), and erfc(x) =
// 2 - erfc(-x) below zero. In fp32, measured against double erfc: relative error <= 1.9e-6
// for |x| <= 3 and <= 1.3e-5 down to underflow (the fp32 rounding of -z² + P grows with
// z²). It stays relative where erfc is tiny, so GELU's far negative tail keeps its digits.
inline float VecErfc(float x) {
  const float z = std::fabs(x);
  const float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  const float r = t * VecExp(p - z * z);
  return x >= 0.0f ? r : 2.0f - r;
}

}  // namespace

void FillRows(float* out, int64_t rows, int64_t N, const float* row) {
  ParallelFor(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, N)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) std::copy(row, row + N, out + r * N);
  });
}

namespace {
// Attention runs one head per task of our pool, each head's products as single-threaded
// sgemm calls: OpenBLAS's own threads would fight the pool's, and one thread per head
// makes the result independent of the thread count (each head always takes the same path).
class SingleThreadedBlas {
 public:
  SingleThreadedBlas() : saved_(openblas_get_num_threads()) { openblas_set_num_threads(1); }
  ~SingleThreadedBlas() { openblas_set_num_threads(saved_); }
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  int saved_;
};

// Products up to this many multiply-adds (batch·M·N·K) run as single-threaded sgemm calls on
// our own pool's threads, one slice of rows (or columns) each, instead of through OpenBLAS's
// threads: for small products OpenBLAS's wake-up and hand-off cost about as much as the
// arithmetic (the small GPT's [768,128]·[128,384] ran 1.5× faster split this way), while
// for large ones its shared packing wins. TESSERA_NATIVE_POOL_GEMM_MAX_MACS overrides the
// limit (0: always OpenBLAS's threads), for measuring.
int64_t PoolGemmMaxMacs() {
  static const int64_t limit = [] {
    const char* env = std::getenv("TESSERA_NATIVE_POOL_GEMM_MAX_MACS");
    return env ? std::max<int64_t>(0, std::atoll(env)) : int64_t{1} << 28;
  }();
  return limit;
}

bool UsePoolGemm(int64_t batch, int64_t M, int64_t N, int64_t K) {
  return Pool().Size() > 1 && batch * M * N * K <= PoolGemmMaxMacs();
}

// Products of at least this many multiply-adds per batch item run on our own GEMM (gemm.h)
// where the CPU has AVX-512F or AVX2 + FMA, ahead of both sgemm paths: no beta pass, no bias
// broadcast before it, no per-call packing of A, and no OpenBLAS threads competing with the
// pool's.
// Smaller ones stay on sgemm, where packing B would cost more than it saves.
constexpr int64_t kOwnGemmMinItemMacs = int64_t{1} << 22;

bool UseOwnGemm(int64_t M, int64_t N, int64_t K) { return OwnGemmAvailable() && M * N * K >= kOwnGemmMinItemMacs; }

// C = op(A)·op(B) (+ C when accumulate) for every batch item, split across the pool: whole
// items when there are enough, else each item's rows (or columns, when wider than tall) in
// slices of 16. Each element's sum over K runs in the same order whatever the split.
void PoolGemm(const float* a, const float* b, float* out, int64_t batch, const int64_t* aOff, const int64_t* bOff,
              int M, int N, int K, bool transA, bool transB, bool accumulate) {
  const int lda = transA ? M : K;
  const int ldb = transB ? K : N;
  const int64_t T = Pool().Size();
  const int64_t parts = batch >= T ? 1 : T;
  const bool byRows = M >= N;
  const int64_t extent = byRows ? M : N;
  SingleThreadedBlas blas;
  ParallelFor(batch * parts, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t i = t / parts, part = t % parts;
      const int64_t s0 = extent * part / parts / 16 * 16;
      const int64_t s1 = part + 1 == parts ? extent : extent * (part + 1) / parts / 16 * 16;
      if (s1 <= s0) continue;
      float* c = out + i * static_cast<int64_t>(M) * N;
      const float* ai = a + aOff[i];
      const float* bi = b + bOff[i];
      if (byRows) {
        // Rows s0..s1 of op(A): row offset in A, or column offset when A is stored transposed.
        ai += transA ? s0 : s0 * K;
        c += s0 * N;
      } else {
        // Columns s0..s1 of op(B).
        bi += transB ? s0 * K : s0;
        c += s0;
      }
      const int m = byRows ? static_cast<int>(s1 - s0) : M;
      const int n = byRows ? N : static_cast<int>(s1 - s0);
      cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, m, n, K, 1.0f,
                  ai, lda, bi, ldb, accumulate ? 1.0f : 0.0f, c, N);
    }
  });
}

}  // namespace

void MatMul(const float* a, const float* b, float* out, int64_t batch, const int64_t* aOff, const int64_t* bOff,
            int M, int N, int K, bool transA, bool transB, const float* bias) {
  const int lda = transA ? M : K;
  const int ldb = transB ? K : N;
  if (K > 0 && UseOwnGemm(M, N, K)) {
    for (int64_t i = 0; i < batch; i++) {
      OwnGemm(M, N, K, a + aOff[i], transA ? 1 : K, transA ? M : 1, b + bOff[i], ldb, transB, bias,
              out + i * static_cast<int64_t>(M) * N, N);
    }
    return;
  }
  // With a bias, C starts as the bias rows and sgemm adds onto it (beta 1): the pass that
  // zeroes C for beta 0 becomes the bias broadcast, so the bias costs no pass of its own.
  if (bias) FillRows(out, batch * M, N, bias);
  if (K > 0 && UsePoolGemm(batch, M, N, K)) {
    PoolGemm(a, b, out, batch, aOff, bOff, M, N, K, transA, transB, bias != nullptr);
    return;
  }
  for (int64_t i = 0; i < batch; i++) {
    float* c = out + i * static_cast<int64_t>(M) * N;
    if (K == 0) {
      if (!bias) std::fill(c, c + static_cast<int64_t>(M) * N, 0.0f);
      continue;
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K, 1.0f,
                a + aOff[i], lda, b + bOff[i], ldb, bias ? 1.0f : 0.0f, c, N);
  }
}

void LinearWeightGrad(const float* x, const float* dy, float* dW, float* db, int64_t rows, int inF, int outF,
                      bool transposeWeight) {
  // dW = op(A)·op(B) with K = rows: xᵀ·dy (A = x, B = dy: db sums B's columns), or dyᵀ·x
  // (A = dy, B = x: db sums A's rows).
  const int M = transposeWeight ? outF : inF, N = transposeWeight ? inF : outF;
  const float* a = transposeWeight ? dy : x;
  const float* b = transposeWeight ? x : dy;
  if (rows > 0 && rows <= INT32_MAX && UseOwnGemm(M, N, rows)) {
    OwnGemm(M, N, static_cast<int>(rows), a, 1, M, b, N, false, nullptr, dW, N, GemmSums{db, transposeWeight});
    return;
  }
  const int64_t zero = 0;
  MatMul(a, b, dW, 1, &zero, &zero, M, N, static_cast<int>(rows), true, false, nullptr);
  if (db) ReduceSum(dy, 1, rows, outF, db);
}

// GELU in fp32 math (VecExp and VecErfc above; the tanh form through the sigmoid,
// ½(1 + tanh u) = 1 / (1 + e^{-2u}), exact where tanh u rounds to ±1): the reference
// computes in float64 and rounds, so the two agree to a few ulps of the output.
void Gelu(const float* x, float* y, int64_t n, bool tanhForm) {
  const float k0 = static_cast<float>(kSqrt2OverPi), k1 = static_cast<float>(kCoeff);
  const float r2 = static_cast<float>(kInvSqrt2);
  ParallelFor(n, kElementGrain, [&](int64_t i0, int64_t i1) {
    if (tanhForm) {
      // ½·v·(1 + tanh u) = v / (1 + e^{-2u}): one exp and one division, a fifth fewer
      // operations than forming 1 + tanh u, and just as exact (no cancellation either way;
      // VecExp's clamp keeps e^{-2u} finite).
      for (int64_t i = i0; i < i1; i++) {
        const float v = x[i];
        y[i] = v / (1.0f + VecExp(-2.0f * k0 * (v + k1 * v * v * v)));
      }
    } else {
      // 1 + erf(z) = erfc(-z): no cancellation for very negative x.
      for (int64_t i = i0; i < i1; i++) y[i] = 0.5f * x[i] * VecErfc(-x[i] * r2);
    }
  });
}

void GeluGrad(const float* x, const float* dy, float* dx, int64_t n, bool tanhForm) {
  const float k0 = static_cast<float>(kSqrt2OverPi), k1 = static_cast<float>(kCoeff);
  const float r2 = static_cast<float>(kInvSqrt2), r2pi = static_cast<float>(kInvSqrt2Pi);
  ParallelFor(n, kElementGrain, [&](int64_t i0, int64_t i1) {
    // One loop per form, no branch inside, so the tanh form vectorises.
    if (tanhForm) {
      // With E = e^{-2u} and s = 1 / (1 + E) = ½(1 + tanh u): ½(1 - tanh² u) = 2s(1 - s) and
      // 1 - s = E·s, each exact to a few ulps (no 1 - t cancellation where |tanh u| rounds to
      // 1: at x = 30 the derivative multiplies it by ~1500). d/dv = s + 2v·s·(1 - s)·u'.
      for (int64_t i = i0; i < i1; i++) {
        const float v = x[i];
        const float e = VecExp(-2.0f * k0 * (v + k1 * v * v * v));
        const float sg = 1.0f / (1.0f + e);
        dx[i] = dy[i] * (sg * (1.0f + 2.0f * v * (e * sg) * k0 * (1 + 3 * k1 * v * v)));
      }
    } else {
      for (int64_t i = i0; i < i1; i++) {
        const float v = x[i];
        dx[i] = dy[i] * (0.5f * VecErfc(-v * r2) + v * r2pi * VecExp(-0.5f * v * v));
      }
    }
  });
}

namespace {

// Mean and 1/sqrt(var + eps) of one row, two-pass in float64 (as the reference).
inline void RowStats(const float* x, int C, double eps, double* mean, double* rstd) {
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int c = 0; c < C; c++) sum += x[c];
  const double m = sum / C;
  double sq = 0;
#pragma omp simd reduction(+ : sq)
  for (int c = 0; c < C; c++) {
    const double d = x[c] - m;
    sq += d * d;
  }
  *mean = m;
  *rstd = 1.0 / std::sqrt(sq / C + eps);
}

inline double RowInvRms(const float* x, int C, double eps) {
  double sq = 0;
#pragma omp simd reduction(+ : sq)
  for (int c = 0; c < C; c++) sq += static_cast<double>(x[c]) * x[c];
  return 1.0 / std::sqrt(sq / C + eps);
}

// Sums per-block partials [nBlocks, C] in block order into out[C].
// Row by row, so the walk is contiguous: column by column it strode C floats per step (128
// blocks of a [2048, 384] norm gradient took a tenth of the kernel). Each column's sum still
// runs in block order.
void ReduceBlocks(const std::vector<double>& partial, int64_t nBlocks, int C, float* out) {
  std::vector<double> sum(C, 0.0);
  for (int64_t blk = 0; blk < nBlocks; blk++) {
    const double* row = partial.data() + blk * C;
    for (int c = 0; c < C; c++) sum[c] += row[c];
  }
  for (int c = 0; c < C; c++) out[c] = static_cast<float>(sum[c]);
}

// One row of LayerNorm's output from its statistics, in float32 (in float64 it ran four
// lanes to a vector for no digit the float32 output keeps).
void LayerNormRow(const float* __restrict x, const float* __restrict gamma, const float* __restrict beta,
                  float* __restrict y, int C, float mean, float rstd) {
  if (beta) {
    for (int c = 0; c < C; c++) y[c] = (x[c] - mean) * rstd * gamma[c] + beta[c];
  } else {
    for (int c = 0; c < C; c++) y[c] = (x[c] - mean) * rstd * gamma[c];
  }
}

// A row's Σ dx̂ and Σ dx̂·x̂ (dx̂ = dy·gamma), in float32 lanes under `omp simd`, a loop of its
// own: float64 accumulators spilled, and inside the lambda GCC turned gamma[c] into gathers.
void LayerNormGradRowSums(const float* __restrict x, const float* __restrict dy, const float* __restrict gamma, int C,
                          float mean, float rstd, float* sumDxHat, float* sumDxHatXHat) {
  float s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
  for (int c = 0; c < C; c++) {
    const float dxh = dy[c] * gamma[c];
    s1 += dxh;
    s2 += dxh * ((x[c] - mean) * rstd);
  }
  *sumDxHat = s1;
  *sumDxHatXHat = s2;
}

// One row of LayerNormGrad's dx, and its terms of dgamma and dbeta added to the block's.
// __restrict: without it GCC's alias checks gave up and the loop ran scalar.
void LayerNormGradRow(const float* __restrict x, const float* __restrict dy, const float* __restrict gamma,
                      float* __restrict dx, float* __restrict dgamma, float* __restrict dbeta, int C, float mean,
                      float rstd, float shift, float slope) {
  for (int c = 0; c < C; c++) {
    const float xh = (x[c] - mean) * rstd;
    dgamma[c] += dy[c] * xh;
    dbeta[c] += dy[c];
    dx[c] = rstd * (dy[c] * gamma[c]) - shift - xh * slope;
  }
}

}  // namespace

void LayerNorm(const float* x, const float* gamma, const float* beta, float* y, int64_t rows, int C, double eps) {
  ParallelFor(rows, std::max<int64_t>(1, kElementGrain / std::max(C, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x + r * C;
      float* yr = y + r * C;
      double mean, rstd;
      RowStats(xr, C, eps, &mean, &rstd);
      LayerNormRow(xr, gamma, beta, yr, C, static_cast<float>(mean), static_cast<float>(rstd));
    }
  });
}

void LayerNormGrad(const float* x, const float* dy, const float* gamma, float* dx, float* dgamma, float* dbeta,
                   int64_t rows, int C, double eps) {
  const int64_t nBlocks = CeilDiv(rows, kRowBlock);
  std::vector<double> pg(nBlocks * C, 0.0), pb(nBlocks * C, 0.0);
  ParallelFor(nBlocks, std::max<int64_t>(1, kElementGrain / (kRowBlock * std::max(C, 1))),
              [&](int64_t b0, int64_t b1) {
                // The row statistics stay in float64 (x - mean may cancel); the per-element
                // terms are float32, a vector's worth at a time: all in float64 this kernel
                // was bound by its arithmetic (1.27 ms for [2048, 384] on Zen 3, four times
                // LayerNorm's forward).
                // dgamma and dbeta gather a block's kRowBlock rows in float32 first, then
                // join the float64 block partials.
                std::vector<float> gBlock(C), bBlock(C);
                for (int64_t blk = b0; blk < b1; blk++) {
                  std::fill(gBlock.begin(), gBlock.end(), 0.0f);
                  std::fill(bBlock.begin(), bBlock.end(), 0.0f);
                  for (int64_t r = blk * kRowBlock; r < std::min(rows, (blk + 1) * kRowBlock); r++) {
                    const float* xr = x + r * C;
                    const float* dyr = dy + r * C;
                    double mean, rstd;
                    RowStats(xr, C, eps, &mean, &rstd);
                    const float meanF = static_cast<float>(mean), rstdF = static_cast<float>(rstd);
                    float sumDxHat, sumDxHatXHat;
                    LayerNormGradRowSums(xr, dyr, gamma, C, meanF, rstdF, &sumDxHat, &sumDxHatXHat);
                    const float shift = static_cast<float>(rstd * (static_cast<double>(sumDxHat) / C));
                    const float slope = static_cast<float>(rstd * (static_cast<double>(sumDxHatXHat) / C));
                    LayerNormGradRow(xr, dyr, gamma, dx + r * C, gBlock.data(), bBlock.data(), C, meanF, rstdF,
                                     shift, slope);
                  }
                  double* g = &pg[blk * C];
                  double* bb = &pb[blk * C];
                  for (int c = 0; c < C; c++) {
                    g[c] = gBlock[c];
                    bb[c] = bBlock[c];
                  }
                }
              });
  ReduceBlocks(pg, nBlocks, C, dgamma);
  ReduceBlocks(pb, nBlocks, C, dbeta);
}

void RmsNorm(const float* x, const float* gamma, float* y, int64_t rows, int C, double eps) {
  ParallelFor(rows, std::max<int64_t>(1, kElementGrain / std::max(C, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x + r * C;
      const double inv = RowInvRms(xr, C, eps);
      for (int c = 0; c < C; c++) y[r * C + c] = static_cast<float>(xr[c] * inv * gamma[c]);
    }
  });
}

void RmsNormGrad(const float* x, const float* dy, const float* gamma, float* dx, float* dgamma, int64_t rows, int C,
                 double eps) {
  const int64_t nBlocks = CeilDiv(rows, kRowBlock);
  std::vector<double> pg(nBlocks * C, 0.0);
  ParallelFor(nBlocks, std::max<int64_t>(1, kElementGrain / (kRowBlock * std::max(C, 1))),
              [&](int64_t b0, int64_t b1) {
                for (int64_t blk = b0; blk < b1; blk++) {
                  double* g = &pg[blk * C];
                  for (int64_t r = blk * kRowBlock; r < std::min(rows, (blk + 1) * kRowBlock); r++) {
                    const float* xr = x + r * C;
                    const float* dyr = dy + r * C;
                    const double inv = RowInvRms(xr, C, eps);
                    double meanDxnX = 0;
#pragma omp simd reduction(+ : meanDxnX)
                    for (int c = 0; c < C; c++) {
                      g[c] += static_cast<double>(dyr[c]) * xr[c] * inv;
                      meanDxnX += static_cast<double>(dyr[c]) * gamma[c] * xr[c];
                    }
                    meanDxnX /= C;
                    const double inv3 = inv * inv * inv;
                    for (int c = 0; c < C; c++) {
                      dx[r * C + c] = static_cast<float>(inv * dyr[c] * gamma[c] - xr[c] * inv3 * meanDxnX);
                    }
                  }
                }
              });
  ReduceBlocks(pg, nBlocks, C, dgamma);
}

namespace {

// Largest of x[0, n) (-Inf when empty), NaN skipped: callers that care count NaN apart.
inline float RowMax(const float* x, int64_t n) {
  return LaneMax(x, n, -INFINITY, [](float v) { return v; });
}

// The largest of x[0, n) (-Inf when empty, NaN skipped), and from the same pass whether
// any is NaN or +Inf.
inline float RowMaxFlaggingNonFinite(const float* __restrict x, int64_t n, bool* nonFinite) {
  float m = -INFINITY;
  int32_t bad = 0;
#pragma omp simd reduction(max : m) reduction(| : bad)
  for (int64_t j = 0; j < n; j++) {
    const float v = x[j];
    m = v > m ? v : m;
    bad |= !(v < INFINITY);
  }
  *nonFinite = bad != 0;
  return m;
}

// log Σ exp(row) in float64, exactly (std::exp per element): for rows holding NaN, +Inf or
// only -Inf, whose result the fast path below would not reproduce.
inline double RowLogSumExpExact(const float* row, int V) {
  const float max = RowMax(row, V);
  double sum = 0;
  for (int v = 0; v < V; v++) sum += std::exp(static_cast<double>(row[v]) - max);
  return max + std::log(sum);
}

// Writes e[v] = exp(row[v] - max) in fp32 (VecExp, vectorised; std::exp on doubles is a
// scalar call, two per logit before), sets *max and returns max + log Σ e in float64, or NaN
// when the row needs the exact path (NaN, +Inf, or no finite logit). exp's argument is rounded to
// fp32 first: its error, p·|arg|·2^-24, stays below 3e-8 for any p = e^arg.
inline double RowLogSumExpFast(const float* row, int V, float* e, float* rowMax) {
  bool nonFinite;
  const float max = RowMaxFlaggingNonFinite(row, V, &nonFinite);
  if (nonFinite) return NAN;
  *rowMax = max;
  if (max == -INFINITY) return NAN;
  for (int v = 0; v < V; v++) e[v] = VecExp(row[v] - max);
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int v = 0; v < V; v++) sum += e[v];
  return max + std::log(sum);
}

}  // namespace

double CrossEntropy(const float* logits, const int32_t* labels, int64_t N, int V, int ignoreIndex) {
  std::vector<double> rowLoss(N, 0.0);
  ParallelFor(N, std::max<int64_t>(1, kElementGrain / std::max(V, 1)), [&](int64_t n0, int64_t n1) {
    std::vector<float> e(V);
    for (int64_t n = n0; n < n1; n++) {
      const int y = labels[n];
      if (y == ignoreIndex) continue;
      const float* row = logits + n * V;
      float max;
      double lse = RowLogSumExpFast(row, V, e.data(), &max);
      if (std::isnan(lse)) lse = RowLogSumExpExact(row, V);
      rowLoss[n] = lse - row[y];
    }
  });
  double total = 0;
  for (int64_t n = 0; n < N; n++) total += rowLoss[n];
  return total;
}

void CrossEntropyGrad(const float* logits, const int32_t* labels, float* dlogits, int64_t N, int V, int ignoreIndex,
                      double scale) {
  ParallelFor(N, std::max<int64_t>(1, kElementGrain / std::max(V, 1)), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; n++) {
      const int y = labels[n];
      float* d = dlogits + n * V;
      if (y == ignoreIndex) {
        std::fill(d, d + V, 0.0f);
        continue;
      }
      const float* row = logits + n * V;
      // The fast path leaves exp(row - max) in d: the softmax is that times exp(max - lse).
      float max;
      const double lse = RowLogSumExpFast(row, V, d, &max);
      if (!std::isnan(lse)) {
        const double toP = std::exp(static_cast<double>(max) - lse) * scale;
        const double ey = d[y];
        for (int v = 0; v < V; v++) d[v] = static_cast<float>(d[v] * toP);
        d[y] = static_cast<float>(ey * toP - scale);
        continue;
      }
      const double exact = RowLogSumExpExact(row, V);
      for (int v = 0; v < V; v++) {
        d[v] = static_cast<float>((std::exp(row[v] - exact) - (v == y ? 1.0 : 0.0)) * scale);
      }
    }
  });
}

namespace {

struct BiasIndexer {
  int64_t base = 0;
  int64_t jStep = 0;
};

// Offset of bias[b, h, i, 0] and the step per key, under broadcasting.
inline BiasIndexer BiasRow(const AttentionShape& s, int b, int h, int i) {
  const int64_t s1 = s.biasShape[1], s2 = s.biasShape[2], s3 = s.biasShape[3];
  BiasIndexer r;
  r.base = (s.biasShape[0] == 1 ? 0 : b) * s1 * s2 * s3 + (s1 == 1 ? 0 : h) * s2 * s3 + (s2 == 1 ? 0 : i) * s3;
  r.jStep = s3 == 1 ? 0 : 1;
  return r;
}

// Turns row (b, h, i) of scaled scores p[0, width) into attention weights in place: bias
// added, masked and causal keys (nk <= j < width) zero, rows with no allowed key all zeros.
// Columns from width on are left as they are: the block's products read only [0, width).
inline void SoftmaxRow(const AttentionShape& s, int b, int h, int i, int nk, int width, float* p) {
  std::fill(p + nk, p + width, 0.0f);
  if (s.bias) {
    const BiasIndexer bi = BiasRow(s, b, h, i);
    for (int j = 0; j < nk; j++) p[j] += s.bias[bi.base + j * bi.jStep];
  }
  const float* mask = s.mask ? s.mask + static_cast<int64_t>(b) * s.Tk : nullptr;
  if (mask) {
    for (int j = 0; j < nk; j++) p[j] = mask[j] == 0 ? -INFINITY : p[j];
  }
  // NaN or +Inf among the scores makes the row NaN, as in PyTorch.
  bool nonFinite;
  const float max = RowMaxFlaggingNonFinite(p, nk, &nonFinite);
  if (nonFinite) {
    std::fill(p, p + nk, NAN);
    return;
  }
  if (max == -INFINITY) {  // no allowed key (or only -inf scores): the row is all zeros
    std::fill(p, p + nk, 0.0f);
    return;
  }
  // Vectorised exp, then the sum in float64 (one loop doing both stays scalar in GCC 12).
  // VecExp clamps at -87, so a masked key adds e^-87 to a sum that is at least 1 (no change
  // in float64) and is zeroed below.
  for (int j = 0; j < nk; j++) p[j] = VecExp(p[j] - max);
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int j = 0; j < nk; j++) sum += p[j];
  const float inv = static_cast<float>(1.0 / sum);
  if (mask) {
    for (int j = 0; j < nk; j++) p[j] = mask[j] == 0 ? 0.0f : p[j] * inv;
  } else {
    for (int j = 0; j < nk; j++) p[j] *= inv;
  }
}

// Keys query i may see: all of them, or up to i + (Tk - Tq) when causal.
// Never negative: with Tq > Tk the first rows see no key at all.
inline int VisibleKeys(const AttentionShape& s, int i) {
  return s.causal ? std::max(0, std::min(s.Tk, i + s.Tk - s.Tq + 1)) : s.Tk;
}

// C[M, N] = alpha · op(A) · B (+ C when accumulate), all row-major; op(A) is A or Aᵀ.
// Every attention product is in this form (K and V are transposed once per head), so that
// SmallGemm (AVX-512F or AVX2) reads the operands in place instead of sgemm packing them per
// call.
inline void Product(bool transA, int M, int N, int K, float alpha, const float* A, int64_t lda, const float* B,
                    int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  if (M == 0 || N == 0) return;
  if (SmallGemmAvailable()) {
    SmallGemm(M, N, K, alpha, A, transA ? 1 : lda, transA ? lda : 1, B, ldb, C, ldc, accumulate);
    return;
  }
  if (K == 0) {
    if (!accumulate) {
      for (int r = 0; r < M; r++) std::fill(C + r * ldc, C + r * ldc + N, 0.0f);
    }
    return;
  }
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, CblasNoTrans, M, N, K, alpha, A,
              static_cast<int>(lda), B, static_cast<int>(ldb), accumulate ? 1.0f : 0.0f, C, static_cast<int>(ldc));
}

// Query rows are processed in blocks of this many: a causal block's rows see at most the
// keys up to its last row, so the products skip the hidden upper triangle (about 40% of the
// work at T = 256) while each product stays large enough to run at speed. A multiple of the
// small GEMM's 6-row tile: blocks of 64 ended in a 4-row tile, at two thirds of the FMA
// rate; 60 made the large GPT's attention forward 5 % faster on Zen 3 (backward 1 %).
constexpr int kQueryBlock = 60;

// Keys the rows [i0, i1) may see together: those of the last row.
inline int BlockKeys(const AttentionShape& s, int i1) { return VisibleKeys(s, i1 - 1); }

// The row stride of a head's scratch rows of Tk floats (P, dP, dS, Kᵀ, Vᵀ): whole cache
// lines, an odd number of them. The products walk these down a column (dSᵀ·Q and Pᵀ·dY read
// one line per row of a query block, the B operand four per row): at a stride of exactly
// 256 floats a block's 64 rows fell into 4 of L1's 64 sets and evicted each other.
inline int64_t ScratchStride(int Tk) {
  int64_t lines = (static_cast<int64_t>(Tk) + 15) / 16;
  if (lines % 2 == 0) lines++;
  return lines * 16;
}

// P[i0:i1, 0:nk] = softmax(scale · Q·Kᵀ + bias, masked) for head (b, h), p with row stride
// ldp; qBlock is the block's first query row (rows ldq apart), kt the head's Kᵀ [D, Tk] with
// row stride ldkt.
inline void BlockProbabilities(const AttentionShape& s, int b, int h, int i0, int i1, int nk, const float* qBlock,
                               int64_t ldq, const float* kt, int64_t ldkt, float* p, int64_t ldp) {
  // [rows, D]·[D, nk]
  Product(false, i1 - i0, nk, s.D, s.scale, qBlock, ldq, kt, ldkt, p, ldp, false);
  for (int i = i0; i < i1; i++) {
    // Row i's own visible keys may be fewer than the block's: SoftmaxRow zeroes the rest.
    SoftmaxRow(s, b, h, i, std::min(nk, VisibleKeys(s, i)), nk, p + static_cast<int64_t>(i - i0) * ldp);
  }
}

void ZeroRows(float* x, int rows, int64_t stride, int width) {
  for (int r = 0; r < rows; r++) std::fill(x + r * stride, x + r * stride + width, 0.0f);
}

// One head's [rows, width] slice of a packed tensor (row stride ld), made contiguous: as the
// B operand of a product, rows 4.5 KiB apart (the large GPT's q|k|v) ran 30 % slower than
// adjacent ones, from the cache sets and TLB entries the strided walk takes.
struct Rows {
  const float* p;
  int64_t ld;
};
// Float scratch whose data starts on a 64-byte boundary: the scratch row strides
// (ScratchStride) are whole cache lines, which only line up from an aligned start.
class AlignedFloats {
 public:
  explicit AlignedFloats(int64_t n) : data_(AlignedScratch(storage_, static_cast<size_t>(n))) {}
  float* data() { return data_; }

 private:
  std::vector<float> storage_;
  float* data_;
};

Rows Contiguous(const float* x, int64_t ld, int rows, int width, AlignedFloats& scratch) {
  if (ld == width) return {x, ld};
  for (int r = 0; r < rows; r++) {
    std::copy(x + r * ld, x + r * ld + width, scratch.data() + static_cast<int64_t>(r) * width);
  }
  return {scratch.data(), width};
}

}  // namespace

void Attention(const AttentionShape& s, const float* q, const float* k, const float* v, float* out) {
  const int64_t BH = static_cast<int64_t>(s.B) * s.H;
  SingleThreadedBlas blas;
  ParallelFor(BH, 1, [&](int64_t p0, int64_t p1) {
    const int64_t lds = ScratchStride(s.Tk);
    AlignedFloats p(static_cast<int64_t>(kQueryBlock) * lds);
    AlignedFloats kt(static_cast<int64_t>(s.D) * lds), vHead(static_cast<int64_t>(s.Tk) * s.Dv);
    for (int64_t bh = p0; bh < p1; bh++) {
      const int b = static_cast<int>(bh / s.H), h = static_cast<int>(bh % s.H);
      Transpose(k + s.kl.At(b, h), s.kl.row, s.Tk, s.D, kt.data(), lds);  // [D, Tk]
      const Rows V = Contiguous(v + s.vl.At(b, h), s.vl.row, s.Tk, s.Dv, vHead);  // [Tk, Dv]
      for (int i0 = 0; i0 < s.Tq; i0 += kQueryBlock) {
        const int i1 = std::min(s.Tq, i0 + kQueryBlock);
        const int nk = BlockKeys(s, i1);
        float* O = out + s.ol.At(b, h) + i0 * s.ol.row;
        if (nk == 0) {
          ZeroRows(O, i1 - i0, s.ol.row, s.Dv);
          continue;
        }
        BlockProbabilities(s, b, h, i0, i1, nk, q + s.ql.At(b, h) + i0 * s.ql.row, s.ql.row, kt.data(), lds,
                           p.data(), lds);
        // O[i0:i1] = P·V[0:nk]: [rows, nk]·[nk, Dv]
        Product(false, i1 - i0, s.Dv, nk, 1.0f, p.data(), lds, V.p, V.ld, O, s.ol.row, false);
      }
    }
  });
}

void AttentionGrad(const AttentionShape& s, const float* dy, const float* q, const float* k, const float* v,
                   float* dq, float* dk, float* dv, float* dbias) {
  const int64_t BH = static_cast<int64_t>(s.B) * s.H;
  const int64_t TqTk = static_cast<int64_t>(s.Tq) * s.Tk;
  const bool fullBias = !s.bias || (s.biasShape[0] == s.B && s.biasShape[1] == s.H && s.biasShape[2] == s.Tq &&
                                    s.biasShape[3] == s.Tk);
  // A broadcast bias is shared between heads/batches: its gradient sums over them, which we
  // do after the parallel part, in a fixed order, from the full dScores.
  std::vector<float> dScoresFull;
  if (!fullBias) dScoresFull.resize(BH * TqTk);
  // No dbias wanted (packed attention has no bias): each block's dS lives in a per-thread
  // scratch that stays in cache for the two products that read it, instead of a
  // [B, H, Tq, Tk] buffer written once and thrown away.
  const bool keepScores = dbias != nullptr;
  float* dScores = fullBias ? dbias : dScoresFull.data();
  const int64_t ldq = s.ql.row, ldk = s.kl.row, ldv = s.vl.row, ldo = s.ol.row;
  // The last query block sees the most keys (all of them, as causal attention requires
  // Tk >= Tq): going backwards, its products write dK and dV outright and the earlier
  // blocks add to them.
  const int lastBlock = s.Tq == 0 ? -1 : (s.Tq - 1) / kQueryBlock * kQueryBlock;  // -1: no block
  const int mostKeys = s.Tq == 0 ? 0 : BlockKeys(s, s.Tq);
  SingleThreadedBlas blas;
  ParallelFor(BH, 1, [&](int64_t p0, int64_t p1) {
    const int64_t lds = ScratchStride(s.Tk);
    // dS lives in dbias (row stride Tk) when its values are wanted, else in scratch.
    const int64_t ldds = keepScores ? s.Tk : lds;
    AlignedFloats p(static_cast<int64_t>(kQueryBlock) * lds), dp(static_cast<int64_t>(kQueryBlock) * lds);
    AlignedFloats dsBlock(keepScores ? 0 : static_cast<int64_t>(kQueryBlock) * lds);
    AlignedFloats kt(static_cast<int64_t>(s.D) * lds), vt(static_cast<int64_t>(s.Dv) * lds);
    AlignedFloats qHead(static_cast<int64_t>(s.Tq) * s.D), kHead(static_cast<int64_t>(s.Tk) * s.D),
        dyHead(static_cast<int64_t>(s.Tq) * s.Dv);
    for (int64_t bh = p0; bh < p1; bh++) {
      const int b = static_cast<int>(bh / s.H), h = static_cast<int>(bh % s.H);
      const Rows Q = Contiguous(q + s.ql.At(b, h), ldq, s.Tq, s.D, qHead);        // [Tq, D]
      const Rows K = Contiguous(k + s.kl.At(b, h), ldk, s.Tk, s.D, kHead);        // [Tk, D]
      const Rows dY = Contiguous(dy + s.ol.At(b, h), ldo, s.Tq, s.Dv, dyHead);    // [Tq, Dv]
      float* dQ = dq + s.ql.At(b, h);
      float* dK = dk + s.kl.At(b, h);
      float* dV = dv + s.vl.At(b, h);
      Transpose(K.p, K.ld, s.Tk, s.D, kt.data(), lds);                  // [D, Tk]
      Transpose(v + s.vl.At(b, h), ldv, s.Tk, s.Dv, vt.data(), lds);  // [Dv, Tk]
      // Keys no query block sees get no gradient.
      ZeroRows(dK + mostKeys * ldk, s.Tk - mostKeys, ldk, s.D);
      ZeroRows(dV + mostKeys * ldv, s.Tk - mostKeys, ldv, s.Dv);
      float* dSHead = keepScores ? dScores + bh * TqTk : nullptr;
      for (int i0 = lastBlock; i0 >= 0; i0 -= kQueryBlock) {
        const int i1 = std::min(s.Tq, i0 + kQueryBlock), rows = i1 - i0;
        const int nk = BlockKeys(s, i1);
        // The first block processed covers keys [0, mostKeys): it sets dK and dV there.
        const bool accumulate = i0 != lastBlock;
        float* dS = keepScores ? dSHead + static_cast<int64_t>(i0) * s.Tk : dsBlock.data();
        if (nk == 0) {
          ZeroRows(dQ + i0 * ldq, rows, ldq, s.D);
          if (keepScores) std::fill(dS, dS + static_cast<int64_t>(rows) * s.Tk, 0.0f);
          continue;
        }
        BlockProbabilities(s, b, h, i0, i1, nk, Q.p + i0 * Q.ld, Q.ld, kt.data(), lds, p.data(), lds);
        const float* dYb = dY.p + i0 * dY.ld;
        // dP = dY·Vᵀ: [rows, Dv]·[Dv, nk]
        Product(false, rows, nk, s.Dv, 1.0f, dYb, dY.ld, vt.data(), lds, dp.data(), lds, false);
        // dS = P ∘ (dP − rowsum(P ∘ dP)); zero where the key is hidden (P is zero there).
        for (int i = 0; i < rows; i++) {
          const float* pr = p.data() + static_cast<int64_t>(i) * lds;
          const float* dpr = dp.data() + static_cast<int64_t>(i) * lds;
          float* dsr = dS + static_cast<int64_t>(i) * ldds;
          double dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int j = 0; j < nk; j++) dot += static_cast<double>(pr[j]) * dpr[j];
          const float dotf = static_cast<float>(dot);
          for (int j = 0; j < nk; j++) dsr[j] = pr[j] * (dpr[j] - dotf);
          if (keepScores) std::fill(dsr + nk, dsr + s.Tk, 0.0f);
        }
        // dQ = scale·dS·K: [rows, nk]·[nk, D];  dK += scale·dSᵀ·Q: [nk, rows]·[rows, D];
        // dV += Pᵀ·dY: [nk, rows]·[rows, Dv]
        Product(false, rows, s.D, nk, s.scale, dS, ldds, K.p, K.ld, dQ + i0 * ldq, ldq, false);
        Product(true, nk, s.D, rows, s.scale, dS, ldds, Q.p + i0 * Q.ld, Q.ld, dK, ldk, accumulate);
        Product(true, nk, s.Dv, rows, 1.0f, p.data(), lds, dYb, dY.ld, dV, ldv, accumulate);
      }
    }
  });
  if (!fullBias) {
    const int64_t biasSize =
        static_cast<int64_t>(s.biasShape[0]) * s.biasShape[1] * s.biasShape[2] * s.biasShape[3];
    std::vector<double> acc(biasSize, 0.0);
    for (int64_t bh = 0; bh < BH; bh++) {
      const int b = static_cast<int>(bh / s.H), h = static_cast<int>(bh % s.H);
      for (int i = 0; i < s.Tq; i++) {
        const BiasIndexer bi = BiasRow(s, b, h, i);
        const float* row = dScoresFull.data() + (bh * s.Tq + i) * s.Tk;
        for (int j = 0; j < s.Tk; j++) acc[bi.base + j * bi.jStep] += row[j];
      }
    }
    for (int64_t t = 0; t < biasSize; t++) dbias[t] = static_cast<float>(acc[t]);
  }
}

namespace {

// One AdamW range. __restrict: the outputs are fresh arrays, never the inputs; without it
// GCC gives up on the runtime alias checks of seven pointers and the loop stays scalar.
void AdamWRange(const float* __restrict p, const float* __restrict g, const float* __restrict m,
                const float* __restrict v, float* __restrict p1, float* __restrict m1, float* __restrict v1,
                int64_t i0, int64_t i1, double beta1, double beta2, double decay, double stepSize,
                double invSqrtBc2, double eps) {
  // torch divides √v by √(1 - β2^t); multiplying by its float64 inverse differs by an ulp of
  // float64, far below the float32 result's rounding, and spares a vdivpd (the loop is
  // bound by the divider and the square root).
  for (int64_t i = i0; i < i1; i++) {
    const double gi = g[i];
    const double mi = beta1 * m[i] + (1 - beta1) * gi;
    const double vi = beta2 * v[i] + (1 - beta2) * gi * gi;
    m1[i] = static_cast<float>(mi);
    v1[i] = static_cast<float>(vi);
    p1[i] = static_cast<float>(p[i] * decay - (stepSize * mi) / (std::sqrt(vi) * invSqrtBc2 + eps));
  }
}

}  // namespace

void AdamW(const float* p, const float* g, const float* m, const float* v, float* p1, float* m1, float* v1, int64_t n,
           double lr, double beta1, double beta2, double eps, double weightDecay, int step) {
  const double decay = 1 - lr * weightDecay;
  const double stepSize = lr / (1 - std::pow(beta1, step));
  const double invSqrtBc2 = 1 / std::sqrt(1 - std::pow(beta2, step));
  ParallelFor(n, kElementGrain, [&](int64_t i0, int64_t i1) {
    AdamWRange(p, g, m, v, p1, m1, v1, i0, i1, beta1, beta2, decay, stepSize, invSqrtBc2, eps);
  });
}

int64_t Gather(const float* x, int64_t rows, const int32_t* indices, int64_t n, float* out, int64_t rowSize) {
  for (int64_t i = 0; i < n; i++) {
    if (indices[i] < 0 || indices[i] >= rows) return i;
  }
  ParallelFor(n, std::max<int64_t>(1, kElementGrain / std::max<int64_t>(rowSize, 1)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      std::memcpy(out + i * rowSize, x + static_cast<int64_t>(indices[i]) * rowSize, sizeof(float) * rowSize);
    }
  });
  return -1;
}

void SegmentSum(const float* x, const int32_t* ids, int64_t n, float* out, int64_t numSegments, int64_t rowSize) {
  std::fill(out, out + numSegments * rowSize, 0.0f);
  // Threads own column ranges, and each walks the rows in order: every output element is
  // summed in the same order whatever the thread count, with no atomics.
  ParallelFor(rowSize, std::max<int64_t>(16, kElementGrain / std::max<int64_t>(n, 1)), [&](int64_t c0, int64_t c1) {
    for (int64_t i = 0; i < n; i++) {
      const int32_t s = ids[i];
      if (s < 0 || s >= numSegments) continue;
      const float* xr = x + i * rowSize;
      float* o = out + static_cast<int64_t>(s) * rowSize;
      for (int64_t c = c0; c < c1; c++) o[c] += xr[c];
    }
  });
}

void StridedCopy(const float* x, int64_t xOffset, const int64_t* xStrides, float* out, int64_t outOffset,
                 const int64_t* outStrides, const int64_t* dims, int rank) {
  // Rows: every index but the last; the last axis is the inner loop (a memcpy when both
  // sides are contiguous there).
  int64_t rows = 1;
  for (int d = 0; d < rank - 1; d++) rows *= dims[d];
  const int64_t inner = rank ? dims[rank - 1] : 1;
  const int64_t xs = rank ? xStrides[rank - 1] : 1, os = rank ? outStrides[rank - 1] : 1;
  if (rows * inner == 0) return;
  ParallelFor(rows, std::max<int64_t>(1, kElementGrain / std::max<int64_t>(inner, 1)), [&](int64_t r0, int64_t r1) {
    int64_t idx[8] = {0};
    int64_t rem = r0;
    for (int d = rank - 2; d >= 0; d--) {
      idx[d] = rem % dims[d];
      rem /= dims[d];
    }
    for (int64_t r = r0; r < r1; r++) {
      int64_t xo = xOffset, oo = outOffset;
      for (int d = 0; d < rank - 1; d++) {
        xo += idx[d] * xStrides[d];
        oo += idx[d] * outStrides[d];
      }
      if (xs == 1 && os == 1) {
        std::memcpy(out + oo, x + xo, sizeof(float) * inner);
      } else {
        for (int64_t i = 0; i < inner; i++) out[oo + i * os] = x[xo + i * xs];
      }
      for (int d = rank - 2; d >= 0; d--) {
        if (++idx[d] < dims[d]) break;
        idx[d] = 0;
      }
    }
  });
}

void ReduceSum(const float* x, int64_t outer, int64_t reduce, int64_t inner, float* out) {
  if (inner == 1) {
    ParallelFor(outer, std::max<int64_t>(1, kElementGrain / std::max<int64_t>(reduce, 1)), [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; o++) {
        const float* xr = x + o * reduce;
        // Lanes, not one running sum: a chain of scalar adds runs one element per 4 cycles.
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t r = 0; r < reduce; r++) s += xr[r];
        out[o] = static_cast<float>(s);
      }
    });
    return;
  }
  // Column sums over many rows (bias gradients: [tokens, width] -> [width]): each task sums a
  // block of whole rows into a float64 partial, streaming memory in order; the partials are
  // then added in block order. Fixed blocks, so the result does not depend on the thread count.
  constexpr int64_t kSumRows = 64;
  if (inner >= 16 && reduce >= 2 * kSumRows) {
    const int64_t nBlocks = CeilDiv(reduce, kSumRows);
    // Kept between calls (the calling thread's; the largest column sum's size): a fresh
    // buffer of hundreds of KiB is mmapped and page-faulted in on every call. Each task
    // clears its own part before summing into it. The pool's threads reach it through
    // `partial`, not by name: a thread_local named in the lambda would be their own, empty.
    static thread_local std::vector<double> kept;
    if (kept.size() < static_cast<size_t>(outer * nBlocks * inner)) kept.resize(outer * nBlocks * inner);
    double* const partial = kept.data();
    ParallelFor(outer * nBlocks, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; t++) {
        const int64_t o = t / nBlocks, blk = t % nBlocks;
        double* __restrict acc = partial + t * inner;
        std::fill(acc, acc + inner, 0.0);
        const int64_t r1 = std::min(reduce, (blk + 1) * kSumRows);
        int64_t r = blk * kSumRows;
        // Four rows per pass over the partial: one load and store of acc per four elements
        // (the store port, not memory, bounded the one-row loop).
        for (; r + 4 <= r1; r += 4) {
          const float* __restrict x0 = x + (o * reduce + r) * inner;
          const float* __restrict x1 = x0 + inner;
          const float* __restrict x2 = x1 + inner;
          const float* __restrict x3 = x2 + inner;
          for (int64_t c = 0; c < inner; c++) {
            acc[c] += (static_cast<double>(x0[c]) + x1[c]) + (static_cast<double>(x2[c]) + x3[c]);
          }
        }
        for (; r < r1; r++) {
          const float* __restrict xr = x + (o * reduce + r) * inner;
          for (int64_t c = 0; c < inner; c++) acc[c] += xr[c];
        }
      }
    });
    std::vector<double> sum(inner);
    for (int64_t o = 0; o < outer; o++) {
      std::fill(sum.begin(), sum.end(), 0.0);
      for (int64_t blk = 0; blk < nBlocks; blk++) {
        const double* pr = partial + (o * nBlocks + blk) * inner;
        for (int64_t c = 0; c < inner; c++) sum[c] += pr[c];
      }
      for (int64_t c = 0; c < inner; c++) out[o * inner + c] = static_cast<float>(sum[c]);
    }
    return;
  }
  // Few rows: each task owns (outer row, chunk of columns) and walks r in order.
  constexpr int64_t kChunk = 64;
  const int64_t chunks = CeilDiv(inner, kChunk);
  ParallelFor(outer * chunks, std::max<int64_t>(1, kElementGrain / std::max<int64_t>(reduce * kChunk, 1)),
              [&](int64_t t0, int64_t t1) {
                double acc[kChunk];
                for (int64_t t = t0; t < t1; t++) {
                  const int64_t o = t / chunks;
                  const int64_t c0 = (t % chunks) * kChunk;
                  const int64_t w = std::min(kChunk, inner - c0);
                  std::fill(acc, acc + w, 0.0);
                  const float* base = x + o * reduce * inner + c0;
                  for (int64_t r = 0; r < reduce; r++) {
                    const float* xr = base + r * inner;
                    for (int64_t c = 0; c < w; c++) acc[c] += xr[c];
                  }
                  for (int64_t c = 0; c < w; c++) out[o * inner + c0 + c] = static_cast<float>(acc[c]);
                }
              });
}

namespace {

template <typename F>
void BinaryLoop(const float* a, int64_t aSize, const float* b, int64_t bSize, float* out, int64_t n, F f) {
  if (aSize == bSize) {
    ParallelFor(n, kElementGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) out[i] = f(a[i], b[i]);
    });
    return;
  }
  // One operand (length `period`) repeats along the rows of the other.
  const bool aRepeats = aSize < bSize;
  const int64_t period = aRepeats ? aSize : bSize;
  const int64_t rows = n / period;
  ParallelFor(rows, std::max<int64_t>(1, kElementGrain / period), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      float* o = out + r * period;
      if (aRepeats) {
        const float* br = b + r * period;
        for (int64_t i = 0; i < period; i++) o[i] = f(a[i], br[i]);
      } else {
        const float* ar = a + r * period;
        for (int64_t i = 0; i < period; i++) o[i] = f(ar[i], b[i]);
      }
    }
  });
}

}  // namespace

void Binary(int op, const float* a, int64_t aSize, const float* b, int64_t bSize, float* out, int64_t n) {
  if (n == 0) return;
  switch (op) {
    case 0:
      BinaryLoop(a, aSize, b, bSize, out, n, [](float u, float v) { return u + v; });
      break;
    case 1:
      BinaryLoop(a, aSize, b, bSize, out, n, [](float u, float v) { return u - v; });
      break;
    default:
      BinaryLoop(a, aSize, b, bSize, out, n, [](float u, float v) { return u * v; });
      break;
  }
}

// Elementwise ops whose cpu kernels are slow generic JS loops. NaN propagates as in tfjs:
// relu(NaN) = NaN (it tests x < 0), step(NaN) = NaN.
namespace {

// __restrict: without it GCC kept the step loop scalar (with a data-dependent branch per
// element: 20x slower than relu on random signs).
void ReluRange(const float* __restrict x, float* __restrict out, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; i++) out[i] = x[i] < 0.0f ? 0.0f : x[i];
}
void StepRange(const float* __restrict x, float* __restrict out, int64_t i0, int64_t i1, float alpha) {
  for (int64_t i = i0; i < i1; i++) {
    const float v = x[i];
    out[i] = v != v ? v : (v > 0.0f ? 1.0f : alpha);
  }
}

}  // namespace

void Unary(int op, const float* x, float* out, int64_t n, float alpha) {
  ParallelFor(n, kElementGrain, [&](int64_t i0, int64_t i1) {
    if (op == 0) {
      ReluRange(x, out, i0, i1);
    } else {
      StepRange(x, out, i0, i1, alpha);
    }
  });
}

}  // namespace tessera
