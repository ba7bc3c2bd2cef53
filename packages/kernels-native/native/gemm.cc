// See gemm.h. The blocking, BLIS's loops with A left in place (Aᵀ repacked, see packRows):
//   for each block of rows of C (of the thread's share):
//     for each block of kc of K:
//       for each nr-column panel of B (packed: kc × nr contiguous, zero-padded past N):
//         for each 6-row tile of the row block: the register tile over the K block.
// A panel of B stays in L1/L2 while every tile of the row block reads it; the row block of A
// stays in L2 while every panel reads it. Threads split the rows (or, for a few rows, the
// panels). A small B is packed once for all of them before any tile runs; a large one, panel
// by panel by each thread just before use (OwnGemm). The tile, the packing and the block
// sizes come per instruction set (isa_kernels.h); this file is the same for all of them.
//
// Against OpenBLAS 0.3.21 on 2 Sapphire Rapids cores (AVX-512), the twelve products of a GPT
// L6 E384 layer took 76.6 ms against 80.4 (each alone, operands in cache): x·W and dY·Wᵀ 3-15 %
// faster, Xᵀ·dY within -4..+3 %.
#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "aligned.h"
#include "cpu_features.h"
#include "isa_kernels.h"
#include "pool.h"

namespace tessera {
namespace {

constexpr int kMr = kGemmMr;
// A B of up to this many floats is packed once for all threads (the weights: x·W, dY·Wᵀ).
constexpr int64_t kSharedPackMaxFloats = int64_t{1} << 20;

// Buffers written by the calling thread only (the one the addon's kernels run on) and read by
// the pool's threads through the pointer they are handed: the packed B of a small B, and
// Aᵀ's rows shared by all threads.
thread_local std::vector<float> packedScratch, sharedRowsScratch;
// Each thread's own packed panel of a large B.
thread_local std::vector<float> panelScratch;

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

// The kernels of the widest instruction set this CPU has, or null for none (or when
// TESSERA_NATIVE_OWN_GEMM=0 sends every product to sgemm, for measuring against it).
const IsaKernels* Kernels() {
  static const IsaKernels* const kernels = []() -> const IsaKernels* {
    const char* env = std::getenv("TESSERA_NATIVE_OWN_GEMM");
    return env && std::strcmp(env, "0") == 0 ? nullptr : WidestIsaKernels();
  }();
  return kernels;
}

// Threads split the panels, not the rows, when A is the smaller operand (a weight gradient
// Xᵀ·dY with fewer rows than columns): then A is the one read by every thread.
bool SplitByRows(bool byRows, int M, int N, int nPanels, int64_t T) { return byRows && !(M < N && nPanels >= 2 * T); }

// The pool's threads meeting between the phases of one Run (all of them take part, each on
// its own thread). Spins, as the phases are tens of microseconds apart, then yields: on a
// loaded machine the thread it waits for may not be running.
class SpinBarrier {
 public:
  explicit SpinBarrier(int n) : n_(n) {}
  void Wait() {
    const int gen = gen_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
      count_.store(0, std::memory_order_relaxed);
      gen_.fetch_add(1, std::memory_order_release);
      return;
    }
    for (int spins = 0; gen_.load(std::memory_order_acquire) == gen; spins++) {
#if defined(__x86_64__) || defined(__i386__)
      if (spins < 20000) {
        __builtin_ia32_pause();
        continue;
      }
#endif
      std::this_thread::yield();
    }
  }

 private:
  const int n_;
  std::atomic<int> count_{0};
  std::atomic<int> gen_{0};
};

}  // namespace

bool OwnGemmAvailable() { return Kernels() != nullptr; }

const char* OwnGemmKernelName() { return Kernels() ? Kernels()->name : ""; }

