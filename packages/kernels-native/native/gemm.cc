// See gemm.h. The blocking, BLIS's loops with A left in place (Aᵀ repacked, see PackRows):
//   for each block of rows of C (of the thread's share):
//     for each block of kKc of K:
//       for each 64-column panel of B (packed: kKc × 64 contiguous, zero-padded past N):
//         for each 6-row tile of the row block: 24 zmm accumulators over the K block.
// A panel of B (kKc · 256 bytes) stays in L2 while every tile of the row block reads it; the
// row block of A stays in L2 while every panel reads it. Threads split the rows (or, for a
// few rows, the panels). A small B is packed once for all of them before any tile runs; a
// large one, panel by panel by each thread just before use (OwnGemm).
//
// Against OpenBLAS 0.3.21 on 2 Sapphire Rapids cores, the twelve products of a GPT L6 E384
// layer took 76.6 ms against 80.4 (each alone, operands in cache): x·W and dY·Wᵀ 3-15 %
// faster, Xᵀ·dY within -4..+3 %.
#include "gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cpu_features.h"
#include "lanes.h"
#include "pool.h"

namespace tessera {
namespace {

#define TESSERA_GEMM_TARGET __attribute__((target("avx512f")))

constexpr int kMr = 6;        // rows per register tile
constexpr int kNr = 64;       // columns per tile and per packed panel of B: four zmm
constexpr int kKc = 384;      // K per block: one block for the GPT's K of 384 (C written once)
constexpr int kMc = 192;      // rows per block of A (192 × 384 floats: 288 KiB, in L2)
// Rows per block when each thread packs its own panels: every block packs them afresh, so
// blocks are larger (768 × 384 floats of A still fit L2's 2 MiB beside a panel).
constexpr int kMcOwnPanels = 768;
// A B of up to this many floats is packed once for all threads (the weights: x·W, dY·Wᵀ).
constexpr int64_t kSharedPackMaxFloats = int64_t{1} << 20;

// One MR × 64 tile over one K block of kc. `first`: C starts from init (the bias's 64
// columns, or zero when null) rather than from its own values. Columns past the tile's
// `width` are masked at the loads and stores of C; the packed B is zero there.
template <int MR>
TESSERA_GEMM_TARGET void Tile(int kc, const float* a, int64_t rsA, int64_t csA, const float* bp, float* c,
                              int64_t ldc, int width, bool first, const float* init) {
  __mmask16 mask[4];
  for (int v = 0; v < 4; v++) mask[v] = LaneMask(width - 16 * v);
  __m512 acc[MR][4];
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++) {
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++) {
      const float* from = first ? init : c + r * ldc;
      acc[r][v] = from ? _mm512_maskz_loadu_ps(mask[v], from + 16 * v) : _mm512_setzero_ps();
    }
  }
  for (int k = 0; k < kc; k++) {
    const float* bk = bp + k * kNr;
    const __m512 b0 = _mm512_load_ps(bk), b1 = _mm512_load_ps(bk + 16), b2 = _mm512_load_ps(bk + 32),
                 b3 = _mm512_load_ps(bk + 48);
    const float* ak = a + k * csA;
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
      const __m512 ar = _mm512_set1_ps(ak[r * rsA]);
      acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps(ar, b2, acc[r][2]);
      acc[r][3] = _mm512_fmadd_ps(ar, b3, acc[r][3]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++) {
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++) {
      _mm512_mask_storeu_ps(c + r * ldc + 16 * v, mask[v], acc[r][v]);
    }
  }
}

using TileFn = void (*)(int, const float*, int64_t, int64_t, const float*, float*, int64_t, int, bool,
                        const float*);
constexpr TileFn kTiles[kMr + 1] = {nullptr, Tile<1>, Tile<2>, Tile<3>, Tile<4>, Tile<5>, Tile<6>};

