// The machine's fp32 FMA ceiling: 12 independent FMA chains per thread (enough to cover the
// FMA latency on two ports), on 1 and 2 threads, in zmm where the CPU has AVX-512F, else in
// ymm (AVX2 + FMA). The sgemm share in BENCHMARKS.md is read against this.
//   g++ -O2 -pthread fma_peak.cc -o /tmp/fma_peak && /tmp/fma_peak
#include <immintrin.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

__attribute__((target("avx512f"))) float Run512(long n) {
  __m512 a[12];
  for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps(i * 0.001f);
  const __m512 b = _mm512_set1_ps(0.9999f), c = _mm512_set1_ps(0.0001f);
  for (long i = 0; i < n; i++) {
#pragma GCC unroll 12
    for (int j = 0; j < 12; j++) a[j] = _mm512_fmadd_ps(a[j], b, c);
  }
  __m512 s = a[0];
  for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
  return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) float Run256(long n) {
  __m256 a[12];
  for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps(i * 0.001f);
  const __m256 b = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(0.0001f);
  for (long i = 0; i < n; i++) {
#pragma GCC unroll 12
    for (int j = 0; j < 12; j++) a[j] = _mm256_fmadd_ps(a[j], b, c);
  }
  __m256 s = a[0];
  for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
  float lanes[8];
  _mm256_storeu_ps(lanes, s);
  return lanes[0];
}

int main() {
  const bool zmm = __builtin_cpu_supports("avx512f");
  const int lanes = zmm ? 16 : 8;
  const long n = zmm ? 200000000 : 400000000;
  for (int th : {1, 2}) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> ts;
    float r[2];
    for (int t = 0; t < th; t++) ts.emplace_back([&, t] { r[t] = zmm ? Run512(n) : Run256(n); });
    for (auto& x : ts) x.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    printf("%d threads (%s): %.1f GFLOP/s (%f)\n", th, zmm ? "zmm" : "ymm", th * n * 12.0 * lanes * 2 / s / 1e9, r[0]);
  }
}
