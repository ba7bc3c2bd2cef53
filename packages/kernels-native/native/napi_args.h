// Argument unpacking and bounds checks shared by every N-API file of the addon.
#pragma once

#include <napi.h>

#include <cstdint>
#include <initializer_list>
#include <string>

namespace tessera {
namespace napi_args {

// A typed array argument: its data and its length in elements (null/undefined: {nullptr, 0}).
struct F32Arg {
  float* p = nullptr;
  int64_t n = 0;
};
struct I32Arg {
  int32_t* p = nullptr;
  int64_t n = 0;
};

inline F32Arg F32(const Napi::CallbackInfo& info, size_t i) {
  const Napi::Value v = info[i];
  if (v.IsNull() || v.IsUndefined()) return {};
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a Float32Array");
  auto a = v.As<Napi::Float32Array>();
  return {a.Data(), static_cast<int64_t>(a.ElementLength())};
}

inline I32Arg I32(const Napi::CallbackInfo& info, size_t i) {
  const Napi::Value v = info[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be an Int32Array");
  auto a = v.As<Napi::Int32Array>();
  return {a.Data(), static_cast<int64_t>(a.ElementLength())};
}

inline int64_t Int(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a number");
  return info[i].As<Napi::Number>().Int64Value();
}
inline double Num(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().DoubleValue(); }
inline bool Bool(const Napi::CallbackInfo& info, size_t i) { return info[i].ToBoolean().Value(); }

// Bounds checks: the JS wrappers size everything, but a wrapper bug must become a
// RangeError naming the function and the sizes, never a write past the end of a buffer.
inline void Require(const Napi::CallbackInfo& info, bool ok, const char* fn, const std::string& what) {
  if (!ok) throw Napi::RangeError::New(info.Env(), std::string(fn) + ": " + what);
}
inline std::string S(int64_t v) { return std::to_string(v); }
// `arr` (argument `name`) must hold at least `need` elements.
template <typename A>
void NeedLen(const Napi::CallbackInfo& info, const char* fn, const char* name, const A& arr, int64_t need) {
  Require(info, arr.p != nullptr || need == 0, fn, std::string(name) + " is missing");
  Require(info, need >= 0 && arr.n >= need, fn,
          std::string(name) + " has " + S(arr.n) + " elements, needs " + S(need));
}
inline void NonNeg(const Napi::CallbackInfo& info, const char* fn, std::initializer_list<int64_t> dims) {
  for (int64_t d : dims) Require(info, d >= 0, fn, "negative size " + S(d));
}

}  // namespace napi_args
}  // namespace tessera
