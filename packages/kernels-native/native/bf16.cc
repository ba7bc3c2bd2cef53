// bf16 matmul with fp32 accumulation on AVX-512 BF16 (vdpbf16ps), for matmul precision "bf16".
//
// C = op(A)·op(B) with fp32 inputs and output. The operands are rounded to bf16 (round to
// nearest even, vcvtne2ps2bf16; denormals flush to zero as that instruction does) while they
// are packed, and vdpbf16ps multiplies bf16 pairs exactly and adds them into fp32
// accumulators: the only error beyond fp32's is the operand rounding, ≤ 2^-8 relative per
// operand (8 significand bits). Debian's OpenBLAS 0.3.21 has no sbgemm, hence our own GEMM.
//
// Structure (after BLIS): a chunk of columns of B is packed for all of K into 32-column
// micro-panels (≤ 2 MiB); for each MC rows and each KC-deep slice, A's slice is packed into
// 12-row micro-panels and a 12×32 micro-kernel (24 zmm accumulators, 2 B vectors, one
// broadcast) runs over them, so that MC × chunk block of C stays in L2 across slices. A
// "pair" is two consecutive k: vdpbf16ps consumes one per 32-bit lane, so both packed
// layouts store (k, k+1) of one row/column as one dword, pair-major: panel[p][lane].
// A KC slice's sum is added to C after the first; per element the order of the sum is the
// same whatever the tiling or the thread split, so results are identical for any thread count.
#include <immintrin.h>
#include <napi.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "addon_module.h"
#include "cpu_features.h"
#include "kernels.h"
#include "napi_args.h"
#include "pool.h"

namespace tessera {
namespace {

using namespace napi_args;

constexpr int kMr = 12;           // rows per micro-tile
constexpr int kNv = 2;            // zmm vectors per micro-tile row
constexpr int kNr = 16 * kNv;     // columns per micro-tile
constexpr int64_t kKc = 256;      // k per slice: a 32-column B micro-panel is 16 KiB, half of L1 (32 KiB)
constexpr int64_t kMc = 240;      // rows per packed A block (120 KiB of bf16 pairs, inside L2)
constexpr int64_t kNc = 3072;     // columns per packed B panel at most
constexpr int64_t kBPanelDwords = 1 << 19;  // a packed B panel (all of K) stays within 2 MiB, in L3

#define TESSERA_BF16_TARGET __attribute__((target("avx512f,avx512bf16,avx512bw,avx512vl")))

bool HasBf16() {
  const CpuFeatures& f = Cpu();
  return f.avx512f && f.avx512bw && f.avx512vl && f.avx512bf16;
}

// One fp32 operand seen as rows × K: element (r, k) at p[r·rs + k·ks]; one of rs, ks is 1.
struct Operand {
  const float* p;
  int64_t rs, ks;
};

inline __mmask16 Lanes(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1);
}

// Packs rows [r0, r0 + W) × k [k0, k0 + kc) of `x` as bf16 pairs: dst[p·W + r] holds
// (k0 + 2p, k0 + 2p + 1) of row r0 + r. Rows at or past `rows` and the odd k past the
// slice are zeros, so edge tiles run the full micro-kernel and only their stores are masked.
TESSERA_BF16_TARGET void PackPairs(const Operand& x, int64_t rows, int64_t r0, int64_t W, int64_t k0, int64_t kc,
                                   uint32_t* dst) {
  const int64_t P = (kc + 1) / 2;
  if (x.ks == 1) {
    // k contiguous: a row's 32 k convert to 16 pairs in place, then go down the panel
    // (plain stores: Zen 4's vpscatterdd is microcoded and slower than 16 of them).
    alignas(64) uint32_t pairs[16];
    for (int64_t r = 0; r < W; r++) {
      const bool live = r0 + r < rows;
      const float* src = live ? x.p + (r0 + r) * x.rs + k0 : nullptr;
      for (int64_t p = 0; p < P; p += 16) {
        const int64_t k = 2 * p;
        __m512i v = _mm512_setzero_si512();
        if (live) {
          const __m512 lo = _mm512_maskz_loadu_ps(Lanes(kc - k), src + k);
          const __m512 hi = _mm512_maskz_loadu_ps(Lanes(kc - k - 16), src + k + 16);
          v = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));
        }
        _mm512_store_si512(pairs, v);
        const int64_t n = std::min<int64_t>(16, P - p);
        for (int64_t q = 0; q < n; q++) dst[(p + q) * W + r] = pairs[q];
      }
    }
    return;
  }
  // rows contiguous: rows k and k + 1 of 16 lanes convert together, then interleave into pairs.
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22,
                                              6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  for (int64_t p = 0; p < P; p++) {
    const int64_t k = k0 + 2 * p;
    const float* row0 = x.p + k * x.ks;
    const bool second = 2 * p + 1 < kc;
    for (int64_t r = 0; r < W; r += 16) {
      const __mmask16 m = Lanes(std::min<int64_t>(rows - r0 - r, W - r));
      const __m512 lo = _mm512_maskz_loadu_ps(m, row0 + r0 + r);
      const __m512 hi = second ? _mm512_maskz_loadu_ps(m, row0 + x.ks + r0 + r) : _mm512_setzero_ps();
      const __m512i v =
          _mm512_permutexvar_epi16(interleave, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
      _mm512_mask_storeu_epi32(dst + p * W + r, Lanes(W - r), v);
    }
  }
}