// Packs op(B)[k0 : k0 + kc, j0 : j0 + 64] into dst [kc, 64], zeros past N.
TESSERA_GEMM_TARGET void PackPanelValues(const float* b, int64_t ldb, bool transB, int N, int k0, int kc, int j0,
                                         float* dst) {
  const int width = std::min(kNr, N - j0);
  if (!transB) {
    for (int k = 0; k < kc; k++) {
      const float* src = b + static_cast<int64_t>(k0 + k) * ldb + j0;
      float* d = dst + k * kNr;
      for (int v = 0; v < 4; v++) {
        const __mmask16 m = LaneMask(width - 16 * v);
        _mm512_store_ps(d + 16 * v, _mm512_maskz_loadu_ps(m, src + 16 * v));
      }
    }
    return;
  }
  if (ldb > INT32_MAX / 16) {  // gather offsets are int32: take the plain walk
    for (int k = 0; k < kc; k++) {
      for (int j = 0; j < kNr; j++) dst[k * kNr + j] = j < width ? b[(j0 + j) * ldb + k0 + k] : 0.0f;
    }
    return;
  }
  // op(B)[k, j] = b[j·ldb + k]: sixteen rows of b at a time, one gather per k.
  const __m512i lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i offsets = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(static_cast<int>(ldb)));
  for (int v = 0; v < 4; v++) {
    const __mmask16 m = LaneMask(width - 16 * v);
    const float* rows = b + static_cast<int64_t>(j0 + 16 * v) * ldb + k0;
    for (int k = 0; k < kc; k++) {
      const __m512 column = m ? _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, offsets, rows + k, 4)
                              : _mm512_setzero_ps();
      _mm512_store_ps(dst + k * kNr + 16 * v, column);
    }
  }
}

// colSums[j] = Σ_k packed[k, j] in float64 for the 64 columns of a packed panel [kc, 64].
TESSERA_GEMM_TARGET void PanelColumnSums(const float* packed, int kc, double* colSums) {
  __m512d acc[8];
  for (int h = 0; h < 8; h++) acc[h] = _mm512_setzero_pd();
  for (int k = 0; k < kc; k++) {
    const float* row = packed + k * kNr;
    for (int h = 0; h < 8; h++) acc[h] = _mm512_add_pd(acc[h], _mm512_cvtps_pd(_mm256_load_ps(row + 8 * h)));
  }
  for (int h = 0; h < 8; h++) _mm512_storeu_pd(colSums + 8 * h, acc[h]);
}

// PackPanelValues and, with colSums, the panel's 64 column sums while it is in L1/L2.
TESSERA_GEMM_TARGET void PackPanel(const float* b, int64_t ldb, bool transB, int N, int k0, int kc, int j0,
                                   float* dst, double* colSums) {
  PackPanelValues(b, ldb, transB, N, k0, kc, j0, dst);
  if (colSums) PanelColumnSums(dst, kc, colSums);
}

// Packs op(A)[i0 : i0 + rows, k0 : k0 + kc] as tiles of kMr rows, each [kc, kMr] (a last
// tile's missing rows zero), and with rowSums each row's sum over the block. For Aᵀ: there a tile's six values of column k sit in one line,
// but the lines of successive k are M floats apart, and at the training widths (M of 384
// or 1536) that stride maps them onto a few L1 sets, which thrash.
TESSERA_GEMM_TARGET void PackRows(const float* a, int64_t rsA, int64_t csA, int i0, int rows, int k0, int kc,
                                  float* dst, double* rowSums) {
  for (int t = 0; t < rows; t += kMr) {
    const int mr = std::min(kMr, rows - t);
    float* d = dst + static_cast<int64_t>(t) * kc;
    const float* src = a + static_cast<int64_t>(i0 + t) * rsA + static_cast<int64_t>(k0) * csA;
    if (rsA == 1) {  // Aᵀ: the tile's values of column k are adjacent, one masked move each
      // (512-bit masked moves: AVX-512F alone, no VL).
      const __mmask16 m = LaneMask(mr);
      __m512d sum = _mm512_setzero_pd();
      for (int k = 0; k < kc; k++) {
        const __m512 column = _mm512_maskz_loadu_ps(m, src + k * csA);
        _mm512_mask_storeu_ps(d + k * kMr, LaneMask(kMr), column);
        if (rowSums) sum = _mm512_add_pd(sum, _mm512_cvtps_pd(_mm512_castps512_ps256(column)));
      }
      if (rowSums) _mm512_mask_storeu_pd(rowSums + t, static_cast<__mmask8>(m), sum);
      continue;
    }
    for (int k = 0; k < kc; k++) {
      const float* col = src + k * csA;
      int r = 0;
      for (; r < mr; r++) d[k * kMr + r] = col[r * rsA];
      for (; r < kMr; r++) d[k * kMr + r] = 0.0f;
    }
    if (rowSums) {
      for (int r = 0; r < mr; r++) {
        double sum = 0;
        for (int k = 0; k < kc; k++) sum += d[k * kMr + r];
        rowSums[t + r] = sum;
      }
    }
  }
}

// The packed B of the last call, kept so the steady state allocates nothing. Grown by the
// calling thread only (the one the addon's kernels run on); the pool's threads reach it
// through the pointer they are handed.
thread_local std::vector<float> packedScratch;

