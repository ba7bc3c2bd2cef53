#include "cublas_loader.h"

#include <dlfcn.h>

namespace tessera {

namespace {

std::string join(const std::string& dir, const std::string& file) {
  if (dir.empty()) return file;
  return dir.back() == '/' ? dir + file : dir + "/" + file;
}

template <typename F>
bool bind(void* lib, const char* name, F* out, std::string* missing) {
  *out = reinterpret_cast<F>(dlsym(lib, name));
  if (!*out) {
    if (!missing->empty()) *missing += ", ";
    *missing += name;
  }
  return *out != nullptr;
}

}  // namespace

bool loadCublasLt(const std::vector<std::string>& dirs, int major, CublasLtApi* api,
                  std::vector<LoadAttempt>* attempts) {
  const std::string ltName = "libcublasLt.so." + std::to_string(major);
  const std::string blasName = "libcublas.so." + std::to_string(major);
  for (const std::string& dir : dirs) {
    const std::string file = join(dir, ltName);
    LoadAttempt attempt{dir, file, ""};
    // RTLD_LOCAL: our copy's symbols stay ours, so a different cuBLAS that PyTorch or another
    // addon loads into the same process does not get mixed up with it.
    void* lib = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* e = dlerror();
      attempt.error = e ? e : "dlopen failed";
      attempts->push_back(attempt);
      continue;
    }
    CublasLtApi got;
    got.lib = lib;
    std::string missing;
    bind(lib, "cublasLtGetVersion", &got.getVersion, &missing);
    if (got.getVersion) {
      got.version = got.getVersion();
      int gotMajor = static_cast<int>(got.version / 10000);
      if (gotMajor != major) {
        attempt.error = "cublasLtGetVersion() is " + std::to_string(got.version) + " (major " +
                        std::to_string(gotMajor) + "), this addon was built for CUDA " + std::to_string(major);
        dlclose(lib);
        attempts->push_back(attempt);
        continue;
      }
    }
    bind(lib, "cublasLtCreate", &got.create, &missing);
    bind(lib, "cublasLtDestroy", &got.destroy, &missing);
    bind(lib, "cublasLtMatmulDescCreate", &got.descCreate, &missing);
    bind(lib, "cublasLtMatmulDescDestroy", &got.descDestroy, &missing);
    bind(lib, "cublasLtMatmulDescSetAttribute", &got.descSetAttribute, &missing);
    bind(lib, "cublasLtMatrixLayoutCreate", &got.layoutCreate, &missing);
    bind(lib, "cublasLtMatrixLayoutDestroy", &got.layoutDestroy, &missing);
    bind(lib, "cublasLtMatrixLayoutSetAttribute", &got.layoutSetAttribute, &missing);
    bind(lib, "cublasLtMatmulPreferenceCreate", &got.prefCreate, &missing);
    bind(lib, "cublasLtMatmulPreferenceDestroy", &got.prefDestroy, &missing);
    bind(lib, "cublasLtMatmulPreferenceSetAttribute", &got.prefSetAttribute, &missing);
    bind(lib, "cublasLtMatmulAlgoGetHeuristic", &got.heuristic, &missing);
    bind(lib, "cublasLtMatmul", &got.matmul, &missing);
    if (!missing.empty()) {
      attempt.error = "loaded but lacks " + missing + " (not a cuBLASLt library?)";
      dlclose(lib);
      attempts->push_back(attempt);
      continue;
    }
    got.path = file;
    const std::string blasFile = join(dir, blasName);
    got.blasLib = dlopen(blasFile.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (got.blasLib) got.blasPath = blasFile;
    else dlerror();  // optional: the GEMM path needs only Lt
    attempts->push_back(attempt);
    *api = got;
    return true;
  }
  return false;
}

void unloadCublasLt(CublasLtApi* api) {
  if (api->blasLib) dlclose(api->blasLib);
  if (api->lib) dlclose(api->lib);
  *api = CublasLtApi{};
}

}  // namespace tessera
