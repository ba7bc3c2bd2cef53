#include "cpu_features.h"

#include <napi.h>

#include "addon_module.h"

namespace tessera {

const CpuFeatures& Cpu() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    f.avx512f = __builtin_cpu_supports("avx512f");
    f.avx512bw = __builtin_cpu_supports("avx512bw");
    f.avx512vl = __builtin_cpu_supports("avx512vl");
    f.avx512vnni = __builtin_cpu_supports("avx512vnni");
    f.avx512bf16 = __builtin_cpu_supports("avx512bf16");
    f.avxvnni = __builtin_cpu_supports("avxvnni");
#endif
    return f;
  }();
  return features;
}

std::string MissingBuildIsa() {
  const CpuFeatures& f = Cpu();
  (void)f;
#ifdef __AVX2__
  if (!f.avx2) return "avx2";
#endif
#ifdef __FMA__
  if (!f.fma) return "fma";
#endif
#ifdef __AVX512F__
  if (!f.avx512f) return "avx512f";
#endif
#ifdef __AVX512BW__
  if (!f.avx512bw) return "avx512bw";
#endif
#ifdef __AVX512VL__
  if (!f.avx512vl) return "avx512vl";
#endif
#ifdef __AVX512VNNI__
  if (!f.avx512vnni) return "avx512vnni";
#endif
#ifdef __AVX512BF16__
  if (!f.avx512bf16) return "avx512bf16";
#endif
  return "";
}

namespace {

// cpuFeatures(): what this CPU has, and what the binary was built to assume.
Napi::Value CpuFeaturesJs(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const CpuFeatures& f = Cpu();
  Napi::Object o = Napi::Object::New(env);
  o.Set("avx2", f.avx2);
  o.Set("fma", f.fma);
  o.Set("avx512f", f.avx512f);
  o.Set("avx512bw", f.avx512bw);
  o.Set("avx512vl", f.avx512vl);
  o.Set("avx512vnni", f.avx512vnni);
  o.Set("avx512bf16", f.avx512bf16);
  o.Set("avxvnni", f.avxvnni);
  return o;
}

const AddonModule kModule("cpu-features", [](Napi::Env env, Napi::Object exports) {
  exports.Set("cpuFeatures", Napi::Function::New(env, CpuFeaturesJs));
});

}  // namespace

}  // namespace tessera
