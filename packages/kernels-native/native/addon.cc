// N-API surface of the native backend. Every function takes the tfjs-backend-cpu
// Float32Arrays/Int32Arrays of its inputs and preallocated outputs and writes in place:
// the JS side owns all memory, so there is nothing to free here and no copies.
// Shapes and attributes are validated on the JS side; this layer checks types and, cheaply,
// that every index a kernel will touch lies inside the arrays it was given (RangeError if not).
#include <napi.h>
#include <cblas.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <thread>
#include <vector>

#include "addon_module.h"
#include "cpu_features.h"
#include "gemm.h"
#include "kernels.h"
#include "napi_args.h"
#include "pool.h"

namespace tessera {

ThreadPool& Pool() {
  static ThreadPool pool(std::max(1u, std::thread::hardware_concurrency()));
  return pool;
}

namespace {

using namespace napi_args;


// matmul(a, b, out, aOffsets: Float64Array, bOffsets: Float64Array, M, N, K, transA, transB)
Napi::Value MatMulJs(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "matmul";
  const F32Arg a = F32(info, 0), b = F32(info, 1), o = F32(info, 2);
  auto aOff = info[3].As<Napi::Float64Array>();
  auto bOff = info[4].As<Napi::Float64Array>();
  const int64_t M = Int(info, 5), N = Int(info, 6), K = Int(info, 7);
  NonNeg(info, fn, {M, N, K});
  Require(info, M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX, fn, "dimension too large for BLAS");
  const size_t batch = aOff.ElementLength();
  Require(info, bOff.ElementLength() == batch, fn,
          "aOffsets has " + S(batch) + " entries, bOffsets " + S(bOff.ElementLength()));
  NeedLen(info, fn, "out", o, static_cast<int64_t>(batch) * M * N);
  std::vector<int64_t> ao(batch), bo(batch);
  for (size_t i = 0; i < batch; i++) {
    ao[i] = static_cast<int64_t>(aOff[i]);
    bo[i] = static_cast<int64_t>(bOff[i]);
    Require(info, ao[i] >= 0 && ao[i] + M * K <= a.n, fn,
            "a[" + S(i) + "] at offset " + S(ao[i]) + " of " + S(M) + "x" + S(K) + " exceeds a's " + S(a.n));
    Require(info, bo[i] >= 0 && bo[i] + K * N <= b.n, fn,
            "b[" + S(i) + "] at offset " + S(bo[i]) + " of " + S(K) + "x" + S(N) + " exceeds b's " + S(b.n));
  }
  const F32Arg bias = info.Length() > 10 ? F32(info, 10) : F32Arg{};
  if (bias.p) NeedLen(info, fn, "bias", bias, N);
  MatMul(a.p, b.p, o.p, static_cast<int64_t>(batch), ao.data(), bo.data(), static_cast<int>(M), static_cast<int>(N),
         static_cast<int>(K), Bool(info, 8), Bool(info, 9), bias.p);
  return info.Env().Undefined();
}

// linearWeightGrad(x, dy, dW, db | null, rows, inF, outF, transposeWeight)
Napi::Value LinearWeightGradJs(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "linearWeightGrad";
  const F32Arg x = F32(info, 0), dy = F32(info, 1), dW = F32(info, 2), db = F32(info, 3);
  const int64_t rows = Int(info, 4), inF = Int(info, 5), outF = Int(info, 6);
  NonNeg(info, fn, {rows, inF, outF});
  Require(info, rows <= INT32_MAX && inF <= INT32_MAX && outF <= INT32_MAX, fn, "dimension too large for BLAS");
  NeedLen(info, fn, "x", x, rows * inF);
  NeedLen(info, fn, "dy", dy, rows * outF);
  NeedLen(info, fn, "dW", dW, inF * outF);
  if (db.p) NeedLen(info, fn, "db", db, outF);
  LinearWeightGrad(x.p, dy.p, dW.p, db.p, rows, static_cast<int>(inF), static_cast<int>(outF), Bool(info, 7));
  return info.Env().Undefined();
}

// gelu(x, y, tanh) / geluGrad(x, dy, dx, tanh)
Napi::Value GeluJs(const Napi::CallbackInfo& info) {
  const F32Arg x = F32(info, 0), y = F32(info, 1);
  NeedLen(info, "gelu", "y", y, x.n);
  Gelu(x.p, y.p, x.n, Bool(info, 2));
  return info.Env().Undefined();
}
Napi::Value GeluGradJs(const Napi::CallbackInfo& info) {
  const F32Arg x = F32(info, 0), dy = F32(info, 1), dx = F32(info, 2);
  NeedLen(info, "geluGrad", "dy", dy, x.n);
  NeedLen(info, "geluGrad", "dx", dx, x.n);
  GeluGrad(x.p, dy.p, dx.p, x.n, Bool(info, 3));
  return info.Env().Undefined();
}

// Row-wise op checks: rows*C for the row arrays, C for the per-channel ones.
int CheckRows(const Napi::CallbackInfo& info, const char* fn, int64_t rows, int64_t C) {
  NonNeg(info, fn, {rows, C});
  Require(info, C <= INT32_MAX, fn, "C too large");
  return static_cast<int>(C);
}

// layerNorm(x, gamma, beta|null, y, rows, C, eps)
Napi::Value LayerNormJs(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "layerNorm";
  const F32Arg x = F32(info, 0), gamma = F32(info, 1), beta = F32(info, 2), y = F32(info, 3);
  const int64_t rows = Int(info, 4);
  const int C = CheckRows(info, fn, rows, Int(info, 5));
  NeedLen(info, fn, "x", x, rows * C);
  NeedLen(info, fn, "y", y, rows * C);
  NeedLen(info, fn, "gamma", gamma, C);
  if (beta.p) NeedLen(info, fn, "beta", beta, C);
  LayerNorm(x.p, gamma.p, beta.p, y.p, rows, C, Num(info, 6));
  return info.Env().Undefined();
}
// layerNormGrad(x, dy, gamma, dx, dgamma, dbeta, rows, C, eps)
Napi::Value LayerNormGradJs(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "layerNormGrad";
  const F32Arg x = F32(info, 0), dy = F32(info, 1), gamma = F32(info, 2), dx = F32(info, 3), dgamma = F32(info, 4),
               dbeta = F32(info, 5);
  const int64_t rows = Int(info, 6);
  const int C = CheckRows(info, fn, rows, Int(info, 7));
  NeedLen(info, fn, "x", x, rows * C);
  NeedLen(info, fn, "dy", dy, rows * C);
  NeedLen(info, fn, "dx", dx, rows * C);
  NeedLen(info, fn, "gamma", gamma, C);
  NeedLen(info, fn, "dgamma", dgamma, C);
  NeedLen(info, fn, "dbeta", dbeta, C);
  LayerNormGrad(x.p, dy.p, gamma.p, dx.p, dgamma.p, dbeta.p, rows, C, Num(info, 8));
  return info.Env().Undefined();
}
// rmsNorm(x, gamma, y, rows, C, eps)
Napi::Value RmsNormJs(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "rmsNorm";
  const F32Arg x = F32(info, 0), gamma = F32(info, 1), y = F32(info, 2);
  const int64_t rows = Int(info, 3);
  const int C = CheckRows(info, fn, rows, Int(info, 4));
  NeedLen(info, fn, "x", x, rows * C);
  NeedLen(info, fn, "y", y, rows * C);
  NeedLen(info, fn, "gamma", gamma, C);
  RmsNorm(x.p, gamma.p, y.p, rows, C, Num(info, 5));
  return info.Env().Undefined();
}
// rmsNormGrad(x, dy, gamma, dx, dgamma, rows, C, eps)
Napi::Value RmsNormGradJs(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "rmsNormGrad";
  const F32Arg x = F32(info, 0), dy = F32(info, 1), gamma = F32(info, 2), dx = F32(info, 3), dgamma = F32(info, 4);
  const int64_t rows = Int(info, 5);
  const int C = CheckRows(info, fn, rows, Int(info, 6));
  NeedLen(info, fn, "x", x, rows * C);
  NeedLen(info, fn, "dy", dy, rows * C);
  NeedLen(info, fn, "dx", dx, rows * C);
  NeedLen(info, fn, "gamma", gamma, C);
  NeedLen(info, fn, "dgamma", dgamma, C);
  RmsNormGrad(x.p, dy.p, gamma.p, dx.p, dgamma.p, rows, C, Num(info, 7));
  return info.Env().Undefined();
}

// Logits [N, V] and labels [N], each label in [0, V) or the ignore index.
int CheckLogits(const Napi::CallbackInfo& info, const char* fn, const F32Arg& logits, const I32Arg& labels, int64_t N,
                int64_t V, int64_t ignoreIndex) {
  NonNeg(info, fn, {N, V});
  Require(info, V <= INT32_MAX, fn, "V too large");
  NeedLen(info, fn, "logits", logits, N * V);
  NeedLen(info, fn, "labels", labels, N);
  for (int64_t n = 0; n < N; n++) {
    const int32_t y = labels.p[n];
    Require(info, y == ignoreIndex || (y >= 0 && y < V), fn,
            "label " + S(y) + " at " + S(n) + " is outside [0, " + S(V) + ")");
  }
  return static_cast<int>(V);
}

// crossEntropy(logits, labels, N, V, ignoreIndex) -> summed loss
Napi::Value CrossEntropyJs(const Napi::CallbackInfo& info) {
  const F32Arg logits = F32(info, 0);
  const I32Arg labels = I32(info, 1);
  const int64_t N = Int(info, 2), ignore = Int(info, 4);
  const int V = CheckLogits(info, "crossEntropy", logits, labels, N, Int(info, 3), ignore);
  const double total = CrossEntropy(logits.p, labels.p, N, V, static_cast<int>(ignore));
  return Napi::Number::New(info.Env(), total);
}
// crossEntropyGrad(logits, labels, dlogits, N, V, ignoreIndex, scale)
Napi::Value CrossEntropyGradJs(const Napi::CallbackInfo& info) {
  const F32Arg logits = F32(info, 0), d = F32(info, 2);
  const I32Arg labels = I32(info, 1);
  const int64_t N = Int(info, 3), ignore = Int(info, 5);
  const int V = CheckLogits(info, "crossEntropyGrad", logits, labels, N, Int(info, 4), ignore);
  NeedLen(info, "crossEntropyGrad", "dlogits", d, N * V);
  CrossEntropyGrad(logits.p, labels.p, d.p, N, V, static_cast<int>(ignore), Num(info, 6));
  return info.Env().Undefined();
}

// dims = [B, H, Tq, Tk, D, Dv, bias0, bias1, bias2, bias3] (Int32Array), scale, causal, mask|null, bias|null
AttentionShape ReadShape(const Napi::CallbackInfo& info, size_t at, const char* fn) {
  const I32Arg d = I32(info, at);
  Require(info, d.n >= 10, fn, "dims has " + S(d.n) + " entries, needs 10");
  AttentionShape s{};
  s.B = d.p[0];
  s.H = d.p[1];
  s.Tq = d.p[2];
  s.Tk = d.p[3];
  s.D = d.p[4];
  s.Dv = d.p[5];
  NonNeg(info, fn, {s.B, s.H, s.Tq, s.Tk, s.D, s.Dv});
  const int full[4] = {s.B, s.H, s.Tq, s.Tk};
  for (int i = 0; i < 4; i++) {
    s.biasShape[i] = d.p[6 + i];
    Require(info, s.biasShape[i] == 1 || s.biasShape[i] == full[i], fn,
            "bias dim " + S(i) + " is " + S(s.biasShape[i]) + ", needs 1 or " + S(full[i]));
  }
  s.scale = static_cast<float>(Num(info, at + 1));
  s.causal = Bool(info, at + 2);
  const F32Arg mask = F32(info, at + 3), bias = F32(info, at + 4);
  if (mask.p) NeedLen(info, fn, "mask", mask, static_cast<int64_t>(s.B) * s.Tk);
  if (bias.p) {
    NeedLen(info, fn, "bias", bias,
            static_cast<int64_t>(s.biasShape[0]) * s.biasShape[1] * s.biasShape[2] * s.biasShape[3]);
  }
  s.mask = mask.p;
  s.bias = bias.p;
  // Optional layouts (q, k, v, out: offset, batch, head, row each); default contiguous heads.
  s.ql = ContiguousHeads(s.H, s.Tq, s.D);
  s.kl = ContiguousHeads(s.H, s.Tk, s.D);
  s.vl = ContiguousHeads(s.H, s.Tk, s.Dv);
  s.ol = ContiguousHeads(s.H, s.Tq, s.Dv);
  const Napi::Value lv = info[at + 5];
  if (!lv.IsUndefined() && !lv.IsNull()) {
    Require(info, lv.IsTypedArray() && lv.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array, fn,
            "layouts must be a Float64Array");
    auto l = lv.As<Napi::Float64Array>();
    Require(info, l.ElementLength() == 16, fn, "layouts has " + S(l.ElementLength()) + " entries, needs 16");
    HeadLayout* layouts[4] = {&s.ql, &s.kl, &s.vl, &s.ol};
    for (int t = 0; t < 4; t++) {
      *layouts[t] = {static_cast<int64_t>(l[4 * t]), static_cast<int64_t>(l[4 * t + 1]),
                     static_cast<int64_t>(l[4 * t + 2]), static_cast<int64_t>(l[4 * t + 3])};
      NonNeg(info, fn, {layouts[t]->offset, layouts[t]->batch, layouts[t]->head, layouts[t]->row});
      Require(info, layouts[t]->row <= INT_MAX, fn, "layout row stride " + S(layouts[t]->row) + " is too large");
    }
    Require(info, s.ql.row >= s.D && s.kl.row >= s.D && s.vl.row >= s.Dv && s.ol.row >= s.Dv, fn,
            "a layout's row stride is smaller than its head size");
  }
  return s;
}

// attention(q, k, v, out, dims, scale, causal, mask, bias, layouts?)
Napi::Value AttentionJs(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "attention";
  const AttentionShape s = ReadShape(info, 4, fn);
  const F32Arg q = F32(info, 0), k = F32(info, 1), v = F32(info, 2), o = F32(info, 3);
  NeedLen(info, fn, "q", q, s.ql.Extent(s.B, s.H, s.Tq, s.D));
  NeedLen(info, fn, "k", k, s.kl.Extent(s.B, s.H, s.Tk, s.D));
  NeedLen(info, fn, "v", v, s.vl.Extent(s.B, s.H, s.Tk, s.Dv));
  NeedLen(info, fn, "out", o, s.ol.Extent(s.B, s.H, s.Tq, s.Dv));
  Attention(s, q.p, k.p, v.p, o.p);
  return info.Env().Undefined();
}
// attentionGrad(dy, q, k, v, dq, dk, dv, dbias|null, dims, scale, causal, mask, bias, layouts?)
// dbias null (only without a bias): the scores' gradient is not wanted and never stored.
Napi::Value AttentionGradJs(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "attentionGrad";
  const AttentionShape s = ReadShape(info, 8, fn);
  const int64_t BH = static_cast<int64_t>(s.B) * s.H;
  const F32Arg dy = F32(info, 0), q = F32(info, 1), k = F32(info, 2), v = F32(info, 3), dq = F32(info, 4),
               dk = F32(info, 5), dv = F32(info, 6), dbias = F32(info, 7);
  NeedLen(info, fn, "dy", dy, s.ol.Extent(s.B, s.H, s.Tq, s.Dv));
  NeedLen(info, fn, "q", q, s.ql.Extent(s.B, s.H, s.Tq, s.D));
  NeedLen(info, fn, "k", k, s.kl.Extent(s.B, s.H, s.Tk, s.D));
  NeedLen(info, fn, "v", v, s.vl.Extent(s.B, s.H, s.Tk, s.Dv));
  NeedLen(info, fn, "dq", dq, s.ql.Extent(s.B, s.H, s.Tq, s.D));
  NeedLen(info, fn, "dk", dk, s.kl.Extent(s.B, s.H, s.Tk, s.D));
  NeedLen(info, fn, "dv", dv, s.vl.Extent(s.B, s.H, s.Tk, s.Dv));
  const int64_t dbiasSize = s.bias ? static_cast<int64_t>(s.biasShape[0]) * s.biasShape[1] * s.biasShape[2] *
                                         s.biasShape[3]
                                   : BH * s.Tq * s.Tk;
  Require(info, dbias.p != nullptr || !s.bias, fn, "dbias is missing (a bias needs its gradient)");
  if (dbias.p) NeedLen(info, fn, "dbias", dbias, dbiasSize);
  AttentionGrad(s, dy.p, q.p, k.p, v.p, dq.p, dk.p, dv.p, dbias.p);
  return info.Env().Undefined();
}

// adamw(p, g, m, v, p1, m1, v1, lr, beta1, beta2, eps, weightDecay, step)
Napi::Value AdamWJs(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "adamw";
  const F32Arg p = F32(info, 0), g = F32(info, 1), m = F32(info, 2), v = F32(info, 3), p1 = F32(info, 4),
               m1 = F32(info, 5), v1 = F32(info, 6);
  NeedLen(info, fn, "grad", g, p.n);
  NeedLen(info, fn, "m", m, p.n);
  NeedLen(info, fn, "v", v, p.n);
  NeedLen(info, fn, "p1", p1, p.n);
  NeedLen(info, fn, "m1", m1, p.n);
  NeedLen(info, fn, "v1", v1, p.n);
  AdamW(p.p, g.p, m.p, v.p, p1.p, m1.p, v1.p, p.n, Num(info, 7), Num(info, 8), Num(info, 9), Num(info, 10),
        Num(info, 11), static_cast<int>(Int(info, 12)));
  return info.Env().Undefined();
}

// gather(x, rows, indices, out, rowSize) -> position of the first bad index, or -1
Napi::Value GatherJs(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "gather";
  const F32Arg x = F32(info, 0), o = F32(info, 3);
  const I32Arg idx = I32(info, 2);
  const int64_t rows = Int(info, 1), rowSize = Int(info, 4);
  NonNeg(info, fn, {rows, rowSize});
  NeedLen(info, fn, "x", x, rows * rowSize);
  NeedLen(info, fn, "out", o, idx.n * rowSize);
  const int64_t bad = Gather(x.p, rows, idx.p, idx.n, o.p, rowSize);
  return Napi::Number::New(info.Env(), static_cast<double>(bad));
}

// segmentSum(x, ids, out, numSegments, rowSize)
Napi::Value SegmentSumJs(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "segmentSum";
  const F32Arg x = F32(info, 0), o = F32(info, 2);
  const I32Arg ids = I32(info, 1);
  const int64_t numSegments = Int(info, 3), rowSize = Int(info, 4);
  NonNeg(info, fn, {numSegments, rowSize});
  NeedLen(info, fn, "x", x, ids.n * rowSize);
  NeedLen(info, fn, "out", o, numSegments * rowSize);
  SegmentSum(x.p, ids.p, ids.n, o.p, numSegments, rowSize);
  return info.Env().Undefined();
}

// Reads a JS number array (dims, strides) into int64s.
std::vector<int64_t> Ints(const Napi::CallbackInfo& info, size_t i) {
  auto arr = info[i].As<Napi::Float64Array>();
  std::vector<int64_t> v(arr.ElementLength());
  for (size_t k = 0; k < v.size(); k++) v[k] = static_cast<int64_t>(arr[k]);
  return v;
}

// The lowest and highest element a strided view touches must both lie in [0, length).
void CheckView(const Napi::CallbackInfo& info, const char* name, int64_t offset, const std::vector<int64_t>& strides,
               const std::vector<int64_t>& dims, int64_t length) {
  int64_t lo = offset, hi = offset;
  for (size_t d = 0; d < dims.size(); d++) {
    const int64_t span = (dims[d] - 1) * strides[d];
    if (span < 0) lo += span;
    else hi += span;
  }
  Require(info, lo >= 0 && hi < length, "stridedCopy",
          std::string(name) + " view spans [" + S(lo) + ", " + S(hi) + "] but the array has " + S(length) +
              " elements");
}

// stridedCopy(x, xOffset, xStrides, out, outOffset, outStrides, dims) — strides/dims as Float64Array
Napi::Value StridedCopyJs(const Napi::CallbackInfo& info) {
  const auto xs = Ints(info, 2), os = Ints(info, 5), dims = Ints(info, 6);
  if (dims.size() > 8 || xs.size() != dims.size() || os.size() != dims.size())
    throw Napi::RangeError::New(info.Env(), "stridedCopy: rank must be <= 8 and strides must match dims");
  const F32Arg x = F32(info, 0), o = F32(info, 3);
  const int64_t xOffset = Int(info, 1), outOffset = Int(info, 4);
  int64_t total = 1;
  for (int64_t d : dims) {
    Require(info, d >= 0, "stridedCopy", "negative dim " + S(d));
    total *= d;
  }
  if (total == 0) return info.Env().Undefined();
  CheckView(info, "x", xOffset, xs, dims, x.n);
  CheckView(info, "out", outOffset, os, dims, o.n);
  StridedCopy(x.p, xOffset, xs.data(), o.p, outOffset, os.data(), dims.data(), static_cast<int>(dims.size()));
  return info.Env().Undefined();
}

// reduceSum(x, outer, reduce, inner, out)
Napi::Value ReduceSumJs(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "reduceSum";
  const F32Arg x = F32(info, 0), o = F32(info, 4);
  const int64_t outer = Int(info, 1), reduce = Int(info, 2), inner = Int(info, 3);
  NonNeg(info, fn, {outer, reduce, inner});
  NeedLen(info, fn, "x", x, outer * reduce * inner);
  NeedLen(info, fn, "out", o, outer * inner);
  ReduceSum(x.p, outer, reduce, inner, o.p);
  return info.Env().Undefined();
}

// binary(op, a, b, out): sizes from the arrays.
Napi::Value BinaryJs(const Napi::CallbackInfo& info) {
  const F32Arg a = F32(info, 1), b = F32(info, 2), o = F32(info, 3);
  const int64_t n = o.n;
  // Either both operands have n elements, or the larger has n and the smaller (non-empty)
  // divides it (it repeats along the larger's leading dims).
  const int64_t big = std::max(a.n, b.n), small = std::min(a.n, b.n);
  Require(info, n == 0 || (big == n && small > 0 && n % small == 0), "binary",
          "a has " + S(a.n) + " elements, b " + S(b.n) + ", out " + S(n));
  Binary(static_cast<int>(Int(info, 0)), a.p, a.n, b.p, b.n, o.p, n);
  return info.Env().Undefined();
}

// unary(op, x, out, alpha): op 0 relu, 1 step.
Napi::Value UnaryJs(const Napi::CallbackInfo& info) {
  const F32Arg x = F32(info, 1), o = F32(info, 2);
  Require(info, x.n == o.n, "unary", "x has " + S(x.n) + " elements, out " + S(o.n));
  Unary(static_cast<int>(Int(info, 0)), x.p, o.p, o.n, static_cast<float>(Num(info, 3)));
  return info.Env().Undefined();
}

// setNumThreads(n): our pool and OpenBLAS's both use n threads.
Napi::Value SetNumThreadsJs(const Napi::CallbackInfo& info) {
  const int n = static_cast<int>(Int(info, 0));
  Pool().Resize(n);
  openblas_set_num_threads(Pool().Size());
  return info.Env().Undefined();
}
Napi::Value GetNumThreadsJs(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), Pool().Size()); }
Napi::Value BlasConfigJs(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), openblas_get_config());
}

