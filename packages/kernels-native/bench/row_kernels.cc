// The row kernels of a GPT L6 E384 T256 B8 step alone, on the addon's pool (2 threads), best
// of 30–50 calls: LayerNorm and its gradient on [2048, 384], GELU (tanh and exact) and its
// tanh gradient on [2048, 1536], and an Add of that size for the memory rate. The checksums
// let a change to the arithmetic be compared with the one before.
//   g++ -std=c++17 -O3 -march=native -fno-math-errno -fno-trapping-math -fopenmp-simd -pthread -I../native \
//     row_kernels.cc ../native/kernels.cc ../native/small_gemm.cc ../native/gemm.cc ../native/isa_avx*.cc \
//     -lopenblas -o /tmp/row_kernels && OPENBLAS_NUM_THREADS=1 /tmp/row_kernels
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "cpu_features.h"
#include "kernels.h"
#include "pool.h"
namespace tessera {
const CpuFeatures& Cpu() {
  static CpuFeatures c = [] {
    CpuFeatures f;
    f.avx512f = __builtin_cpu_supports("avx512f");
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    return f;
  }();
  return c;
}
ThreadPool& Pool() {
  static ThreadPool p(2);
  return p;
}
}  // namespace tessera
using namespace tessera;

template <class F>
double Best(F f, int reps) {
  double b = 1e30;
  for (int i = 0; i < reps; i++) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    b = std::min(b, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return b;
}

int main() {
  const int rows = 2048, C = 384;
  std::vector<float> x(rows * C), dy(rows * C), dx(rows * C), y(rows * C), g(C), b(C), dg(C), db(C);
  srand(1);
  for (auto& v : x) v = rand() / float(RAND_MAX) * 2 - 1;
  for (auto& v : dy) v = rand() / float(RAND_MAX) * 2 - 1;
  for (auto& v : g) v = rand() / float(RAND_MAX) + 0.5f;
  for (auto& v : b) v = rand() / float(RAND_MAX);
  const double tg = Best([&] { LayerNormGrad(x.data(), dy.data(), g.data(), dx.data(), dg.data(), db.data(), rows, C, 1e-5); }, 50);
  const double tf = Best([&] { LayerNorm(x.data(), g.data(), b.data(), y.data(), rows, C, 1e-5); }, 50);
  double cs = 0, cg = 0, cb = 0;
  for (int i = 0; i < rows * C; i++) cs += dx[i] * (i % 7 + 1);
  for (int c = 0; c < C; c++) {
    cg += dg[c] * (c % 5 + 1);
    cb += db[c] * (c % 3 + 1);
  }
  printf("[%d, %d] LayerNormGrad %.3f ms  LayerNorm %.3f ms  checksums %.9g %.9g %.9g\n", rows, C, tg, tf, cs, cg, cb);

  const int64_t n = int64_t{2048} * 1536;
  std::vector<float> h(n), dh(n), out(n), dout(n), sum(n);
  for (int64_t i = 0; i < n; i++) {
    h[i] = (rand() / float(RAND_MAX) - 0.5f) * 8;
    dh[i] = rand() / float(RAND_MAX) - 0.5f;
  }
  const double gt = Best([&] { Gelu(h.data(), out.data(), n, true); }, 30);
  const double ggt = Best([&] { GeluGrad(h.data(), dh.data(), dout.data(), n, true); }, 30);
  const double ge = Best([&] { Gelu(h.data(), out.data(), n, false); }, 30);
  const double add = Best([&] { Binary(0, h.data(), n, dh.data(), n, sum.data(), n); }, 30);
  double check = 0;
  for (int64_t i = 0; i < n; i += 7) check += out[i] + dout[i];
  printf("[2048, 1536] Gelu tanh %.3f ms  GeluGrad tanh %.3f ms  Gelu exact %.3f ms  Add %.3f ms  (checksum %.6g)\n", gt,
         ggt, ge, add, check);
}