// C[mr × nr] (+)= A-panel · B-panel over P pairs; `add` adds to what C holds (later KC slices).
TESSERA_BF16_TARGET void MicroKernel(const uint32_t* a, const uint32_t* b, int64_t P, float* c, int64_t ldc, int mr,
                                     int nr, bool add) {
  __m512 acc[kMr][kNv];
#pragma GCC unroll 12
  for (int i = 0; i < kMr; i++)
#pragma GCC unroll 2
    for (int j = 0; j < kNv; j++) acc[i][j] = _mm512_setzero_ps();
  for (int64_t p = 0; p < P; p++) {
    __m512bh bv[kNv];
#pragma GCC unroll 2
    for (int j = 0; j < kNv; j++) bv[j] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(b + p * kNr + 16 * j));
#pragma GCC unroll 12
    for (int i = 0; i < kMr; i++) {
      const __m512bh av = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(a[p * kMr + i])));
#pragma GCC unroll 2
      for (int j = 0; j < kNv; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], av, bv[j]);
    }
  }
  for (int i = 0; i < mr; i++) {
    float* row = c + i * ldc;
    for (int j = 0; j < kNv; j++) {
      const __mmask16 m = Lanes(nr - 16 * j);
      if (!m) break;
      __m512 v = acc[i][j];
      if (add) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, row + 16 * j));
      _mm512_mask_storeu_ps(row + 16 * j, m, v);
    }
  }
}

// Per-thread packing buffers, reused across calls.
struct Scratch {
  std::vector<uint32_t> a, b;
};
Scratch& ThreadScratch() {
  thread_local Scratch s;
  return s;
}

// C[m0:m1, n0:n1] of one product (ldc = N), A seen as M × K and B as N × K.
// accumulate: add to what C holds (the bias rows) instead of overwriting it.
TESSERA_BF16_TARGET void GemmBlock(const Operand& A, const Operand& B, float* C, int64_t N, int64_t K, int64_t m0,
                                   int64_t m1, int64_t n0, int64_t n1, bool accumulate) {
  Scratch& s = ThreadScratch();
  // B is packed for all of K at once (column chunks small enough for L3), so each MC × nc
  // block of C stays in L2 while its KC slices add into it: with C outside the k loop, deep
  // products (K = 1536) streamed C from memory once per slice.
  const int64_t slices = (K + kKc - 1) / kKc;
  const int64_t pairsK = (K + 1) / 2 + slices;  // every slice's pairs, odd tails rounded up
  const int64_t ncMax = std::max<int64_t>(kNr, std::min(kNc, kBPanelDwords / pairsK / kNr * kNr));
  s.a.resize(static_cast<size_t>(kMc * (kKc / 2)));
  s.b.resize(static_cast<size_t>(std::min(ncMax, (n1 - n0 + kNr - 1) / kNr * kNr) * pairsK));
  for (int64_t jc = n0; jc < n1; jc += ncMax) {
    const int64_t nc = std::min(ncMax, n1 - jc);
    const int64_t panels = (nc + kNr - 1) / kNr;
    // Slice pc's panels start at sliceAt(pc): kNr·P dwords per panel.
    auto sliceAt = [&](int64_t pc) { return s.b.data() + panels * kNr * (pc / 2); };
    for (int64_t pc = 0; pc < K; pc += kKc) {
      const int64_t kc = std::min(kKc, K - pc);
      const int64_t P = (kc + 1) / 2;
      for (int64_t jr = 0; jr < nc; jr += kNr) PackPairs(B, n1, jc + jr, kNr, pc, kc, sliceAt(pc) + (jr / kNr) * P * kNr);
    }
    for (int64_t ic = m0; ic < m1; ic += kMc) {
      const int64_t mc = std::min(kMc, m1 - ic);
      for (int64_t pc = 0; pc < K; pc += kKc) {
        const int64_t kc = std::min(kKc, K - pc);
        const int64_t P = (kc + 1) / 2;
        for (int64_t ir = 0; ir < mc; ir += kMr) PackPairs(A, m1, ic + ir, kMr, pc, kc, s.a.data() + (ir / kMr) * P * kMr);
        for (int64_t jr = 0; jr < nc; jr += kNr) {
          const uint32_t* bp = sliceAt(pc) + (jr / kNr) * P * kNr;
          const int nr = static_cast<int>(std::min<int64_t>(kNr, nc - jr));
          for (int64_t ir = 0; ir < mc; ir += kMr) {
            const int mr = static_cast<int>(std::min<int64_t>(kMr, mc - ir));
            MicroKernel(s.a.data() + (ir / kMr) * P * kMr, bp, P, C + (ic + ir) * N + jc + jr, N, mr, nr,
                        pc > 0 || accumulate);
          }
        }
      }
    }
  }
}

