// The machine's fp32 FMA ceiling: 12 independent zmm FMA chains per thread (enough to cover
// the FMA latency on two ports), on 1 and 2 threads. The sgemm share in BENCHMARKS.md is
// read against this.
//   g++ -O2 -pthread fma_peak.cc -o /tmp/fma_peak && /tmp/fma_peak
#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>
__attribute__((target("avx512f"))) float run(long n) {
  __m512 a[12]; for (int i=0;i<12;i++) a[i]=_mm512_set1_ps(i*0.001f);
  const __m512 b=_mm512_set1_ps(0.9999f), c=_mm512_set1_ps(0.0001f);
  for (long i=0;i<n;i++){
#pragma GCC unroll 12
    for(int j=0;j<12;j++) a[j]=_mm512_fmadd_ps(a[j],b,c);
  }
  __m512 s=a[0]; for(int i=1;i<12;i++) s=_mm512_add_ps(s,a[i]);
  return _mm512_reduce_add_ps(s);
}
int main(){ long n=200000000; for (int th: {1,2}) { auto t0=std::chrono::steady_clock::now(); std::vector<std::thread> ts; float r[2];
 for(int t=0;t<th;t++) ts.emplace_back([&,t]{r[t]=run(n);}); for(auto&x:ts)x.join();
 double s=std::chrono::duration<double>(std::chrono::steady_clock::now()-t0).count();
 printf("%d threads: %.1f GFLOP/s (%f)\n", th, th*n*12.0*16*2/s/1e9, r[0]); } }
