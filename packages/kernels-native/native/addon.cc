// N-API surface of the native backend. Every function takes the tfjs-backend-cpu
// Float32Arrays/Int32Arrays of its inputs and preallocated outputs and writes in place:
// the JS side owns all memory, so there is nothing to free here and no copies.
// Shapes and attributes are validated on the JS side; this layer only checks types.
#include <napi.h>
#include <cblas.h>

#include <string>
#include <thread>
#include <vector>

#include "kernels.h"
#include "pool.h"

namespace tessera {

ThreadPool& Pool() {
  static ThreadPool pool(std::max(1u, std::thread::hardware_concurrency()));
  return pool;
}

namespace {

float* F32(const Napi::CallbackInfo& info, size_t i) {
  const Napi::Value v = info[i];
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a Float32Array");
  return v.As<Napi::Float32Array>().Data();
}

int32_t* I32(const Napi::CallbackInfo& info, size_t i) {
  const Napi::Value v = info[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be an Int32Array");
  return v.As<Napi::Int32Array>().Data();
}

int64_t Int(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int64Value(); }
double Num(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().DoubleValue(); }
bool Bool(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Boolean>().Value(); }

// matmul(a, b, out, aOffsets: Float64Array, bOffsets: Float64Array, M, N, K, transA, transB)
Napi::Value MatMulJs(const Napi::CallbackInfo& info) {
  auto aOff = info[3].As<Napi::Float64Array>();
  auto bOff = info[4].As<Napi::Float64Array>();
  const size_t batch = aOff.ElementLength();
  std::vector<int64_t> ao(batch), bo(batch);
  for (size_t i = 0; i < batch; i++) {
    ao[i] = static_cast<int64_t>(aOff[i]);
    bo[i] = static_cast<int64_t>(bOff[i]);
  }
  MatMul(F32(info, 0), F32(info, 1), F32(info, 2), static_cast<int64_t>(batch), ao.data(), bo.data(),
         static_cast<int>(Int(info, 5)), static_cast<int>(Int(info, 6)), static_cast<int>(Int(info, 7)), Bool(info, 8),
         Bool(info, 9));
  return info.Env().Undefined();
}

// gelu(x, y, tanh) / geluGrad(x, dy, dx, tanh)
Napi::Value GeluJs(const Napi::CallbackInfo& info) {
  auto x = info[0].As<Napi::Float32Array>();
  Gelu(x.Data(), F32(info, 1), static_cast<int64_t>(x.ElementLength()), Bool(info, 2));
  return info.Env().Undefined();
}
Napi::Value GeluGradJs(const Napi::CallbackInfo& info) {
  auto x = info[0].As<Napi::Float32Array>();
  GeluGrad(x.Data(), F32(info, 1), F32(info, 2), static_cast<int64_t>(x.ElementLength()), Bool(info, 3));
  return info.Env().Undefined();
}

// layerNorm(x, gamma, beta|null, y, rows, C, eps)
Napi::Value LayerNormJs(const Napi::CallbackInfo& info) {
  LayerNorm(F32(info, 0), F32(info, 1), F32(info, 2), F32(info, 3), Int(info, 4), static_cast<int>(Int(info, 5)),
            Num(info, 6));
  return info.Env().Undefined();
}
// layerNormGrad(x, dy, gamma, dx, dgamma, dbeta, rows, C, eps)
Napi::Value LayerNormGradJs(const Napi::CallbackInfo& info) {
  LayerNormGrad(F32(info, 0), F32(info, 1), F32(info, 2), F32(info, 3), F32(info, 4), F32(info, 5), Int(info, 6),
                static_cast<int>(Int(info, 7)), Num(info, 8));
  return info.Env().Undefined();
}
// rmsNorm(x, gamma, y, rows, C, eps)
Napi::Value RmsNormJs(const Napi::CallbackInfo& info) {
  RmsNorm(F32(info, 0), F32(info, 1), F32(info, 2), Int(info, 3), static_cast<int>(Int(info, 4)), Num(info, 5));
  return info.Env().Undefined();
}
// rmsNormGrad(x, dy, gamma, dx, dgamma, rows, C, eps)
Napi::Value RmsNormGradJs(const Napi::CallbackInfo& info) {
  RmsNormGrad(F32(info, 0), F32(info, 1), F32(info, 2), F32(info, 3), F32(info, 4), Int(info, 5),
              static_cast<int>(Int(info, 6)), Num(info, 7));
  return info.Env().Undefined();
}

// crossEntropy(logits, labels, N, V, ignoreIndex) -> summed loss
Napi::Value CrossEntropyJs(const Napi::CallbackInfo& info) {
  const double total =
      CrossEntropy(F32(info, 0), I32(info, 1), Int(info, 2), static_cast<int>(Int(info, 3)), static_cast<int>(Int(info, 4)));
  return Napi::Number::New(info.Env(), total);
}
// crossEntropyGrad(logits, labels, dlogits, N, V, ignoreIndex, scale)
Napi::Value CrossEntropyGradJs(const Napi::CallbackInfo& info) {
  CrossEntropyGrad(F32(info, 0), I32(info, 1), F32(info, 2), Int(info, 3), static_cast<int>(Int(info, 4)),
                   static_cast<int>(Int(info, 5)), Num(info, 6));
  return info.Env().Undefined();
}

// dims = [B, H, Tq, Tk, D, Dv, bias0, bias1, bias2, bias3] (Int32Array), scale, causal, mask|null, bias|null
AttentionShape ReadShape(const Napi::CallbackInfo& info, size_t at) {
  const int32_t* d = I32(info, at);
  AttentionShape s{};
  s.B = d[0];
  s.H = d[1];
  s.Tq = d[2];
  s.Tk = d[3];
  s.D = d[4];
  s.Dv = d[5];
  for (int i = 0; i < 4; i++) s.biasShape[i] = d[6 + i];
  s.scale = static_cast<float>(Num(info, at + 1));
  s.causal = Bool(info, at + 2);
  s.mask = F32(info, at + 3);
  s.bias = F32(info, at + 4);
  return s;
}

// attention(q, k, v, out, dims, scale, causal, mask, bias)
Napi::Value AttentionJs(const Napi::CallbackInfo& info) {
  const AttentionShape s = ReadShape(info, 4);
  Attention(s, F32(info, 0), F32(info, 1), F32(info, 2), F32(info, 3));
  return info.Env().Undefined();
}
// attentionGrad(dy, q, k, v, dq, dk, dv, dbias, dims, scale, causal, mask, bias)
Napi::Value AttentionGradJs(const Napi::CallbackInfo& info) {
  const AttentionShape s = ReadShape(info, 8);
  AttentionGrad(s, F32(info, 0), F32(info, 1), F32(info, 2), F32(info, 3), F32(info, 4), F32(info, 5), F32(info, 6),
                F32(info, 7));
  return info.Env().Undefined();
}

// adamw(p, g, m, v, p1, m1, v1, lr, beta1, beta2, eps, weightDecay, step)
Napi::Value AdamWJs(const Napi::CallbackInfo& info) {
  auto p = info[0].As<Napi::Float32Array>();
  AdamW(p.Data(), F32(info, 1), F32(info, 2), F32(info, 3), F32(info, 4), F32(info, 5), F32(info, 6),
        static_cast<int64_t>(p.ElementLength()), Num(info, 7), Num(info, 8), Num(info, 9), Num(info, 10),
        Num(info, 11), static_cast<int>(Int(info, 12)));
  return info.Env().Undefined();
}

// gather(x, rows, indices, out, rowSize) -> position of the first bad index, or -1
Napi::Value GatherJs(const Napi::CallbackInfo& info) {
  auto idx = info[2].As<Napi::Int32Array>();
  const int64_t bad = Gather(F32(info, 0), Int(info, 1), I32(info, 2), static_cast<int64_t>(idx.ElementLength()),
                             F32(info, 3), Int(info, 4));
  return Napi::Number::New(info.Env(), static_cast<double>(bad));
}

// segmentSum(x, ids, out, numSegments, rowSize)
Napi::Value SegmentSumJs(const Napi::CallbackInfo& info) {
  auto ids = info[1].As<Napi::Int32Array>();
  SegmentSum(F32(info, 0), I32(info, 1), static_cast<int64_t>(ids.ElementLength()), F32(info, 2), Int(info, 3),
             Int(info, 4));
  return info.Env().Undefined();
}

// Reads a JS number array (dims, strides) into int64s.
std::vector<int64_t> Ints(const Napi::CallbackInfo& info, size_t i) {
  auto arr = info[i].As<Napi::Float64Array>();
  std::vector<int64_t> v(arr.ElementLength());
  for (size_t k = 0; k < v.size(); k++) v[k] = static_cast<int64_t>(arr[k]);
  return v;
}

// stridedCopy(x, xOffset, xStrides, out, outOffset, outStrides, dims) — strides/dims as Float64Array
Napi::Value StridedCopyJs(const Napi::CallbackInfo& info) {
  const auto xs = Ints(info, 2), os = Ints(info, 5), dims = Ints(info, 6);
  if (dims.size() > 8 || xs.size() != dims.size() || os.size() != dims.size())
    throw Napi::RangeError::New(info.Env(), "stridedCopy: rank must be <= 8 and strides must match dims");
  StridedCopy(F32(info, 0), Int(info, 1), xs.data(), F32(info, 3), Int(info, 4), os.data(), dims.data(),
              static_cast<int>(dims.size()));
  return info.Env().Undefined();
}

// reduceSum(x, outer, reduce, inner, out)
Napi::Value ReduceSumJs(const Napi::CallbackInfo& info) {
  ReduceSum(F32(info, 0), Int(info, 1), Int(info, 2), Int(info, 3), F32(info, 4));
  return info.Env().Undefined();
}

// binary(op, a, b, out): sizes from the arrays.
Napi::Value BinaryJs(const Napi::CallbackInfo& info) {
  auto a = info[1].As<Napi::Float32Array>();
  auto b = info[2].As<Napi::Float32Array>();
  auto o = info[3].As<Napi::Float32Array>();
  Binary(static_cast<int>(Int(info, 0)), a.Data(), static_cast<int64_t>(a.ElementLength()), b.Data(),
         static_cast<int64_t>(b.ElementLength()), o.Data(), static_cast<int64_t>(o.ElementLength()));
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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("matmul", Napi::Function::New(env, MatMulJs));
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
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreadsJs));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreadsJs));
  exports.Set("blasConfig", Napi::Function::New(env, BlasConfigJs));
  return exports;
}

}  // namespace

}  // namespace tessera

static Napi::Object InitTesseraNative(Napi::Env env, Napi::Object exports) { return tessera::Init(env, exports); }

NODE_API_MODULE(tessera_native, InitTesseraNative)
