// Dynamic int8 linear (TesseraInt8Linear): y = f32(f32(Σ q·w) · f32(sx·sw)) (+ b), with x
// quantized per row to symmetric s8 and the weight pre-packed once into 16-output panels.
//
// The integer sum is the same exact int32 on every path, so every path is bit-identical to
// the JS reference (kernels-cpu/src/int8_linear.ts):
//  - AVX-512 VNNI: vpdpbusd multiplies u8 by s8, so the activations are stored shifted,
//    u = q + 128 (q ^ 0x80), and 128·Σ_k w[o, k] (packed with the weight) is subtracted.
//    vpdpbusd wraps instead of saturating, so a biased sum past 2^31 still comes back exact
//    once the compensation is taken off (the true sum fits: |Σ| ≤ 127²·K < 2^31).
//  - AVX2: vpmaddubsw (u8·s8, pairs summed to a saturating s16) on |q| and sign(w, q):
//    |q| ≤ 127 and |w| ≤ 127, so a pair is at most 2·127² = 32258 < 2^15 and never
//    saturates; vpmaddwd with ones then sums the pairs to the 4-wide dot in s32.
//  - scalar: the plain loop, for CPUs without AVX2 and as the bit-exactness anchor.
// TESSERA_NATIVE_INT8_PATH (read in src/int8.ts) forces one of them for the tests.
#include <immintrin.h>
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "addon_module.h"
#include "cpu_features.h"
#include "lanes.h"
#include "napi_args.h"
#include "pool.h"

