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
  // Eight float64 lanes for the squares (vectorises; float64 so a long sum loses nothing),
  // float lanes for the probe: x·0 is 0 for every finite x, NaN for NaN and ±Inf.
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  float p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int l = 0; l < 8; l++) {
      const double v = x[i + l];
      s[l] += v * v;
      p[l] += x[i + l] * 0.0f;
    }
  }
  for (; i < n; i++) {
    const double v = x[i];
    s[0] += v * v;
    p[0] += x[i] * 0.0f;
  }
  return {((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])),
          ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]))};
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