float* PackedBuffer(size_t floats) {
  // 64-byte alignment for the aligned panel loads: over-allocate and round up.
  if (packedScratch.size() < floats + 16) packedScratch.resize(floats + 16);
  const uintptr_t p = reinterpret_cast<uintptr_t>(packedScratch.data());
  return reinterpret_cast<float*>((p + 63) & ~uintptr_t{63});
}

// Adds the K blocks' partial sums in block order into sums.out. Row sums of an A read in
// place (never packed, so never summed on the way) are taken here in one plain pass.
void FinishSums(const GemmSums& sums, const std::vector<double>& partial, int nKb, int64_t width, int M, int N, int K,
                const float* a, int64_t rsA, int64_t csA, bool packA) {
  if (!sums.out) return;
  if (sums.ofRowsOfA && !packA) {
    for (int i = 0; i < M; i++) {
      double s = 0;
      for (int k = 0; k < K; k++) s += a[i * rsA + k * csA];
      sums.out[i] = static_cast<float>(s);
    }
    return;
  }
  const int n = sums.ofRowsOfA ? M : N;
  for (int j = 0; j < n; j++) {
    double s = 0;
    for (int kb = 0; kb < nKb; kb++) s += partial[kb * width + j];
    sums.out[j] = static_cast<float>(s);
  }
}

}  // namespace

bool OwnGemmAvailable() {
  static const bool available = [] {
    const char* env = std::getenv("TESSERA_NATIVE_OWN_GEMM");
    return Cpu().avx512f && !(env && std::strcmp(env, "0") == 0);
  }();
  return available;
}

