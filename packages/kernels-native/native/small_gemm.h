// Single-threaded fp32 products for attention's per-head blocks, on AVX-512F or AVX2 + FMA,
// without packing.
//
// Attention multiplies many small blocks per head (64 query rows by at most a few hundred
// keys, inner size the head width): at those sizes sgemm spends a large share of its time
// packing both operands afresh on every call. Here A is read in place through its strides
// (so Aᵀ costs nothing) and B must be row-major, which attention arranges once per head by
// transposing K and V; every product is then C = A·B with B's rows read straight from memory.
#pragma once

#include <cstdint>

namespace tessera {

// Whether a kernel runs on this CPU (AVX-512F, or AVX2 with FMA). Callers use sgemm when not.
bool SmallGemmAvailable();

// C[M, N] = alpha · A · B, plus C's old values when `accumulate`. A[i, k] is at
// a[i·rsA + k·csA]; B is row-major [K, N] with row stride ldb; C row-major with stride ldc.
// K = 0 gives zeros (or C unchanged). Each C element sums over k in order, one FMA per
// step, whatever M and N: the result does not depend on how callers split the rows.
void SmallGemm(int M, int N, int K, float alpha, const float* a, int64_t rsA, int64_t csA, const float* b,
               int64_t ldb, float* c, int64_t ldc, bool accumulate);

// dst[c·ldDst + r] = src[r·ld + c] for r < rows, c < cols: [rows, cols] with row stride ld
// becomes [cols, rows] with row stride ldDst, the form SmallGemm takes for a Bᵀ
// (attention's Kᵀ and Vᵀ).
// A vector of rows at a time by gathers (AVX-512F or AVX2): the scalar walk cost a fifth of a
// head's forward.
void Transpose(const float* src, int64_t ld, int rows, int cols, float* dst, int64_t ldDst);

}  // namespace tessera
