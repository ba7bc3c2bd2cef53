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
#include "lanes.h"
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
          const __m512 lo = _mm512_maskz_loadu_ps(LaneMask(kc - k), src + k);
          const __m512 hi = _mm512_maskz_loadu_ps(LaneMask(kc - k - 16), src + k + 16);
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
      const __mmask16 m = LaneMask(std::min<int64_t>(rows - r0 - r, W - r));
      const __m512 lo = _mm512_maskz_loadu_ps(m, row0 + r0 + r);
      const __m512 hi = second ? _mm512_maskz_loadu_ps(m, row0 + x.ks + r0 + r) : _mm512_setzero_ps();
      const __m512i v =
          _mm512_permutexvar_epi16(interleave, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
      _mm512_mask_storeu_epi32(dst + p * W + r, LaneMask(W - r), v);
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
      const __mmask16 m = LaneMask(nr - 16 * j);
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

// ---- AMX path (tdpbf16ps on 16×16 fp32 tiles), where the CPU and OS allow it.
//
// The same bf16 rounding of the operands (PackPairs), another engine: a tile multiply adds
// 16 rows × 16 columns × 16 pairs per instruction. B's packed micro-panels are already the
// tile's layout (pair rows of 32 dwords); A is packed row-major in pairs (a tile row is 16
// pairs of one row). A 32 × 32 block of C lives in four accumulator tiles over all of K, so
// each element's sum runs over K in one fixed order, whatever the thread split.
#define TESSERA_AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bf16,avx512bw,avx512vl")))

constexpr int64_t kTile = 16;      // rows / fp32 columns / pairs of one tile
constexpr int64_t kAmxBlock = 32;  // rows and columns of C per 2 × 2 tiles
constexpr int64_t kAmxMc = 128;    // rows of A packed at once (K = 2048: 512 KiB, in L2)

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t startRow = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

bool HasAmx() { return Cpu().amxBf16; }

// Tile registers are immediates: dispatch accumulator t (0-3) to the instruction `op`.
#define TESSERA_TILE(t, op, ...)   \
  switch (t) {                     \
    case 0: op(0, ##__VA_ARGS__); break; \
    case 1: op(1, ##__VA_ARGS__); break; \
    case 2: op(2, ##__VA_ARGS__); break; \
    default: op(3, ##__VA_ARGS__); break; \
  }

inline int64_t RoundUp(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// Rows [r0, r0 + 16·groups) of `x` (rows past `rows` zero) as bf16 pairs, row-major:
// dst[r·P16 + p] = pair p of row r0 + r, pairs past K's zero up to P16.
TESSERA_BF16_TARGET void PackRowsAmx(const Operand& x, int64_t rows, int64_t r0, int64_t groups, int64_t K,
                                     int64_t P16, uint32_t* dst, std::vector<uint32_t>& tmp) {
  const int64_t P = (K + 1) / 2;
  tmp.resize(static_cast<size_t>(P * kTile));
  for (int64_t g = 0; g < groups; g++) {
    PackPairs(x, rows, r0 + g * kTile, kTile, 0, K, tmp.data());  // tmp[p·16 + r]
    uint32_t* block = dst + g * kTile * P16;
    for (int64_t r = 0; r < kTile; r++) {
      uint32_t* row = block + r * P16;
      for (int64_t p = 0; p < P; p++) row[p] = tmp[p * kTile + r];
      std::fill(row + P, row + P16, 0u);
    }
  }
}

// C[m0:m1, n0:n1] of one product on AMX (see GemmBlock for the operand conventions).
TESSERA_AMX_TARGET void GemmBlockAmx(const Operand& A, const Operand& B, float* C, int64_t N, int64_t K, int64_t m0,
                                     int64_t m1, int64_t n0, int64_t n1, bool accumulate) {
  Scratch& s = ThreadScratch();
  thread_local std::vector<uint32_t> tmp;
  const int64_t P = (K + 1) / 2, P16 = RoundUp(P, kTile);
  const int64_t ncMax = std::max<int64_t>(kAmxBlock, std::min(kNc, kBPanelDwords / P16 / kAmxBlock * kAmxBlock));
  s.a.resize(static_cast<size_t>(kAmxMc * P16));
  s.b.resize(static_cast<size_t>(RoundUp(std::min(ncMax, n1 - n0), kAmxBlock) * P16));
  TileConfig config;
  for (int t = 0; t < 8; t++) {
    config.rows[t] = kTile;
    config.colsb[t] = kTile * 4;
  }
  _tile_loadconfig(&config);
  alignas(64) float edge[kTile * kTile];
  const int64_t aStride = P16 * 4;  // bytes between tile rows of packed A
  constexpr int64_t bStride = kAmxBlock * 4;
  // Tile t of the 2 × 2 block at (i, j) in C, through `edge` when it crosses m1 or n1.
  auto tileRows = [&](int64_t i) { return std::min<int64_t>(kTile, m1 - i); };
  auto tileCols = [&](int64_t j) { return std::min<int64_t>(kTile, n1 - j); };
  for (int64_t jc = n0; jc < n1; jc += ncMax) {
    const int64_t nc = std::min(ncMax, n1 - jc);
    const int64_t panels = (nc + kAmxBlock - 1) / kAmxBlock;
    for (int64_t q = 0; q < panels; q++) {
      uint32_t* panel = s.b.data() + q * P16 * kAmxBlock;
      PackPairs(B, n1, jc + q * kAmxBlock, kAmxBlock, 0, K, panel);
      std::fill(panel + P * kAmxBlock, panel + P16 * kAmxBlock, 0u);
    }
    for (int64_t ic = m0; ic < m1; ic += kAmxMc) {
      const int64_t mc = std::min(kAmxMc, m1 - ic);
      PackRowsAmx(A, m1, ic, RoundUp(mc, kAmxBlock) / kTile, K, P16, s.a.data(), tmp);
      for (int64_t q = 0; q < panels; q++) {
        const uint32_t* panel = s.b.data() + q * P16 * kAmxBlock;
        const int64_t j0 = jc + q * kAmxBlock;
        for (int64_t ir = 0; ir < mc; ir += kAmxBlock) {
          const int64_t i0 = ic + ir;
          const uint32_t* a0 = s.a.data() + ir * P16;
          const uint32_t* a1 = a0 + kTile * P16;
          // The four accumulators: tmm0 (i0, j0), tmm1 (i0, j0+16), tmm2 (i0+16, j0), tmm3
          // (i0+16, j0+16); C is read and written in place, through `edge` only past m1 or n1.
          auto full = [&](int64_t i, int64_t j) { return i + kTile <= m1 && j + kTile <= n1; };
          auto load = [&](int t, int64_t i, int64_t j) {
            const float* src = C + i * N + j;
            int64_t stride = N * 4;
            if (!accumulate) {
              TESSERA_TILE(t, _tile_zero);
              return;
            }
            if (!full(i, j)) {
              const int64_t r = i < m1 ? tileRows(i) : 0, c = j < n1 ? tileCols(j) : 0;
              std::fill(edge, edge + kTile * kTile, 0.0f);
              for (int64_t y = 0; y < r; y++) std::copy(src + y * N, src + y * N + c, edge + y * kTile);
              src = edge;
              stride = kTile * 4;
            }
            TESSERA_TILE(t, _tile_loadd, src, stride);
          };
          load(0, i0, j0);
          load(1, i0, j0 + kTile);
          load(2, i0 + kTile, j0);
          load(3, i0 + kTile, j0 + kTile);
          for (int64_t kp = 0; kp < P16; kp += kTile) {
            _tile_loadd(4, a0 + kp, aStride);
            _tile_loadd(5, a1 + kp, aStride);
            _tile_loadd(6, panel + kp * kAmxBlock, bStride);
            _tile_loadd(7, panel + kp * kAmxBlock + kTile, bStride);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
          }
          auto store = [&](int t, int64_t i, int64_t j) {
            if (i >= m1 || j >= n1) return;
            float* dst = C + i * N + j;
            if (full(i, j)) {
              TESSERA_TILE(t, _tile_stored, dst, N * 4);
              return;
            }
            TESSERA_TILE(t, _tile_stored, edge, kTile * 4);
            const int64_t r = tileRows(i), c = tileCols(j);
            for (int64_t y = 0; y < r; y++) std::copy(edge + y * kTile, edge + y * kTile + c, dst + y * N);
          };
          store(0, i0, j0);
          store(1, i0, j0 + kTile);
          store(2, i0 + kTile, j0);
          store(3, i0 + kTile, j0 + kTile);
        }
      }
    }
  }
  _tile_release();
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
  const bool amx = HasAmx();
  ParallelFor(batch * nSplit * mSplit, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t item = i0; item < i1; item++) {
      const int64_t bi = item / (nSplit * mSplit);
      const int64_t ni = item / mSplit % nSplit, mi = item % mSplit;
      // A as M × K, B as N × K (element (n, k) of B is op(B)[k][n]).
      const Operand A{a + aOff[bi], transA ? 1 : K, transA ? M : 1};
      const Operand B{b + bOff[bi], transB ? K : 1, transB ? 1 : N};
      if (amx) {
        GemmBlockAmx(A, B, out + bi * M * N, N, K, SplitAt(M, mSplit, mi, kAmxBlock),
                     SplitAt(M, mSplit, mi + 1, kAmxBlock), SplitAt(N, nSplit, ni, kAmxBlock),
                     SplitAt(N, nSplit, ni + 1, kAmxBlock), bias != nullptr);
      } else {
        GemmBlock(A, B, out + bi * M * N, N, K, SplitAt(M, mSplit, mi, kMr), SplitAt(M, mSplit, mi + 1, kMr),
                  SplitAt(N, nSplit, ni, kNr), SplitAt(N, nSplit, ni + 1, kNr), bias != nullptr);
      }
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