void OwnGemm(int M, int N, int K, const float* a, int64_t rsA, int64_t csA, const float* b, int64_t ldb, bool transB,
             const float* bias, float* c, int64_t ldc, GemmSums sums) {
  if (M <= 0 || N <= 0) return;
  const GemmKernels& g = Kernels()->gemm;
  const int nr = g.nr;
  if (sums.out && K <= 0) std::fill(sums.out, sums.out + (sums.ofRowsOfA ? M : N), 0.0f);
  if (K <= 0) {
    for (int i = 0; i < M; i++) {
      float* ci = c + static_cast<int64_t>(i) * ldc;
      if (bias) std::copy(bias, bias + N, ci);
      else std::fill(ci, ci + N, 0.0f);
    }
    return;
  }
  const int kc = std::min(g.kc, K);
  const int nKb = (K + kc - 1) / kc;
  const int nPanels = (N + nr - 1) / nr;
  const int64_t panelFloats = static_cast<int64_t>(kc) * nr;
  const int64_t T = Pool().Size();
  const int rowTiles = (M + kMr - 1) / kMr;
  const bool byRows = rowTiles >= 4 * T || nPanels < T;
  const int64_t parts = byRows ? rowTiles : nPanels;
  // Aᵀ's rows are packed (packRows) once per row range and K block, into each pool thread's
  // own buffer; A itself is read in place.
  const bool packA = csA != 1;
  // The sums' float64 partials, one row per K block: [nKb, M] of A's rows or [nKb, nPanels·nr]
  // of B's columns, each written by the one pass that packs its rows or panel.
  const bool rowSums = sums.out && sums.ofRowsOfA && packA, colSums = sums.out && !sums.ofRowsOfA;
  const int64_t sumsWidth = rowSums ? M : static_cast<int64_t>(nPanels) * nr;
  std::vector<double> partial(rowSums || colSums ? nKb * sumsWidth : 0);
  auto colSumsAt = [&](int kb, int p) { return colSums ? partial.data() + kb * sumsWidth + p * nr : nullptr; };
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
    // A tile of rows of slack past the last row's tile, and 16 floats more.
    const size_t need = static_cast<size_t>(i1 - i0 + kMr) * kcb + 16;
    if (rowsScratch.size() < need) rowsScratch.resize(need);
    double* sumsOut = rowSums && record ? partial.data() + kb * sumsWidth + i0 : nullptr;
    g.packRows(a, rsA, csA, i0, i1 - i0, k0, kcb, rowsScratch.data(), sumsOut);
    return RowsOfA{rowsScratch.data(), 1, kMr, i0};
  };
  // Rows [ib, ie) of C over K block kb against one packed panel p of B.
  auto tiles = [&](const RowsOfA& A, int ib, int ie, int kb, int p, const float* panel) {
    const int kcb = std::min(kc, K - kb * kc);
    const int j0 = p * nr;
    const int width = std::min(nr, N - j0);
    const float* init = bias ? bias + j0 : nullptr;
    for (int i = ib; i < ie; i += kMr) {
      const int mr = std::min(kMr, ie - i);
      const float* at = packA ? A.p + static_cast<int64_t>(i - A.origin) * kcb : A.p + i * A.rs;
      g.tile(mr, kcb, at, A.rs, A.cs, panel, c + i * ldc + j0, ldc, width, kb == 0, init);
    }
  };
  if (byRows && static_cast<int64_t>(K) * N <= kSharedPackMaxFloats) {
    // A small B (the weights of x·W and dY·Wᵀ): packed once, shared by all threads.
    float* packed = AlignedScratch(packedScratch, static_cast<size_t>(nKb) * nPanels * panelFloats);
    auto panelAt = [=](int kb, int p) { return packed + (static_cast<int64_t>(kb) * nPanels + p) * panelFloats; };
    ParallelFor(static_cast<int64_t>(nKb) * nPanels, 1, [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; u++) {
        const int kb = static_cast<int>(u / nPanels), p = static_cast<int>(u % nPanels);
        const int k0 = kb * kc;
        g.packPanel(b, ldb, transB, N, k0, std::min(kc, K - k0), p * nr, panelAt(kb, p), colSumsAt(kb, p));
      }
    });
    ParallelFor(parts, 1, [&](int64_t s0, int64_t s1) {
      const int i0 = static_cast<int>(s0) * kMr, i1 = std::min(M, static_cast<int>(s1) * kMr);
      for (int ib = i0; ib < i1; ib += g.mc) {
        const int ie = std::min(i1, ib + g.mc);
        for (int kb = 0; kb < nKb; kb++) {
          const RowsOfA A = rowsOf(ib, ie, kb, true);
          for (int p = 0; p < nPanels; p++) tiles(A, ib, ie, kb, p, panelAt(kb, p));
        }
      }
    });
    FinishSums(sums, partial, nKb, sumsWidth, M, N, K, a, rsA, csA, packA);
    return;
  }
  const bool ownRows = SplitByRows(byRows, M, N, nPanels, T);
  if (packA && !ownRows && T > 1) {
    // Aᵀ·B split by panels (Xᵀ·dY: every thread needs all of Aᵀ's rows), with Aᵀ's rows
    // packed once into a buffer all threads read: each thread packs its share of the row
    // tiles of a block, all meet, then each runs its own panels over the whole block. Packing
    // every row on every thread read all of X once per thread: sharing it made the GPT's
    // Xᵀ·dY 3-4 % faster on 2 Zen 3 cores, where OpenBLAS (which shares its packing) had been
    // 5-9 % ahead. Two buffers alternate, so one meeting per block suffices: a thread that
    // reaches the next block's meeting has finished reading this block's buffer.
    const int mc = g.mcSharedRows;
    const int64_t blockFloats = (static_cast<int64_t>(std::min(M, mc) + kMr) * kc + 31) / 16 * 16;
    float* shared = AlignedScratch(sharedRowsScratch, static_cast<size_t>(2 * blockFloats));
    SpinBarrier meet(static_cast<int>(T));
    Pool().Run([&](int t) {
      const int p0 = static_cast<int>(nPanels * t / T), p1 = static_cast<int>(nPanels * (t + 1) / T);
      float* panel = AlignedScratch(panelScratch, static_cast<size_t>(panelFloats));
      int step = 0;
      for (int ib = 0; ib < M; ib += mc) {
        const int ie = std::min(M, ib + mc);
        const int blockTiles = (ie - ib + kMr - 1) / kMr;
        const int t0 = static_cast<int>(blockTiles * t / T), t1 = static_cast<int>(blockTiles * (t + 1) / T);
        for (int kb = 0; kb < nKb; kb++, step++) {
          const int k0 = kb * kc, kcb = std::min(kc, K - k0);
          float* rows = shared + (step % 2) * blockFloats;
          if (t1 > t0) {
            const int i0 = ib + t0 * kMr, i1 = std::min(ie, ib + t1 * kMr);
            double* sumsOut = rowSums ? partial.data() + kb * sumsWidth + i0 : nullptr;
            g.packRows(a, rsA, csA, i0, i1 - i0, k0, kcb, rows + static_cast<int64_t>(i0 - ib) * kcb, sumsOut);
          }
          const RowsOfA A{rows, 1, kMr, ib};
          meet.Wait();
          for (int p = p0; p < p1; p++) {
            g.packPanel(b, ldb, transB, N, k0, kcb, p * nr, panel, ib == 0 ? colSumsAt(kb, p) : nullptr);
            tiles(A, ib, ie, kb, p, panel);
          }
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
  ParallelFor(ownRows ? rowTiles : nPanels, 1, [&](int64_t s0, int64_t s1) {
    const int i0 = ownRows ? static_cast<int>(s0) * kMr : 0;
    const int i1 = ownRows ? std::min(M, static_cast<int>(s1) * kMr) : M;
    const int p0 = ownRows ? 0 : static_cast<int>(s0), p1 = ownRows ? nPanels : static_cast<int>(s1);
    float* panel = AlignedScratch(panelScratch, static_cast<size_t>(panelFloats));
    for (int ib = i0; ib < i1; ib += g.mcOwnPanels) {
      const int ie = std::min(i1, ib + g.mcOwnPanels);
      for (int kb = 0; kb < nKb; kb++) {
        const int k0 = kb * kc;
        // Split by rows, every thread packs every panel (the first row block records the
        // sums); split by panels (A read in place, or a single thread), the first panel's
        // pass records them.
        const RowsOfA A = rowsOf(ib, ie, kb, ownRows || p0 == 0);
        for (int p = p0; p < p1; p++) {
          g.packPanel(b, ldb, transB, N, k0, std::min(kc, K - k0), p * nr, panel, ib == 0 ? colSumsAt(kb, p) : nullptr);
          tiles(A, ib, ie, kb, p, panel);
        }
      }
    }
  });
  FinishSums(sums, partial, nKb, sumsWidth, M, N, K, a, rsA, csA, packA);
}

}  // namespace tessera