// Aligned split point c of n items into `parts` chunks (multiples of `align`).
int64_t SplitAt(int64_t n, int64_t parts, int64_t c, int64_t align) {
  return std::min(n, (n * c / parts + align - 1) / align * align);
}

void Bf16MatMul(const float* a, const float* b, float* out, int64_t batch, const int64_t* aOff, const int64_t* bOff,
                int64_t M, int64_t N, int64_t K, bool transA, bool transB, const float* bias) {
  if (bias) FillRows(out, batch * M, N, bias);  // then accumulated onto, as MatMul does
  if (K == 0) {
    if (!bias) std::fill(out, out + batch * M * N, 0.0f);
    return;
  }
  // Whole products per thread when there are enough of them; otherwise each product is split
  // into column or row chunks.
  const int64_t T = Pool().Size();
  const int64_t pieces = batch >= T ? 1 : (T + batch - 1) / batch;
  // Splitting columns packs A once per chunk, splitting rows packs B once per chunk: repeat the smaller.
  const bool byColumns = M <= N ? N >= pieces * kNr : M < pieces * kMr;
  const int64_t nSplit = pieces > 1 && byColumns ? pieces : 1;
  const int64_t mSplit = pieces > 1 && !byColumns && M >= pieces * kMr ? pieces : 1;
  ParallelFor(batch * nSplit * mSplit, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t item = i0; item < i1; item++) {
      const int64_t bi = item / (nSplit * mSplit);
      const int64_t ni = item / mSplit % nSplit, mi = item % mSplit;
      // A as M × K, B as N × K (element (n, k) of B is op(B)[k][n]).
      const Operand A{a + aOff[bi], transA ? 1 : K, transA ? M : 1};
      const Operand B{b + bOff[bi], transB ? K : 1, transB ? 1 : N};
      GemmBlock(A, B, out + bi * M * N, N, K, SplitAt(M, mSplit, mi, kMr), SplitAt(M, mSplit, mi + 1, kMr),
                SplitAt(N, nSplit, ni, kNr), SplitAt(N, nSplit, ni + 1, kNr), bias != nullptr);
    }
  });
}

// bf16Matmul(a, b, out, aOffsets, bOffsets, M, N, K, transA, transB, bias?): the fp32 matmul's
// signature; throws where the CPU lacks AVX-512 BF16 (the JS side checks first).
Napi::Value Bf16MatMulJs(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "bf16Matmul";
  Require(info, HasBf16(), fn, "this CPU lacks AVX-512 BF16 (avx512_bf16)");
  const F32Arg a = F32(info, 0), b = F32(info, 1), o = F32(info, 2);
  auto aOff = info[3].As<Napi::Float64Array>();
  auto bOff = info[4].As<Napi::Float64Array>();
  const int64_t M = Int(info, 5), N = Int(info, 6), K = Int(info, 7);
  NonNeg(info, fn, {M, N, K});
  const int64_t batch = static_cast<int64_t>(aOff.ElementLength());
  Require(info, static_cast<int64_t>(bOff.ElementLength()) == batch, fn, "aOffsets and bOffsets differ in length");
  NeedLen(info, fn, "out", o, batch * M * N);
  std::vector<int64_t> offsets(2 * batch);
  for (int64_t i = 0; i < batch; i++) {
    offsets[i] = static_cast<int64_t>(aOff[i]);
    offsets[batch + i] = static_cast<int64_t>(bOff[i]);
    Require(info, offsets[i] >= 0 && offsets[i] + M * K <= a.n, fn, "a[" + S(i) + "] lies outside a");
    Require(info, offsets[batch + i] >= 0 && offsets[batch + i] + K * N <= b.n, fn, "b[" + S(i) + "] lies outside b");
  }
  const F32Arg bias = info.Length() > 10 ? F32(info, 10) : F32Arg{};
  if (bias.p) NeedLen(info, fn, "bias", bias, N);
  if (M > 0 && N > 0)
    Bf16MatMul(a.p, b.p, o.p, batch, offsets.data(), offsets.data() + batch, M, N, K, Bool(info, 8), Bool(info, 9),
               bias.p);
  return info.Env().Undefined();
}

const AddonModule kModule("bf16", [](Napi::Env env, Napi::Object exports) {
  exports.Set("bf16Matmul", Napi::Function::New(env, Bf16MatMulJs));
});

}  // namespace
}  // namespace tessera
