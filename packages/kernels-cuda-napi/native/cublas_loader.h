// cuBLASLt, dlopen'ed at run time: the addon links only cudart and libdl, so it builds on a
// machine without cuBLAS and loads where cuBLAS lives in a pip wheel (PyTorch's
// site-packages/nvidia/cublas/lib) instead of the toolkit. No CUDA headers here: the few
// types the GEMM needs are declared below (values from cublasLt.h, CUDA 12/13), so this
// file also builds into the host test binary (native/hosttest.cc) with g++ alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tessera {

// cublasLt.h values this addon uses (stable across CUDA 11-13).
enum : int {
  kCublasOpN = 0,
  kCublasOpT = 1,
  kComputeF32 = 68,          // CUBLAS_COMPUTE_32F
  kComputeF32FastTf32 = 77,  // CUBLAS_COMPUTE_32F_FAST_TF32
  kCudaR32F = 0,             // CUDA_R_32F
  kDescComputeType = 0,
  kDescScaleType = 1,
  kDescTransA = 3,
  kDescTransB = 4,
  kDescEpilogue = 7,
  kDescBiasPointer = 8,
  kLayoutBatchCount = 5,
  kLayoutStridedBatchOffset = 6,
  kPrefMaxWorkspaceBytes = 1,
  kEpilogueDefault = 1,
  kEpilogueBias = 4,
  kEpilogueGeluBias = 36,
};

struct CublasLtAlgo {
  uint64_t data[8];
};
struct CublasLtHeuristicResult {
  CublasLtAlgo algo;
  size_t workspaceSize;
  int state;
  float wavesCount;
  int reserved[4];
};

using Opaque = void*;
struct CublasLtApi {
  void* lib = nullptr;
  void* blasLib = nullptr;  // libcublas.so.N from the same directory, when present
  std::string path;
  std::string blasPath;
  size_t version = 0;
  size_t (*getVersion)() = nullptr;
  int (*create)(Opaque*) = nullptr;
  int (*destroy)(Opaque) = nullptr;
  int (*descCreate)(Opaque*, int computeType, int scaleType) = nullptr;
  int (*descDestroy)(Opaque) = nullptr;
  int (*descSetAttribute)(Opaque, int attr, const void* buf, size_t size) = nullptr;
  int (*layoutCreate)(Opaque*, int type, uint64_t rows, uint64_t cols, int64_t ld) = nullptr;
  int (*layoutDestroy)(Opaque) = nullptr;
  int (*layoutSetAttribute)(Opaque, int attr, const void* buf, size_t size) = nullptr;
  int (*prefCreate)(Opaque*) = nullptr;
  int (*prefDestroy)(Opaque) = nullptr;
  int (*prefSetAttribute)(Opaque, int attr, const void* buf, size_t size) = nullptr;
  int (*heuristic)(Opaque handle, Opaque desc, Opaque a, Opaque b, Opaque c, Opaque d, Opaque pref, int requested,
                   CublasLtHeuristicResult* results, int* returned) = nullptr;
  int (*matmul)(Opaque handle, Opaque desc, const void* alpha, const void* A, Opaque aDesc, const void* B, Opaque bDesc,
                const void* beta, const void* C, Opaque cDesc, void* D, Opaque dDesc, const CublasLtAlgo* algo,
                void* workspace, size_t workspaceSize, void* stream) = nullptr;
};

/** One place tried: the directory ("" for the loader's own path), the file, and why it was not used. */
struct LoadAttempt {
  std::string dir;
  std::string file;
  std::string error;  // empty for the one that loaded
};

/**
 * Tries each directory in order ("" = the dynamic loader's search: LD_LIBRARY_PATH, ld.so.cache):
 * dlopen(dir/libcublasLt.so.<major>) first, then libcublas.so.<major> from the same place
 * (loaded after Lt, so its dependency on Lt resolves to the copy just loaded). The first
 * whose cublasLtGetVersion() has major `major` and that has every symbol wins.
 */
bool loadCublasLt(const std::vector<std::string>& dirs, int major, CublasLtApi* api,
                  std::vector<LoadAttempt>* attempts);

void unloadCublasLt(CublasLtApi* api);

}  // namespace tessera