// alignmentSkip(buffer): how many bytes past the start of an ArrayBuffer's data its first
// 64-byte boundary lies (0..63). The pool starts its arrays there: V8's large backing stores
// come from malloc 16 bytes past a page boundary, and our GEMM's C rows and A rows then
// straddle cache lines (2-3 % of the large products on Zen 3, measured in gemm_shapes.cc).
Napi::Value AlignmentSkipJs(const Napi::CallbackInfo& info) {
  if (!info[0].IsArrayBuffer()) throw Napi::TypeError::New(info.Env(), "alignmentSkip: argument 0 must be an ArrayBuffer");
  const auto address = reinterpret_cast<uintptr_t>(info[0].As<Napi::ArrayBuffer>().Data());
  return Napi::Number::New(info.Env(), static_cast<double>((64 - address % 64) % 64));
}

// ownGemm(): the instruction set our own GEMM runs on here ("avx512f", "avx2"), or "" where
// every product goes to sgemm.
Napi::Value OwnGemmJs(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), OwnGemmKernelName()); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("matmul", Napi::Function::New(env, MatMulJs));
  exports.Set("alignmentSkip", Napi::Function::New(env, AlignmentSkipJs));
  exports.Set("linearWeightGrad", Napi::Function::New(env, LinearWeightGradJs));
  exports.Set("gelu", Napi::Function::New(env, GeluJs));
  exports.Set("geluGrad", Napi::Function::New(env, GeluGradJs));
  exports.Set("layerNorm", Napi::Function::New(env, LayerNormJs));
  exports.Set("layerNormGrad", Napi::Function::New(env, LayerNormGradJs));
  exports.Set("rmsNorm", Napi::Function::New(env, RmsNormJs));
  exports.Set("rmsNormGrad", Napi::Function::New(env, RmsNormGradJs));
  exports.Set("crossEntropy", Napi::Function::New(env, CrossEntropyJs));
  exports.Set("crossEntropyGrad", Napi::Function::New(env, CrossEntropyGradJs));
  exports.Set("attention", Napi::Function::New(env, AttentionJs));
  exports.Set("attentionGrad", Napi::Function::New(env, AttentionGradJs));
  exports.Set("adamw", Napi::Function::New(env, AdamWJs));
  exports.Set("gather", Napi::Function::New(env, GatherJs));
  exports.Set("segmentSum", Napi::Function::New(env, SegmentSumJs));
  exports.Set("stridedCopy", Napi::Function::New(env, StridedCopyJs));
  exports.Set("reduceSum", Napi::Function::New(env, ReduceSumJs));
  exports.Set("binary", Napi::Function::New(env, BinaryJs));
  exports.Set("unary", Napi::Function::New(env, UnaryJs));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreadsJs));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreadsJs));
  exports.Set("blasConfig", Napi::Function::New(env, BlasConfigJs));
  exports.Set("ownGemm", Napi::Function::New(env, OwnGemmJs));
  for (const AddonModuleEntry& m : AddonModules()) m.fn(env, exports);
  return exports;
}

}  // namespace

}  // namespace tessera

// The module entry, in baseline code: it checks the CPU before anything compiled for the
// build's -march runs, and refuses with a JS error (plain C calls, no C++ wrappers) rather
// than dying by SIGILL.
TESSERA_BASELINE_ISA static napi_value InitTesseraNative(napi_env env, napi_value exports) {
  const char* missing = tessera::MissingBuildIsa();
  if (missing[0] != '\0') {
    char message[256];
    std::snprintf(message, sizeof message,
                  "this addon was compiled for a CPU with %s, which this CPU lacks; rebuild it here: node "
                  "scripts/build-native.mjs (npm run build -w @tessera/kernels-native)",
                  missing);
    napi_throw_error(env, nullptr, message);
    return nullptr;
  }
  return Napi::RegisterModule(env, exports, tessera::Init);
}

NAPI_MODULE(tessera_native, InitTesseraNative)
