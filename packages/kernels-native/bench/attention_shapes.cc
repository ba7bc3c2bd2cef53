// Packed causal attention of one GPT L6 E384 T256 B8 layer (q|k|v read in place, 6 heads of
// 64), forward and backward on the addon's pool, best of R (30) calls, and four of its
// block products alone on one thread. FLUSH=1 evicts the caches before each call; SKIPP=1
// leaves out the single products. GFLOP/s count the key columns each 64-row block would
// multiply, so they compare runs, not kernels of other query-block sizes.
//   g++ -std=c++17 -O3 -march=native -fno-math-errno -fno-trapping-math -fopenmp-simd -pthread -I../native \
//     attention_shapes.cc ../native/kernels.cc ../native/small_gemm.cc ../native/gemm.cc ../native/isa_avx*.cc \
//     -lopenblas -o /tmp/attention_shapes && OPENBLAS_NUM_THREADS=1 /tmp/attention_shapes
// The pool and the CPU probe come from the addon in the real build; this stands in for both.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <algorithm>
#include "kernels.h"
#include "pool.h"
#include "small_gemm.h"
#include "cpu_features.h"
namespace tessera {
const CpuFeatures& Cpu() { static CpuFeatures c = [] { CpuFeatures f; f.avx512f = __builtin_cpu_supports("avx512f"); f.avx2 = __builtin_cpu_supports("avx2"); f.fma = __builtin_cpu_supports("fma"); return f; }(); return c; }
ThreadPool& Pool() { static ThreadPool p(getenv("T") ? atoi(getenv("T")) : 2); return p; }
}
using namespace tessera;
static std::vector<float> junk(size_t(16) << 20);
template <class F> double best(F f, int reps = 30) {
  double b = 1e30;
  static const bool flush = getenv("FLUSH");
  for (int i = 0; i < reps; i++) {
    if (flush) for (size_t j = 0; j < junk.size(); j += 16) junk[j] += 1.0f;
    auto t0 = std::chrono::steady_clock::now(); f();
    b = std::min(b, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return b;
}
int main() {
  const int B = 8, T = 256, H = 6, D = 64, E = H * D;
  std::vector<float> qkv(size_t(B) * T * 3 * E), out(size_t(B) * T * E), dy(size_t(B) * T * E), dqkv(qkv.size());
  for (auto& x : qkv) x = (rand() / float(RAND_MAX) - 0.5f);
  for (auto& x : dy) x = (rand() / float(RAND_MAX) - 0.5f);
  AttentionShape s{};
  s.B = B; s.H = H; s.Tq = T; s.Tk = T; s.D = D; s.Dv = D; s.scale = 0.125f; s.causal = true;
  const int64_t row = 3 * E;
  s.ql = {0, int64_t(T) * row, D, row}; s.kl = {E, int64_t(T) * row, D, row}; s.vl = {2 * E, int64_t(T) * row, D, row};
  s.ol = {0, int64_t(T) * E, D, E};
  double pairs = 0;
  for (int i0 = 0; i0 < T; i0 += 64) pairs += 64.0 * std::min(T, i0 + 64);
  const double fp = 2.0 * B * H * pairs * D;
  int R = getenv("R") ? atoi(getenv("R")) : 30;
  double f = best([&] { Attention(s, qkv.data(), qkv.data() + E, qkv.data() + 2 * E, out.data()); }, R);
  double g = best([&] { AttentionGrad(s, dy.data(), qkv.data(), qkv.data() + E, qkv.data() + 2 * E, dqkv.data(), dqkv.data() + E, dqkv.data() + 2 * E, nullptr); }, R);
  printf("attention fwd %.2f ms (%.1f GFLOP/s)  bwd %.2f ms (%.1f GFLOP/s)\n", f, 2 * fp / f / 1e6, g, 5 * fp / g / 1e6);
  // single-thread products of one block
  std::vector<float> A(256 * 1152), Bm(256 * 272), C(256 * 272);
  for (auto& x : A) x = rand() / float(RAND_MAX); for (auto& x : Bm) x = rand() / float(RAND_MAX);
  struct P { const char* n; int M, N, K; int64_t rsA, csA, ldb; };
  P ps[] = {{"QK^T 64x256x64 (A ld1152)", 64, 256, 64, 1152, 1, 272},
            {"PV   64x64x256", 64, 64, 256, 272, 1, 64},
            {"dS^T Q 256x64x64 (transA)", 256, 64, 64, 1, 272, 64},
            {"QK^T 64x128x64", 64, 128, 64, 1152, 1, 272}};
  if (getenv("SKIPP")) return 0;
  for (auto& p : ps) {
    double t = best([&] { for (int i = 0; i < 100; i++) SmallGemm(p.M, p.N, p.K, 1.0f, A.data(), p.rsA, p.csA, Bm.data(), p.ldb, C.data(), 272, false); }, 20) / 100;
    printf("  %-28s %.2f us  %.1f GFLOP/s (1 thread)\n", p.n, t * 1000, 2.0 * p.M * p.N * p.K / t / 1e6);
  }
}