namespace tessera {
namespace {

using namespace napi_args;

constexpr int64_t kPanel = 16;  // outputs per packed panel
constexpr int64_t kPanelBytes = kPanel * 4;  // one 4-deep k-group of a panel: 64 bytes, one zmm
constexpr int kMr = 4;  // rows per tile

enum Path : int { kScalar = 0, kAvx2 = 1, kVnni = 2 };

bool HasVnni() {
  const CpuFeatures& f = Cpu();
  return f.avx512f && f.avx512bw && f.avx512vnni;
}
bool HasAvx2() { return Cpu().avx2; }

struct Geometry {
  int64_t K, N, groups, panels;
  int64_t Kp() const { return groups * 4; }
  int64_t panelStride() const { return groups * kPanelBytes; }
  static Geometry Of(int64_t N, int64_t K) { return {K, N, (K + 3) / 4, (N + kPanel - 1) / kPanel}; }
};

// acc[i][j] (row-major, np·16 per row) over the tile's mr rows and np panels, for `groups`
// k-groups; `add` accumulates onto acc (the k-blocks after the first) instead of storing.
using TileFn = void (*)(const int8_t* qx, int64_t ldq, const int8_t* panels, int64_t panelStride, int64_t groups,
                        int32_t* acc, bool add);

// The full 4-row × 64-output tile, the one nearly all the work runs in, with its 16
// accumulators as named variables: GCC 12 keeps an array of vectors in registers only by
// copying each one around every vpdpbusd (the destination is also a source), which halved
// the throughput of the generic template below.
// A named function with its own target, not a lambda: a lambda does not inherit the target
// of the function it is written in, so on a build without -mavx512f its intrinsics fail to
// inline ("target specific option mismatch") and the whole addon does not build.
__attribute__((target("avx512f"), always_inline)) inline __m512i LoadOrZero(const int32_t* p, bool add) {
  return add ? _mm512_loadu_si512(p) : _mm512_setzero_si512();
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) void TileVnni44(const int8_t* qx, int64_t ldq,
                                                                      const int8_t* panels, int64_t panelStride,
                                                                      int64_t groups, int32_t* acc, bool add) {
#define TESSERA_ROW(i)                                                                                  \
  __m512i c##i##0 = LoadOrZero(acc + (i * 4) * kPanel, add), c##i##1 = LoadOrZero(acc + (i * 4 + 1) * kPanel, add), \
          c##i##2 = LoadOrZero(acc + (i * 4 + 2) * kPanel, add), c##i##3 = LoadOrZero(acc + (i * 4 + 3) * kPanel, add);
  TESSERA_ROW(0) TESSERA_ROW(1) TESSERA_ROW(2) TESSERA_ROW(3)
#undef TESSERA_ROW
  const int8_t* p0 = panels;
  const int8_t* p1 = panels + panelStride;
  const int8_t* p2 = panels + 2 * panelStride;
  const int8_t* p3 = panels + 3 * panelStride;
  for (int64_t g = 0; g < groups; g++) {
    const __m512i b0 = _mm512_loadu_si512(p0 + g * kPanelBytes);
    const __m512i b1 = _mm512_loadu_si512(p1 + g * kPanelBytes);
    const __m512i b2 = _mm512_loadu_si512(p2 + g * kPanelBytes);
    const __m512i b3 = _mm512_loadu_si512(p3 + g * kPanelBytes);
#define TESSERA_ROW(i)                                                   \
  {                                                                      \
    int32_t v;                                                           \
    std::memcpy(&v, qx + i * ldq + g * 4, 4);                            \
    const __m512i a = _mm512_set1_epi32(v);                              \
    c##i##0 = _mm512_dpbusd_epi32(c##i##0, a, b0);                       \
    c##i##1 = _mm512_dpbusd_epi32(c##i##1, a, b1);                       \
    c##i##2 = _mm512_dpbusd_epi32(c##i##2, a, b2);                       \
    c##i##3 = _mm512_dpbusd_epi32(c##i##3, a, b3);                       \
  }
    TESSERA_ROW(0) TESSERA_ROW(1) TESSERA_ROW(2) TESSERA_ROW(3)
#undef TESSERA_ROW
  }
#define TESSERA_ROW(i)                                   \
  _mm512_storeu_si512(acc + (i * 4 + 0) * kPanel, c##i##0); \
  _mm512_storeu_si512(acc + (i * 4 + 1) * kPanel, c##i##1); \
  _mm512_storeu_si512(acc + (i * 4 + 2) * kPanel, c##i##2); \
  _mm512_storeu_si512(acc + (i * 4 + 3) * kPanel, c##i##3);
  TESSERA_ROW(0) TESSERA_ROW(1) TESSERA_ROW(2) TESSERA_ROW(3)
#undef TESSERA_ROW
}

// Edge tiles (fewer rows or panels).
template <int MR, int NP>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void TileVnni(const int8_t* qx, int64_t ldq,
                                                                     const int8_t* panels, int64_t panelStride,
                                                                     int64_t groups, int32_t* acc, bool add) {
  __m512i c[MR][NP];
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NP; j++)
      c[i][j] = add ? _mm512_loadu_si512(acc + (i * NP + j) * kPanel) : _mm512_setzero_si512();
  for (int64_t g = 0; g < groups; g++) {
    __m512i b[NP];
    for (int j = 0; j < NP; j++) b[j] = _mm512_loadu_si512(panels + j * panelStride + g * kPanelBytes);
    for (int i = 0; i < MR; i++) {
      int32_t v;
      std::memcpy(&v, qx + i * ldq + g * 4, 4);
      const __m512i a = _mm512_set1_epi32(v);  // the row's 4 activations (as u8), every lane
      for (int j = 0; j < NP; j++) c[i][j] = _mm512_dpbusd_epi32(c[i][j], a, b[j]);
    }
  }
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NP; j++) _mm512_storeu_si512(acc + (i * NP + j) * kPanel, c[i][j]);
}

template <int MR, int NP>
__attribute__((target("avx2"))) void TileAvx2(const int8_t* qx, int64_t ldq, const int8_t* panels,
                                              int64_t panelStride, int64_t groups, int32_t* acc, bool add) {
  constexpr int H = 2 * NP;  // 8-output halves of the panels
  __m256i c[MR][H];
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < H; j++)
      c[i][j] = add ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + (i * H + j) * 8)) : _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t g = 0; g < groups; g++) {
    __m256i b[H];
    for (int j = 0; j < H; j++)
      b[j] = _mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(panels + (j / 2) * panelStride + g * kPanelBytes + (j % 2) * 32));
    for (int i = 0; i < MR; i++) {
      int32_t v;
      std::memcpy(&v, qx + i * ldq + g * 4, 4);
      const __m256i a = _mm256_set1_epi32(v);
      const __m256i magnitude = _mm256_abs_epi8(a);
      for (int j = 0; j < H; j++) {
        const __m256i pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(b[j], a));  // ≤ 2·127², no saturation
        c[i][j] = _mm256_add_epi32(c[i][j], _mm256_madd_epi16(pairs, ones));
      }
    }
  }
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < H; j++) _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + (i * H + j) * 8), c[i][j]);
}

void TileScalar(int mr, int np, const int8_t* qx, int64_t ldq, const int8_t* panels, int64_t panelStride,
                int64_t groups, int32_t* acc, bool add) {
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < np * kPanel; j++) {
      const int8_t* w = panels + (j / kPanel) * panelStride + (j % kPanel) * 4;
      const int8_t* q = qx + i * ldq;
      int32_t s = add ? acc[i * np * kPanel + j] : 0;
      for (int64_t g = 0; g < groups; g++)
        for (int t = 0; t < 4; t++) s += int32_t(q[g * 4 + t]) * int32_t(w[g * kPanelBytes + t]);
      acc[i * np * kPanel + j] = s;
    }
}

