// The twelve GEMMs of one GPT L6 E384 T256 B8 layer (forward x·W, dX = dY·Wᵀ, dW = Xᵀ·dY for
// qkv, proj, fc, fc2) through OwnGemm alone, 2 pool threads, median of 15; FLUSH=1 evicts the
// caches before each timing, as in a training step where every operand arrives cold;
// NO_AVX512=1 takes the AVX2 kernels on a CPU that has AVX-512.
//   g++ -O3 -march=native -pthread -I../native gemm_shapes.cc ../native/gemm*.cc -o /tmp/gemm_shapes
//   /tmp/gemm_shapes; FLUSH=1 /tmp/gemm_shapes
// The pool and the CPU probe come from the addon in the real build; this stands in for both.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <algorithm>
#include "gemm.h"
#include "pool.h"
#include "cpu_features.h"
namespace tessera {
ThreadPool& Pool() { static ThreadPool p(2); return p; }
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
}
using namespace tessera;
struct Shape { const char* name; int M, N, K; int64_t rsA, csA; bool transB; int64_t ldb; bool bias; bool sums; };
int main(int argc, char** argv) {
  const int T = 2048, E = 384;
  std::vector<Shape> shapes;
  int outs[4] = {3 * E, E, 4 * E, E}, ins[4] = {E, E, E, 4 * E};
  const char* names[4] = {"qkv", "proj", "fc", "fc2"};
  for (int l = 0; l < 4; l++) {
    int in = ins[l], out = outs[l];
    // forward x[T,in] W[in,out]
    shapes.push_back({names[l], T, out, in, in, 1, false, out, true, false});
    // dx = dy[T,out] W^T: op(B)[k=out, n=in] = W[n*out + k]
    shapes.push_back({names[l], T, in, out, out, 1, true, out, false, false});
    // dW = x^T[in,T] dy[T,out]: A[i,k] = x[k*in + i]
    shapes.push_back({names[l], in, out, T, 1, in, false, out, false, true});
  }
  std::vector<float> a(T * 4 * E), b(T * 4 * E), c(T * 4 * E), bias(4 * E), sums(4 * E);
  for (size_t i = 0; i < a.size(); i++) { a[i] = (i % 97) * 0.01f - 0.4f; b[i] = (i % 89) * 0.01f - 0.3f; }
  double total = 0, flops = 0; std::vector<float> junk(getenv("FLUSH") ? (256u << 20) : 16);
  for (auto& s : shapes) {
    GemmSums gs; if (s.sums) gs.out = sums.data();
    auto run = [&] { OwnGemm(s.M, s.N, s.K, a.data(), s.rsA, s.csA, b.data(), s.ldb, s.transB, s.bias ? bias.data() : nullptr, c.data(), s.N, gs); };
    for (int w = 0; w < 3; w++) run();
    std::vector<double> t;
    for (int r = 0; r < 15; r++) { if (getenv("FLUSH")) { for (size_t i = 0; i < junk.size(); i += 16) junk[i] += 1.0f; } auto t0 = std::chrono::steady_clock::now(); run(); t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()); }
    std::sort(t.begin(), t.end());
    double f = 2.0 * s.M * s.N * s.K;
    printf("%-5s M%5d N%5d K%5d %s: %6.2f ms %6.1f GFLOP/s\n", s.name, s.M, s.N, s.K, s.csA != 1 ? "AT" : (s.transB ? "BT" : "AB"), t[7] * 1e3, f / t[7] / 1e9);
    total += t[7]; flops += f;
  }
  printf("%s: total %.2f ms  %.1f GFLOP/s  (x6 layers: %.1f ms)\n", OwnGemmKernelName(), total * 1e3, flops / total / 1e9, 6 * total * 1e3);
}
