#include "cpu_features.h"

#include <cstdio>

#include <napi.h>

#include <cstdlib>
#if defined(__x86_64__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

#include "addon_module.h"

namespace tessera {

namespace {

// AMX needs three yeses: cpuid (AMX-TILE, AMX-BF16), the OS enabling tile state in XCR0
// (XTILECFG and XTILEDATA), and, on Linux, a per-process permission for the large tile
// data state; without the last, the first tile instruction faults.
bool DetectAmxBf16() {
#if defined(__x86_64__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool amxTile = (d >> 24) & 1, amxBf16 = (d >> 22) & 1;
  if (!amxTile || !amxBf16) return false;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1)) return false;  // OSXSAVE
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if (((lo >> 17) & 3) != 3) return false;
#if defined(__linux__)
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
#else
  return false;
#endif
}

}  // namespace

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
    // TESSERA_NATIVE_DISABLE=avx512bf16,avx512vnni (or avx512f) hides features, so the paths for CPUs
    // without them (and their errors) can be tested on a machine that has them.
    const char* off = std::getenv("TESSERA_NATIVE_DISABLE");
    const std::string hidden = off ? "," + std::string(off) + "," : "";
    auto hide = [&](const char* name, bool& flag) {
      if (hidden.find("," + std::string(name) + ",") != std::string::npos) flag = false;
    };
    hide("avx2", f.avx2);
    // Without AVX-512F none of its extensions can run: hiding it hides them all.
    if (hidden.find(",avx512f,") != std::string::npos) {
      f.avx512f = f.avx512bw = f.avx512vl = f.avx512vnni = f.avx512bf16 = false;
    }
    hide("avx512vnni", f.avx512vnni);
    hide("avx512bf16", f.avx512bf16);
    hide("avxvnni", f.avxvnni);
    // TESSERA_NATIVE_DISABLE=amx (or avx512bf16, which the AMX path packs with) keeps the tile
    // permission unrequested and the bf16 GEMM on vdpbf16ps.
    if (hidden.find(",amx,") == std::string::npos) f.amxBf16 = f.avx512bf16 && DetectAmxBf16();
    return f;
  }();
  return features;
}

TESSERA_BASELINE_ISA const char* MissingBuildIsa() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // Every instruction set -march can switch on that code generation may use, as
  // {compiled for it, this CPU has it}. __builtin_cpu_supports takes literal names only.
  const struct {
    const char* name;
    bool built;
    bool present;
  } sets[] = {
#define TESSERA_ISA(macro, name) {name, macro, static_cast<bool>(__builtin_cpu_supports(name))}
#ifdef __AVX__
      TESSERA_ISA(true, "avx"),
#endif
#ifdef __AVX2__
      TESSERA_ISA(true, "avx2"),
#endif
#ifdef __FMA__
      TESSERA_ISA(true, "fma"),
#endif
#ifdef __BMI2__
      TESSERA_ISA(true, "bmi2"),
#endif
#ifdef __AVX512F__
      TESSERA_ISA(true, "avx512f"),
#endif
#ifdef __AVX512BW__
      TESSERA_ISA(true, "avx512bw"),
#endif
#ifdef __AVX512VL__
      TESSERA_ISA(true, "avx512vl"),
#endif
#ifdef __AVX512DQ__
      TESSERA_ISA(true, "avx512dq"),
#endif
#ifdef __AVX512CD__
      TESSERA_ISA(true, "avx512cd"),
#endif
#ifdef __AVX512VNNI__
      TESSERA_ISA(true, "avx512vnni"),
#endif
#ifdef __AVX512BF16__
      TESSERA_ISA(true, "avx512bf16"),
#endif
#ifdef __AVX512VBMI__
      TESSERA_ISA(true, "avx512vbmi"),
#endif
#ifdef __AVX512VBMI2__
      TESSERA_ISA(true, "avx512vbmi2"),
#endif
#ifdef __AVX512IFMA__
      TESSERA_ISA(true, "avx512ifma"),
#endif
#ifdef __AVX512BITALG__
      TESSERA_ISA(true, "avx512bitalg"),
#endif
#ifdef __AVX512VPOPCNTDQ__
      TESSERA_ISA(true, "avx512vpopcntdq"),
#endif
#ifdef __AVX512FP16__
      TESSERA_ISA(true, "avx512fp16"),
#endif
#ifdef __AVX512VP2INTERSECT__
      TESSERA_ISA(true, "avx512vp2intersect"),
#endif
#undef TESSERA_ISA
      {"", false, true},
  };
  // Every missing one, so the message names the set the build was asked for (-mavx512fp16
  // implies avx512f, bw, dq, vl, ...), not only the first it implies.
  static char missing[512];
  size_t used = 0;
  missing[0] = '\0';
  for (const auto& set : sets) {
    if (!set.built || set.present) continue;
    const int n = std::snprintf(missing + used, sizeof missing - used, "%s%s", used ? ", " : "", set.name);
    if (n < 0 || used + n >= sizeof missing) break;
    used += n;
  }
  return missing;
#else
  return "";
#endif
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
  o.Set("amxBf16", f.amxBf16);
  return o;
}

const AddonModule kModule("cpu-features", [](Napi::Env env, Napi::Object exports) {
  exports.Set("cpuFeatures", Napi::Function::New(env, CpuFeaturesJs));
});

}  // namespace

}  // namespace tessera