template <int MR>
constexpr TileFn kVnniRow[4] = {TileVnni<MR, 1>, TileVnni<MR, 2>, TileVnni<MR, 3>, TileVnni<MR, 4>};
constexpr TileFn kVnniRow4[4] = {TileVnni<4, 1>, TileVnni<4, 2>, TileVnni<4, 3>, TileVnni44};
const TileFn* const kVnniTiles[4] = {kVnniRow<1>, kVnniRow<2>, kVnniRow<3>, kVnniRow4};
const TileFn kAvx2Tiles[4] = {TileAvx2<1, 1>, TileAvx2<2, 1>, TileAvx2<3, 1>, TileAvx2<4, 1>};

// The float epilogue, kept apart and compiled without FMA contraction: y = acc·m rounded,
// then + b rounded, exactly as the JS reference rounds each step to float32.
__attribute__((noinline, optimize("fp-contract=off"))) void Epilogue(const int32_t* acc, int64_t count,
                                                                     const int32_t* compensation, float sx,
                                                                     const float* scales, const float* bias,
                                                                     float* y) {
  for (int64_t j = 0; j < count; j++) {
    // Unsigned arithmetic: the biased VNNI sum and 128·Σw may each pass 2^31; their difference does not.
    const uint32_t a = uint32_t(acc[j]) - (compensation ? uint32_t(compensation[j]) * 128u : 0u);
    const float m = sx * scales[j];
    float v = static_cast<float>(static_cast<int32_t>(a)) * m;
    if (bias) v = v + bias[j];
    y[j] = v;
  }
}

// Symmetric s8 per row, with the row's scale; `flip` stores q ^ 0x80 (u8 = q + 128) for VNNI.
// K is padded to the 4-deep groups with q = 0.
void QuantizeRows(const float* x, int64_t rows, int64_t K, int64_t Kp, bool flip, int8_t* qx, float* sx) {
  ParallelFor(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, K)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* row = x + r * K;
      int8_t* q = qx + r * Kp;
      const float amax = LaneMax(row, K, 0.f, [](float v) { return std::fabs(v); });
      const uint8_t mask = flip ? 0x80 : 0;
      if (!(amax > 0.f)) {
        sx[r] = 0.f;
        std::memset(q, mask, Kp);
        continue;
      }
      const float inv = 127.f / amax;
      for (int64_t k = 0; k < K; k++) {
        const float v = std::min(127.f, std::max(-127.f, std::nearbyint(row[k] * inv)));
        q[k] = int8_t(uint8_t(int8_t(v)) ^ mask);
      }
      for (int64_t k = K; k < Kp; k++) q[k] = int8_t(mask);
      sx[r] = amax / 127.f;
    }
  });
}

// int8PackWeights(w Int32Array [N, K], N, K, packed Int8Array, colsum Int32Array [N]).
Napi::Value PackJs(const Napi::CallbackInfo& info) {
  const char* fn = "int8PackWeights";
  const I32Arg w = I32(info, 0);
  const int64_t N = Int(info, 1), K = Int(info, 2);
  NonNeg(info, fn, {N, K});
  const Geometry geo = Geometry::Of(N, K);
  auto packed = info[3].As<Napi::Int8Array>();
  const I32Arg colsum = I32(info, 4);
  Require(info, info[3].IsTypedArray() && info[3].As<Napi::TypedArray>().TypedArrayType() == napi_int8_array, fn,
          "argument 3 must be an Int8Array");
  NeedLen(info, fn, "w", w, N * K);
  NeedLen(info, fn, "colsum", colsum, N);
  Require(info, int64_t(packed.ElementLength()) >= geo.panels * geo.panelStride(), fn,
          "packed has " + S(packed.ElementLength()) + " bytes, needs " + S(geo.panels * geo.panelStride()));
  int8_t* p = packed.Data();
  std::memset(p, 0, geo.panels * geo.panelStride());
  for (int64_t o = 0; o < N; o++) {
    int32_t sum = 0;
    int8_t* panel = p + (o / kPanel) * geo.panelStride() + (o % kPanel) * 4;
    for (int64_t k = 0; k < K; k++) {
      const int32_t v = w.p[o * K + k];
      Require(info, v >= -127 && v <= 127, fn,
              "weight [" + S(o) + ", " + S(k) + "] = " + S(v) + " is outside the symmetric int8 range [-127, 127]");
      panel[(k / 4) * kPanelBytes + k % 4] = int8_t(v);
      sum += v;
    }
    colsum.p[o] = sum;
  }
  return info.Env().Undefined();
}

