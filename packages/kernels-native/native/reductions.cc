// Σx² and the finiteness probe Σ(x·0) of one gradient, in one pass (TesseraSumSquares).
#include <napi.h>

#include <cstdint>
#include <vector>

#include "addon_module.h"
#include "napi_args.h"
#include "pool.h"

namespace tessera {

namespace {

using namespace napi_args;

// Fixed-size chunks summed in chunk order: the result does not depend on the thread count.
constexpr int64_t kChunk = 16384;

struct Partial {
  double sumSquares;
  float probe;
};

Partial ChunkSums(const float* __restrict x, int64_t n) {
  // float64 for the squares (a long sum loses nothing), float for the probe: x·0 is 0 for
  // every finite x, NaN for NaN and ±Inf. One vectorised loop (omp simd), the same per chunk
  // whatever the thread count.
  double s = 0;
  float p = 0;
#pragma omp simd reduction(+ : s, p)
  for (int64_t i = 0; i < n; i++) {
    const double v = x[i];
    s += v * v;
    p += x[i] * 0.0f;
  }
  return {s, p};
}

// sumSquares(x, out: Float32Array(2)) -> out = [Σx², Σ(x·0)]
Napi::Value SumSquaresJs(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "sumSquares";
  const F32Arg x = F32(info, 0), o = F32(info, 1);
  NeedLen(info, fn, "out", o, 2);
  const int64_t chunks = (x.n + kChunk - 1) / kChunk;
  std::vector<Partial> partial(static_cast<size_t>(chunks));
  ParallelFor(chunks, 4, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++) {
      const int64_t i0 = c * kChunk;
      partial[c] = ChunkSums(x.p + i0, std::min(kChunk, x.n - i0));
    }
  });
  double sumSquares = 0;
  float probe = 0;
  for (const Partial& p : partial) {
    sumSquares += p.sumSquares;
    probe += p.probe;
  }
  o.p[0] = static_cast<float>(sumSquares);
  o.p[1] = probe;
  return info.Env().Undefined();
}

const AddonModule kModule("reductions", [](Napi::Env env, Napi::Object exports) {
  exports.Set("sumSquares", Napi::Function::New(env, SumSquaresJs));
});

}  // namespace

}  // namespace tessera
