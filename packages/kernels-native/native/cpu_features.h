// What the running CPU can do, detected at run time (cpuid through GCC's builtins).
// Kernels that use an instruction set beyond the build's baseline compile that code with
// __attribute__((target(...))) and call it only when the matching flag here is set, so one
// binary runs on every x86-64 machine and uses what each one has.
#pragma once

#include <string>

namespace tessera {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512vnni = false;  // vpdpbusd: u8 x s8 -> s32 dot products
  bool avx512bf16 = false;  // vdpbf16ps: bf16 x bf16 -> f32 dot products
  bool avxvnni = false;     // the VEX (256-bit) form of vpdpbusd
  // AMX tiles with bf16 dot products (tdpbf16ps), usable: the CPU has them, the OS saves tile
  // state (XCR0 bits 17-18) and granted this process the tile data permission (Linux arch_prctl).
  bool amxBf16 = false;
};

const CpuFeatures& Cpu();

// Code that must run on any x86-64 CPU whatever -march the build took: the load-time guard
// below and the module entry that calls it (GCC otherwise vectorises even its table's
// initialisation with the build's widest registers, and it died by SIGILL on an AVX2 CPU
// when built for AVX-512).
#if defined(__x86_64__) || defined(__i386__)
#define TESSERA_BASELINE_ISA __attribute__((target("arch=x86-64")))
#else
#define TESSERA_BASELINE_ISA
#endif

// The instruction sets this binary was compiled to assume (by -march) that the running CPU
// lacks, comma-separated, or "" when it has them all. Calling into code built for a missing
// set would die by SIGILL, so the module entry refuses to load instead (addon.cc).
TESSERA_BASELINE_ISA const char* MissingBuildIsa();

}  // namespace tessera