// int8Linear(x, rows, K, packed, colsum, N, scales, bias | null, out, path) -> the path used.
Napi::Value LinearJs(const Napi::CallbackInfo& info) {
  const char* fn = "int8Linear";
  const F32Arg x = F32(info, 0);
  const int64_t rows = Int(info, 1), K = Int(info, 2);
  Require(info, info[3].IsTypedArray() && info[3].As<Napi::TypedArray>().TypedArrayType() == napi_int8_array, fn,
          "argument 3 must be an Int8Array");
  auto packedArr = info[3].As<Napi::Int8Array>();
  const I32Arg colsum = I32(info, 4);
  const int64_t N = Int(info, 5);
  const F32Arg scales = F32(info, 6), bias = F32(info, 7), y = F32(info, 8);
  int path = int(Int(info, 9));
  NonNeg(info, fn, {rows, K, N});
  const Geometry geo = Geometry::Of(N, K);
  NeedLen(info, fn, "x", x, rows * K);
  NeedLen(info, fn, "colsum", colsum, N);
  NeedLen(info, fn, "scales", scales, N);
  if (bias.p) NeedLen(info, fn, "bias", bias, N);
  NeedLen(info, fn, "out", y, rows * N);
  Require(info, int64_t(packedArr.ElementLength()) >= geo.panels * geo.panelStride(), fn, "packed is too short");
  if (path < 0) path = HasVnni() ? kVnni : HasAvx2() ? kAvx2 : kScalar;
  Require(info, path <= kVnni, fn, "unknown path " + S(path));
  Require(info, path != kVnni || HasVnni(), fn, "the AVX-512 VNNI path was asked for; this CPU has no AVX-512 VNNI");
  Require(info, path != kAvx2 || HasAvx2(), fn, "the AVX2 path was asked for; this CPU has no AVX2");
  if (rows == 0 || N == 0) return Napi::Number::New(info.Env(), path);

  const int64_t Kp = geo.Kp();
  std::vector<int8_t> qx(rows * Kp);
  std::vector<float> sx(rows);
  QuantizeRows(x.p, rows, K, Kp, path == kVnni, qx.data(), sx.data());

  const int8_t* packed = packedArr.Data();
  const int64_t npMax = path == kVnni ? 4 : 1;
  const int64_t colTiles = (geo.panels + npMax - 1) / npMax;
  const int64_t rowTiles = (rows + kMr - 1) / kMr;
  const int64_t tileInts = kMr * npMax * kPanel;
  // Blocked over k: a column tile's weights for kKBlock groups (4 panels: 16 KiB) stay in L1
  // while every row tile passes over them; the int32 partial sums wait in `acc` (exact in
  // any order, so the blocking changes no bit).
  constexpr int64_t kKBlock = 64;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 18) / std::max<int64_t>(1, rows * npMax * kPanel * Kp));
  ParallelFor(colTiles, grain, [&](int64_t c0, int64_t c1) {
    std::vector<int32_t> acc(rowTiles * tileInts);
    for (int64_t ct = c0; ct < c1; ct++) {
      const int64_t p0 = ct * npMax;
      const int np = int(std::min<int64_t>(npMax, geo.panels - p0));
      for (int64_t g0 = 0; g0 < geo.groups; g0 += kKBlock) {
        const int64_t gn = std::min<int64_t>(kKBlock, geo.groups - g0);
        const int8_t* w = packed + p0 * geo.panelStride() + g0 * kPanelBytes;
        for (int64_t rt = 0; rt < rowTiles; rt++) {
          const int64_t r0 = rt * kMr;
          const int mr = int(std::min<int64_t>(kMr, rows - r0));
          const int8_t* q = qx.data() + r0 * Kp + g0 * 4;
          int32_t* a = acc.data() + rt * tileInts;
          const bool add = g0 > 0;
          if (path == kVnni)
            kVnniTiles[mr - 1][np - 1](q, Kp, w, geo.panelStride(), gn, a, add);
          else if (path == kAvx2)
            kAvx2Tiles[mr - 1](q, Kp, w, geo.panelStride(), gn, a, add);
          else
            TileScalar(mr, np, q, Kp, w, geo.panelStride(), gn, a, add);
        }
      }
      const int64_t o0 = p0 * kPanel;
      const int64_t count = std::min<int64_t>(np * kPanel, N - o0);
      for (int64_t r = 0; r < rows; r++)
        Epilogue(acc.data() + (r / kMr) * tileInts + (r % kMr) * np * kPanel, count,
                 path == kVnni ? colsum.p + o0 : nullptr, sx[r], scales.p + o0, bias.p ? bias.p + o0 : nullptr,
                 y.p + r * N + o0);
    }
  });
  return Napi::Number::New(info.Env(), path);
}

Napi::Value PathsJs(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("vnni", HasVnni());
  o.Set("avx2", HasAvx2());
  o.Set("scalar", true);
  return o;
}

const AddonModule kModule("int8", [](Napi::Env env, Napi::Object exports) {
  exports.Set("int8PackWeights", Napi::Function::New(env, PackJs));
  exports.Set("int8Linear", Napi::Function::New(env, LinearJs));
  exports.Set("int8Paths", Napi::Function::New(env, PathsJs));
});

}  // namespace
}  // namespace tessera