void OwnGemm(int M, int N, int K, const float* a, int64_t rsA, int64_t csA, const float* b, int64_t ldb, bool transB,
             const float* bias, float* c, int64_t ldc, GemmSums sums) {
  if (M <= 0 || N <= 0) return;
  if (sums.out && K <= 0) std::fill(sums.out, sums.out + (sums.ofRowsOfA ? M : N), 0.0f);
  if (K <= 0) {
    for (int i = 0; i < M; i++) {
      float* ci = c + static_cast<int64_t>(i) * ldc;
      if (bias) std::copy(bias, bias + N, ci);
      else std::fill(ci, ci + N, 0.0f);
    }
    return;
  }
  const int kc = std::min(kKc, K);
  const int nKb = (K + kc - 1) / kc;
  const int nPanels = (N + kNr - 1) / kNr;
  const int64_t panelFloats = static_cast<int64_t>(kc) * kNr;
  const int64_t T = Pool().Size();
  const int rowTiles = (M + kMr - 1) / kMr;
  const bool byRows = rowTiles >= 4 * T || nPanels < T;
  const int64_t parts = byRows ? rowTiles : nPanels;
  // Aᵀ's rows are packed (PackRows) once per row range and K block, into each pool thread's
  // own buffer; A itself is read in place.
  const bool packA = csA != 1;
  // The sums' float64 partials, one row per K block: [nKb, M] of A's rows or [nKb, nPanels·64]
  // of B's columns, each written by the one pass that packs its rows or panel.
  const bool rowSums = sums.out && sums.ofRowsOfA && packA, colSums = sums.out && !sums.ofRowsOfA;
  const int64_t sumsWidth = rowSums ? M : static_cast<int64_t>(nPanels) * kNr;
  std::vector<double> partial(rowSums || colSums ? nKb * sumsWidth : 0);
  auto colSumsAt = [&](int kb, int p) { return colSums ? partial.data() + kb * sumsWidth + p * kNr : nullptr; };
  struct RowsOfA {
    const float* p;
    int64_t rs, cs;
    int origin;  // the first row, when packed
  };
  // `record`: this call's pass is the one that writes the rows' sums (others may pack the
  // same rows again).
  auto rowsOf = [&](int i0, int i1, int kb, bool record) {
    const int k0 = kb * kc, kcb = std::min(kc, K - k0);
    if (!packA) return RowsOfA{a + k0 * csA, rsA, csA, 0};
    thread_local std::vector<float> rowsScratch;
    const size_t need = static_cast<size_t>(i1 - i0 + kMr) * kcb;
    if (rowsScratch.size() < need) rowsScratch.resize(need);
    double* sumsOut = rowSums && record ? partial.data() + kb * sumsWidth + i0 : nullptr;
    PackRows(a, rsA, csA, i0, i1 - i0, k0, kcb, rowsScratch.data(), sumsOut);
    return RowsOfA{rowsScratch.data(), 1, kMr, i0};
  };
  // Rows [ib, ie) of C over K block kb against one packed panel p of B.
  auto tiles = [&](const RowsOfA& A, int ib, int ie, int kb, int p, const float* panel) {
    const int kcb = std::min(kc, K - kb * kc);
    const int j0 = p * kNr;
    const int width = std::min(kNr, N - j0);
    const float* init = bias ? bias + j0 : nullptr;
    for (int i = ib; i < ie; i += kMr) {
      const int mr = std::min(kMr, ie - i);
      const float* at = packA ? A.p + static_cast<int64_t>(i - A.origin) * kcb : A.p + i * A.rs;
      kTiles[mr](kcb, at, A.rs, A.cs, panel, c + i * ldc + j0, ldc, width, kb == 0, init);
    }
  };
  if (byRows && static_cast<int64_t>(K) * N <= kSharedPackMaxFloats) {
    // A small B (the weights of x·W and dY·Wᵀ): packed once, shared by all threads.
    float* packed = PackedBuffer(static_cast<size_t>(nKb) * nPanels * panelFloats);
    auto panelAt = [=](int kb, int p) { return packed + (static_cast<int64_t>(kb) * nPanels + p) * panelFloats; };
    ParallelFor(static_cast<int64_t>(nKb) * nPanels, 1, [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; u++) {
        const int kb = static_cast<int>(u / nPanels), p = static_cast<int>(u % nPanels);
        const int k0 = kb * kc;
        PackPanel(b, ldb, transB, N, k0, std::min(kc, K - k0), p * kNr, panelAt(kb, p), colSumsAt(kb, p));
      }
    });
    ParallelFor(parts, 1, [&](int64_t s0, int64_t s1) {
      const int i0 = static_cast<int>(s0) * kMr, i1 = std::min(M, static_cast<int>(s1) * kMr);
      for (int ib = i0; ib < i1; ib += kMc) {
        const int ie = std::min(i1, ib + kMc);
        for (int kb = 0; kb < nKb; kb++) {
          const RowsOfA A = rowsOf(ib, ie, kb, true);
          for (int p = 0; p < nPanels; p++) tiles(A, ib, ie, kb, p, panelAt(kb, p));
        }
      }
    });
    FinishSums(sums, partial, nKb, sumsWidth, M, N, K, a, rsA, csA, packA);
    return;
  }
  // A large B (a gradient's dY as the right operand), or a share of the panels per thread: a
  // shared packed copy would be written out to memory and read back. Each thread packs the
  // panels it uses itself, just before its tiles read them, while they are in L2 (a large B
  // split by rows is then packed once per thread: still cheaper than the round trip).
  // Threads split the panels, not the rows, when A is the smaller operand (a weight
  // gradient Xᵀ·dY with fewer rows than columns): then A is the one read by every thread.
  const bool ownRows = byRows && !(M < N && nPanels >= 2 * T);
  ParallelFor(ownRows ? rowTiles : nPanels, 1, [&](int64_t s0, int64_t s1) {
    const int i0 = ownRows ? static_cast<int>(s0) * kMr : 0;
    const int i1 = ownRows ? std::min(M, static_cast<int>(s1) * kMr) : M;
    const int p0 = ownRows ? 0 : static_cast<int>(s0), p1 = ownRows ? nPanels : static_cast<int>(s1);
    thread_local std::vector<float> panelScratch;
    if (panelScratch.size() < static_cast<size_t>(panelFloats) + 16) panelScratch.resize(panelFloats + 16);
    float* panel = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(panelScratch.data()) + 63) & ~uintptr_t{63});
    for (int ib = i0; ib < i1; ib += kMcOwnPanels) {
      const int ie = std::min(i1, ib + kMcOwnPanels);
      for (int kb = 0; kb < nKb; kb++) {
        const int k0 = kb * kc;
        // Split by rows, every thread packs every panel (the first row block records the
        // sums); split by panels, every thread packs every row (the first panel's does).
        const RowsOfA A = rowsOf(ib, ie, kb, ownRows || p0 == 0);
        for (int p = p0; p < p1; p++) {
          PackPanel(b, ldb, transB, N, k0, std::min(kc, K - k0), p * kNr, panel, ib == 0 ? colSumsAt(kb, p) : nullptr);
          tiles(A, ib, ie, kb, p, panel);
        }
      }
    }
  });
  FinishSums(sums, partial, nKb, sumsWidth, M, N, K, a, rsA, csA, packA);
}

}  // namespace tessera
