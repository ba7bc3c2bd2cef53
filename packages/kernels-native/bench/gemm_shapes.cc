// The twelve GEMMs of one GPT L6 E384 T256 B8 layer (forward x·W + b, dX = dY·Wᵀ, dW = Xᵀ·dY
// with db for qkv, proj, fc, fc2) through OwnGemm and through OpenBLAS sgemm (bias rows then
// beta 1, as the addon's sgemm path does), 2 threads each, the two alternating per
// repetition, best of REPS (20): on a noisy VM the medians of separate runs drift by more than
// the difference. FLUSH=1 evicts the caches before each timing, as in a training step where
// every operand arrives cold; NO_AVX512=1 takes the AVX2 kernels on a CPU that has AVX-512.
//   g++ -O3 -march=native -pthread -I../native gemm_shapes.cc ../native/gemm.cc ../native/isa_avx*.cc -lopenblas -o /tmp/gemm_shapes
//   OPENBLAS_NUM_THREADS=2 OPENBLAS_THREAD_TIMEOUT=4 /tmp/gemm_shapes   (FLUSH=1 for cold operands)
// The pool and the CPU probe come from the addon in the real build; this stands in for both.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "cpu_features.h"
#include "gemm.h"
#include "pool.h"
namespace tessera {
ThreadPool& Pool() {
  static ThreadPool p(2);
  return p;
}
const CpuFeatures& Cpu() {
  static CpuFeatures c = [] {
    CpuFeatures f;
    f.avx512f = __builtin_cpu_supports("avx512f") && !getenv("NO_AVX512");
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    return f;
  }();
  return c;
}
}  // namespace tessera
using namespace tessera;
struct Shape {
  const char* name;
  int M, N, K;
  bool transA, transB, bias, sums;
};
int main() {
  const int T = 2048, E = 384;
  std::vector<Shape> shapes;
  const int outs[4] = {3 * E, E, 4 * E, E}, ins[4] = {E, E, E, 4 * E};
  const char* names[4] = {"qkv", "proj", "fc", "fc2"};
  for (int l = 0; l < 4; l++) {
    const int in = ins[l], out = outs[l];
    shapes.push_back({names[l], T, out, in, false, false, true, false});  // x[T, in]·W[in, out] + b
    shapes.push_back({names[l], T, in, out, false, true, false, false});  // dY[T, out]·Wᵀ
    shapes.push_back({names[l], in, out, T, true, false, false, true});   // xᵀ·dY, db
  }
  std::vector<float> a(T * 4 * E), b(T * 4 * E), c(T * 4 * E), bias(4 * E), sums(4 * E);
  for (size_t i = 0; i < a.size(); i++) {
    a[i] = (i % 97) * 0.01f - 0.4f;
    b[i] = (i % 89) * 0.01f - 0.3f;
  }
  const int reps = getenv("REPS") ? atoi(getenv("REPS")) : 20;
  std::vector<float> junk(getenv("FLUSH") ? (64u << 20) : 16);
  auto time = [&](auto f) {
    if (getenv("FLUSH")) {
      for (size_t i = 0; i < junk.size(); i += 16) junk[i] += 1.0f;
    }
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  double ownTotal = 0, blasTotal = 0, flops = 0;
  for (const Shape& s : shapes) {
    const int64_t ldb = s.transB ? s.K : s.N;
    GemmSums gs;
    if (s.sums) gs.out = sums.data();
    auto own = [&] {
      OwnGemm(s.M, s.N, s.K, a.data(), s.transA ? 1 : s.K, s.transA ? s.M : 1, b.data(), ldb, s.transB,
              s.bias ? bias.data() : nullptr, c.data(), s.N, gs);
    };
    auto blas = [&] {
      if (s.bias) {
        for (int i = 0; i < s.M; i++) std::copy(bias.begin(), bias.begin() + s.N, c.begin() + int64_t{i} * s.N);
      }
      cblas_sgemm(CblasRowMajor, s.transA ? CblasTrans : CblasNoTrans, s.transB ? CblasTrans : CblasNoTrans, s.M, s.N,
                  s.K, 1.0f, a.data(), s.transA ? s.M : s.K, b.data(), static_cast<int>(ldb), s.bias ? 1.0f : 0.0f,
                  c.data(), s.N);
    };
    for (int w = 0; w < 2; w++) {
      own();
      blas();
    }
    double tOwn = 1e9, tBlas = 1e9;
    for (int r = 0; r < reps; r++) {
      tOwn = std::min(tOwn, time(own));
      tBlas = std::min(tBlas, time(blas));
    }
    const double f = 2.0 * s.M * s.N * s.K;
    printf("%-5s M%5d N%5d K%5d %s: own %6.2f ms %6.1f GFLOP/s  sgemm %6.2f ms %6.1f  sgemm/own %.3f\n", s.name, s.M,
           s.N, s.K, s.transA ? "AT" : (s.transB ? "BT" : "AB"), tOwn * 1e3, f / tOwn / 1e9, tBlas * 1e3, f / tBlas / 1e9,
           tBlas / tOwn);
    ownTotal += tOwn;
    blasTotal += tBlas;
    flops += f;
  }
  printf("own GEMM (%s): %.2f ms a layer, %.1f GFLOP/s; sgemm %.2f ms, %.1f GFLOP/s; sgemm/own %.3f\n",
         OwnGemmKernelName(), ownTotal * 1e3, flops / ownTotal / 1e9, blasTotal * 1e3, flops / blasTotal / 1e9,
         blasTotal / ownTotal);
}
