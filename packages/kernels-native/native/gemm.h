// Our own fp32 GEMM for the large products of training (the linears' forward and both
// gradients), on AVX-512F or AVX2 + FMA, threaded on our pool.
//
// Why not sgemm for these: OpenBLAS packs both operands afresh on every call and, for
// beta 0, first zeroes C in a pass of its own; in the large GPT step that was 10 % of the
// time on top of its micro-kernel. Here A is read in place (a 6-row tile broadcasts its six
// values of column k straight from A, so Aᵀ costs nothing either), only B is packed, and C is
// written from registers, starting from the bias row or zero.
#pragma once

#include <cstdint>

namespace tessera {

// Whether OwnGemm runs on this CPU (AVX-512F, or AVX2 with FMA) and is not turned off by
// TESSERA_NATIVE_OWN_GEMM=0 (for measuring against sgemm).
bool OwnGemmAvailable();

// The instruction set OwnGemm runs on here ("avx512f", "avx2"), or "" when it does not run.
const char* OwnGemmKernelName();

// C[M, N] = op(A) · op(B) (+ bias[n] on every row when bias is not null), C row-major with
// row stride ldc. op(A)[i, k] is a[i·rsA + k·csA]; op(B)[k, n] is b[n·ldb + k] when transB,
// else b[k·ldb + n]. K = 0 gives the bias rows (or zeros). Every C element sums its products
// in k order, one FMA each, within each block of kc (the first block starting from the bias),
// and adds the blocks in order: the result does not depend on the thread count or on how
// the work is split.
//
// `sums`, when its out is set, also receives the sums over k of one operand, from the pass
// that packs it: out[n] = Σ_k op(B)[k, n], or (ofRowsOfA) out[i] = Σ_k op(A)[i, k]. A
// linear's bias gradient is exactly that for its weight gradient's dY, which then is not
// read a second time. Sums run in float64, per K block in k order, then over the blocks.
struct GemmSums {
  float* out = nullptr;
  bool ofRowsOfA = false;
};
void OwnGemm(int M, int N, int K, const float* a, int64_t rsA, int64_t csA, const float* b, int64_t ldb, bool transB,
             const float* bias, float* c, int64_t ldc, GemmSums sums = {});

}  // namespace tessera
