// N-API surface of the CUDA backend. Device pointers cross into JS as numbers (x86-64 and
// aarch64 user addresses fit in 48 bits, so a double holds them exactly); the TS side owns
// the data-id -> pointer map and calls free when a tensor's last reference goes.
//
// Everything runs on one non-blocking compute stream created by init(). Memory comes from the
// caching allocator (allocator.h); because there is one stream, a block freed after a launch
// may be handed to the next launch at once: stream order makes the reuse safe.
#include <cuda_runtime.h>
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "allocator.h"
#include "cublas_loader.h"
#include "kernels.h"

namespace tessera {
namespace {

class CudaDevice : public DeviceApi {
 public:
  void* malloc(size_t bytes) override {
    void* p = nullptr;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free OOM error so the retry can succeed
      return nullptr;
    }
    return p;
  }
  void free(void* p) override { cudaFree(p); }
};

struct State {
  bool ready = false;
  cudaStream_t stream = nullptr;
  CudaDevice device;
  std::unique_ptr<CachingAllocator> allocator;
  CublasLtApi lt;
  void* ltHandle = nullptr;
  void* workspace = nullptr;
  size_t workspaceBytes = 32u << 20;
  void* staging = nullptr;  // pinned buffer for synchronous reads, grown on demand
  size_t stagingBytes = 0;
  // cuBLASLt's heuristic per GEMM shape (a query costs far more than the GEMMs of a small model).
  std::map<std::tuple<int64_t, int64_t, int64_t, int, int, int, int, int64_t, int64_t, int64_t>, CublasLtAlgo> algos;
  uint64_t launches = 0;
};
State g;

void check(Napi::Env env, cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  throw Napi::Error::New(env, std::string("cuda: ") + what + ": " + cudaGetErrorName(err) + " (" +
                                  cudaGetErrorString(err) + ")");
}

void requireReady(Napi::Env env) {
  if (!g.ready) throw Napi::Error::New(env, "cuda: the addon is not initialised (init() failed or was not called)");
}

template <typename T = float>
T* ptr(const Napi::CallbackInfo& info, size_t i) {
  if (info[i].IsNull() || info[i].IsUndefined()) return nullptr;
  double d = info[i].As<Napi::Number>().DoubleValue();
  return d == 0 ? nullptr : reinterpret_cast<T*>(static_cast<uintptr_t>(d));
}
int64_t i64(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<int64_t>(info[i].As<Napi::Number>().DoubleValue());
}
int i32(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int32Value(); }
float f32(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().FloatValue(); }
bool flag(const Napi::CallbackInfo& info, size_t i) { return info[i].ToBoolean().Value(); }
std::vector<int64_t> ints(const Napi::CallbackInfo& info, size_t i) {
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  for (uint32_t k = 0; k < a.Length(); k++) out[k] = static_cast<int64_t>(a.Get(k).As<Napi::Number>().DoubleValue());
  return out;
}

/** Stream-side result of a launcher: throws with the kernel's name. */
void launched(Napi::Env env, cudaError_t err, const char* name) {
  g.launches++;
  check(env, err, name);
}

// ---- probe / init ----------------------------------------------------------------------

Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("runtimeVersion", CUDART_VERSION);
  int driver = 0;
  cudaDriverGetVersion(&driver);
  o.Set("driverVersion", driver);
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  o.Set("deviceCount", err == cudaSuccess ? count : 0);
  o.Set("error", err == cudaSuccess ? env.Null() : Napi::String::New(env, cudaGetErrorName(err)));
  o.Set("errorString", err == cudaSuccess ? env.Null() : Napi::String::New(env, cudaGetErrorString(err)));
  Napi::Array devices = Napi::Array::New(env);
  for (int d = 0; err == cudaSuccess && d < count; d++) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, d) != cudaSuccess) continue;
    Napi::Object dev = Napi::Object::New(env);
    dev.Set("name", p.name);
    dev.Set("major", p.major);
    dev.Set("minor", p.minor);
    dev.Set("totalMemory", static_cast<double>(p.totalGlobalMem));
    dev.Set("multiProcessors", p.multiProcessorCount);
    devices.Set(d, dev);
  }
  o.Set("devices", devices);
  return o;
}

/** init(dirs: string[]): device 0, the stream, the allocator, cuBLASLt. Returns what loaded and what was tried. */
Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  std::vector<std::string> dirs;
  Napi::Array a = info[0].As<Napi::Array>();
  for (uint32_t k = 0; k < a.Length(); k++) dirs.push_back(a.Get(k).As<Napi::String>().Utf8Value());
  if (!g.ready) {
    check(env, cudaSetDevice(0), "cudaSetDevice(0)");
    check(env, cudaStreamCreateWithFlags(&g.stream, cudaStreamNonBlocking), "cudaStreamCreate");
    g.allocator = std::make_unique<CachingAllocator>(&g.device);
  }
  std::vector<LoadAttempt> attempts;
  bool loaded = g.lt.lib != nullptr || loadCublasLt(dirs, CUDART_VERSION / 1000, &g.lt, &attempts);
  Napi::Array tried = Napi::Array::New(env);
  for (size_t k = 0; k < attempts.size(); k++) {
    Napi::Object t = Napi::Object::New(env);
    t.Set("dir", attempts[k].dir);
    t.Set("file", attempts[k].file);
    t.Set("error", attempts[k].error);
    tried.Set(static_cast<uint32_t>(k), t);
  }
  result.Set("attempts", tried);
  result.Set("cublasLoaded", loaded);
  if (loaded && !g.ltHandle) {
    if (g.lt.create(&g.ltHandle) != 0) throw Napi::Error::New(env, "cuda: cublasLtCreate failed");
    void* ws = g.allocator->allocate(g.workspaceBytes);
    if (!ws) throw Napi::Error::New(env, "cuda: " + g.allocator->lastError());
    g.workspace = ws;
  }
  if (loaded) {
    result.Set("cublasPath", g.lt.path);
    result.Set("cublasVersion", static_cast<double>(g.lt.version));
  }
  g.ready = loaded;
  return result;
}

// ---- memory ------------------------------------------------------------------------------

Napi::Value Malloc(const Napi::CallbackInfo& info) {
  requireReady(info.Env());
  void* p = g.allocator->allocate(static_cast<size_t>(i64(info, 0)));
  if (!p) throw Napi::Error::New(info.Env(), "cuda: " + g.allocator->lastError());
  return Napi::Number::New(info.Env(), static_cast<double>(reinterpret_cast<uintptr_t>(p)));
}

void Free(const Napi::CallbackInfo& info) {
  if (!g.allocator) return;
  g.allocator->release(ptr<void>(info, 0));
}

/** upload(ptr, typedArray): pageable-source async copy; the driver stages it, so the array may be reused at once. */
void Upload(const Napi::CallbackInfo& info) {
  requireReady(info.Env());
  Napi::TypedArray src = info[1].As<Napi::TypedArray>();
  uint8_t* data = static_cast<uint8_t*>(src.ArrayBuffer().Data()) + src.ByteOffset();
  check(info.Env(), cudaMemcpyAsync(ptr<void>(info, 0), data, src.ByteLength(), cudaMemcpyHostToDevice, g.stream),
        "upload");
}

/** download(ptr, typedArray): waits for the stream, through the pinned staging buffer. */
void Download(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireReady(env);
  Napi::TypedArray dst = info[1].As<Napi::TypedArray>();
  size_t bytes = dst.ByteLength();
  if (bytes > g.stagingBytes) {
    if (g.staging) cudaFreeHost(g.staging);
    g.staging = nullptr;
    check(env, cudaMallocHost(&g.staging, bytes), "cudaMallocHost (staging)");
    g.stagingBytes = bytes;
  }
  check(env, cudaMemcpyAsync(g.staging, ptr<void>(info, 0), bytes, cudaMemcpyDeviceToHost, g.stream), "download");
  check(env, cudaStreamSynchronize(g.stream), "download (synchronize)");
  std::memcpy(static_cast<uint8_t*>(dst.ArrayBuffer().Data()) + dst.ByteOffset(), g.staging, bytes);
}

/** The async read: copy into its own pinned buffer, wait for the event on a worker thread. */
class ReadWorker : public Napi::AsyncWorker {
 public:
  ReadWorker(Napi::Env env, void* pinned, size_t bytes, cudaEvent_t event)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), pinned_(pinned), bytes_(bytes),
        event_(event) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    cudaError_t err = cudaEventSynchronize(event_);
    if (err != cudaSuccess) SetError(std::string("cuda: read: ") + cudaGetErrorString(err));
  }
  void OnOK() override {
    Napi::ArrayBuffer out = Napi::ArrayBuffer::New(Env(), bytes_);
    std::memcpy(out.Data(), pinned_, bytes_);
    cleanup();
    deferred_.Resolve(out);
  }
  void OnError(const Napi::Error& e) override {
    cleanup();
    deferred_.Reject(e.Value());
  }

 private:
  void cleanup() {
    cudaEventDestroy(event_);
    cudaFreeHost(pinned_);
  }
  Napi::Promise::Deferred deferred_;
  void* pinned_;
  size_t bytes_;
  cudaEvent_t event_;
};

Napi::Value DownloadAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireReady(env);
  size_t bytes = static_cast<size_t>(i64(info, 1));
  void* pinned = nullptr;
  check(env, cudaMallocHost(&pinned, bytes ? bytes : 1), "cudaMallocHost (read)");
  cudaEvent_t event;
  check(env, cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreate");
  check(env, cudaMemcpyAsync(pinned, ptr<void>(info, 0), bytes, cudaMemcpyDeviceToHost, g.stream), "read");
  check(env, cudaEventRecord(event, g.stream), "cudaEventRecord");
  auto* worker = new ReadWorker(env, pinned, bytes, event);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

void Memset(const Napi::CallbackInfo& info) {
  requireReady(info.Env());
  check(info.Env(), cudaMemsetAsync(ptr<void>(info, 0), 0, static_cast<size_t>(i64(info, 1)), g.stream), "memset");
}

void Copy(const Napi::CallbackInfo& info) {
  requireReady(info.Env());
  check(info.Env(),
        cudaMemcpyAsync(ptr<void>(info, 0), ptr<void>(info, 1), static_cast<size_t>(i64(info, 2)),
                        cudaMemcpyDeviceToDevice, g.stream),
        "copy");
}

void Synchronize(const Napi::CallbackInfo& info) {
  requireReady(info.Env());
  check(info.Env(), cudaStreamSynchronize(g.stream), "synchronize");
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  if (!g.allocator) return o;
  const AllocatorStats& s = g.allocator->stats();
  o.Set("allocatedBytes", static_cast<double>(s.allocatedBytes));
  o.Set("requestedBytes", static_cast<double>(s.requestedBytes));
  o.Set("reservedBytes", static_cast<double>(s.reservedBytes));
  o.Set("peakAllocatedBytes", static_cast<double>(s.peakAllocatedBytes));
  o.Set("peakReservedBytes", static_cast<double>(s.peakReservedBytes));
  o.Set("deviceMallocs", static_cast<double>(s.deviceMallocs));
  o.Set("deviceFrees", static_cast<double>(s.deviceFrees));
  o.Set("allocations", static_cast<double>(s.allocations));
  o.Set("cacheHits", static_cast<double>(s.cacheHits));
  o.Set("oomRetries", static_cast<double>(s.oomRetries));
  o.Set("ooms", static_cast<double>(s.ooms));
  o.Set("activeBlocks", static_cast<double>(s.activeBlocks));
  o.Set("cachedBlocks", static_cast<double>(s.cachedBlocks));
  o.Set("segments", static_cast<double>(s.segments));
  o.Set("launches", static_cast<double>(g.launches));
  return o;
}

void EmptyCache(const Napi::CallbackInfo& info) {
  if (!g.allocator) return;
  if (g.stream) cudaStreamSynchronize(g.stream);
  g.allocator->emptyCache();
}

// ---- GEMM (cuBLASLt) -------------------------------------------------------------------

/**
 * gemm(a, b, c, M, N, K, transA, transB, batch, strideA, strideB, strideC, alpha, beta, bias, epilogue, tf32):
 * row-major C[M,N] (per batch) = alpha * op(A) op(B) + beta * C (+ bias[N], GELU). cuBLASLt is
 * column-major, so this computes C^T = op(B)^T op(A)^T: B is its first operand.
 */
void Gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireReady(env);
  const float* A = ptr(info, 0);
  const float* B = ptr(info, 1);
  float* C = ptr(info, 2);
  int64_t M = i64(info, 3), N = i64(info, 4), K = i64(info, 5);
  bool tA = flag(info, 6), tB = flag(info, 7);
  int batch = i32(info, 8);
  int64_t sA = i64(info, 9), sB = i64(info, 10), sC = i64(info, 11);
  float alpha = f32(info, 12), beta = f32(info, 13);
  const float* bias = ptr(info, 14);
  int epilogue = i32(info, 15);
  bool tf32 = flag(info, 16);
  if (M == 0 || N == 0) return;
  const CublasLtApi& lt = g.lt;
  Opaque desc = nullptr, la = nullptr, lb = nullptr, lc = nullptr;
  auto ok = [&](int status, const char* what) {
    if (status != 0) {
      if (desc) lt.descDestroy(desc);
      for (Opaque l : {la, lb, lc})
        if (l) lt.layoutDestroy(l);
      throw Napi::Error::New(env, std::string("cuda: cuBLASLt ") + what + " failed (status " + std::to_string(status) +
                                      ") for M=" + std::to_string(M) + " N=" + std::to_string(N) +
                                      " K=" + std::to_string(K) + " batch=" + std::to_string(batch));
    }
  };
  ok(lt.descCreate(&desc, tf32 ? kComputeF32FastTf32 : kComputeF32, kCudaR32F), "MatmulDescCreate");
  int opFirst = tB ? kCublasOpT : kCublasOpN, opSecond = tA ? kCublasOpT : kCublasOpN;
  ok(lt.descSetAttribute(desc, kDescTransA, &opFirst, sizeof(int)), "set TRANSA");
  ok(lt.descSetAttribute(desc, kDescTransB, &opSecond, sizeof(int)), "set TRANSB");
  uint32_t epi = bias ? static_cast<uint32_t>(epilogue) : kEpilogueDefault;
  ok(lt.descSetAttribute(desc, kDescEpilogue, &epi, sizeof(epi)), "set EPILOGUE");
  if (bias) ok(lt.descSetAttribute(desc, kDescBiasPointer, &bias, sizeof(bias)), "set BIAS_POINTER");
  // First operand: B as stored (column-major view of row-major B).
  uint64_t bRows = tB ? K : N, bCols = tB ? N : K;
  uint64_t aRows = tA ? M : K, aCols = tA ? K : M;
  ok(lt.layoutCreate(&lb, kCudaR32F, bRows, bCols, static_cast<int64_t>(bRows)), "layout B");
  ok(lt.layoutCreate(&la, kCudaR32F, aRows, aCols, static_cast<int64_t>(aRows)), "layout A");
  ok(lt.layoutCreate(&lc, kCudaR32F, N, M, N), "layout C");
  if (batch > 1) {
    for (auto [l, stride] : {std::pair<Opaque, int64_t>{lb, sB}, {la, sA}, {lc, sC}}) {
      ok(lt.layoutSetAttribute(l, kLayoutBatchCount, &batch, sizeof(batch)), "set BATCH_COUNT");
      ok(lt.layoutSetAttribute(l, kLayoutStridedBatchOffset, &stride, sizeof(stride)), "set STRIDED_BATCH_OFFSET");
    }
  }
  auto key = std::make_tuple(M, N, K, (int)tA | ((int)tB << 1), batch, (int)epi, (int)tf32, sA, sB, sC);
  auto found = g.algos.find(key);
  if (found == g.algos.end()) {
    Opaque pref = nullptr;
    ok(lt.prefCreate(&pref), "MatmulPreferenceCreate");
    uint64_t ws = g.workspaceBytes;
    lt.prefSetAttribute(pref, kPrefMaxWorkspaceBytes, &ws, sizeof(ws));
    CublasLtHeuristicResult result;
    int returned = 0;
    int status = lt.heuristic(g.ltHandle, desc, lb, la, lc, lc, pref, 1, &result, &returned);
    lt.prefDestroy(pref);
    ok(status == 0 && returned == 0 ? 15 /* NOT_SUPPORTED */ : status, "MatmulAlgoGetHeuristic (no algorithm)");
    found = g.algos.emplace(key, result.algo).first;
  }
  int status = lt.matmul(g.ltHandle, desc, &alpha, B, lb, A, la, &beta, C, lc, C, lc, &found->second, g.workspace,
                         g.workspaceBytes, g.stream);
  ok(status, "Matmul");
  lt.descDestroy(desc);
  for (Opaque l : {la, lb, lc}) lt.layoutDestroy(l);
  g.launches++;
}

// ---- kernels -----------------------------------------------------------------------------

void Binary(const Napi::CallbackInfo& info) {
  requireReady(info.Env());
  BroadcastDims d{};
  std::vector<int64_t> shape = ints(info, 5), as = ints(info, 6), bs = ints(info, 7);
  if (shape.size() > kMaxRank) throw Napi::Error::New(info.Env(), "cuda: binary: rank over 6");
  d.rank = static_cast<int>(shape.size());
  for (int k = 0; k < d.rank; k++) {
    d.shape[k] = shape[k];
    d.aStrides[k] = as[k];
    d.bStrides[k] = bs[k];
  }
  launched(info.Env(), launchBinary(i32(info, 0), ptr(info, 1), ptr(info, 2), ptr(info, 3), i64(info, 4), d, g.stream),
           "binary");
}

void Unary(const Napi::CallbackInfo& info) {
  requireReady(info.Env());
  launched(info.Env(), launchUnary(i32(info, 0), ptr(info, 1), ptr(info, 2), i64(info, 3), f32(info, 4), g.stream),
           "unary");
}

void Fill(const Napi::CallbackInfo& info) {
  requireReady(info.Env());
  launched(info.Env(), launchFill(ptr(info, 0), i64(info, 1), f32(info, 2), g.stream), "fill");
}

void Reduce(const Napi::CallbackInfo& info) {
  requireReady(info.Env());
  launched(info.Env(),
           launchReduce(i32(info, 0), ptr(info, 1), ptr(info, 2), i64(info, 3), i64(info, 4), i64(info, 5), g.stream),
           "reduce");
}

void Softmax(const Napi::CallbackInfo& info) {
  requireReady(info.Env());
  launched(info.Env(), launchSoftmax(ptr(info, 0), ptr(info, 1), i64(info, 2), i32(info, 3), g.stream), "softmax");
}

void Gelu(const Napi::CallbackInfo& info) {
  requireReady(info.Env());
  launched(info.Env(), launchGelu(ptr(info, 0), ptr(info, 1), i64(info, 2), flag(info, 3), g.stream), "gelu");
}

void GeluGrad(const Napi::CallbackInfo& info) {
  requireReady(info.Env());
  launched(info.Env(),
           launchGeluGrad(ptr(info, 0), ptr(info, 1), ptr(info, 2), i64(info, 3), flag(info, 4), g.stream), "geluGrad");
}

void LayerNorm(const Napi::CallbackInfo& info) {
  requireReady(info.Env());
  launched(info.Env(),
           launchLayerNorm(ptr(info, 0), ptr(info, 1), ptr(info, 2), ptr(info, 3), i64(info, 4), i32(info, 5),
                           f32(info, 6), g.stream),
           "layerNorm");
}

void LayerNormGrad(const Napi::CallbackInfo& info) {
  requireReady(info.Env());
  launched(info.Env(),
           launchLayerNormGrad(ptr(info, 0), ptr(info, 1), ptr(info, 2), ptr(info, 3), ptr(info, 4), ptr(info, 5),
                               i64(info, 6), i32(info, 7), f32(info, 8), g.stream),
           "layerNormGrad");
}

void RmsNorm(const Napi::CallbackInfo& info) {
  requireReady(info.Env());
  launched(info.Env(),
           launchRmsNorm(ptr(info, 0), ptr(info, 1), ptr(info, 2), i64(info, 3), i32(info, 4), f32(info, 5), g.stream),
           "rmsNorm");
}

void RmsNormGrad(const Napi::CallbackInfo& info) {
  requireReady(info.Env());
  launched(info.Env(),
           launchRmsNormGrad(ptr(info, 0), ptr(info, 1), ptr(info, 2), ptr(info, 3), ptr(info, 4), i64(info, 5),
                             i32(info, 6), f32(info, 7), g.stream),
           "rmsNormGrad");
}

void CrossEntropy(const Napi::CallbackInfo& info) {
  requireReady(info.Env());
  launched(info.Env(),
           launchCrossEntropy(ptr(info, 0), ptr<int32_t>(info, 1), ptr(info, 2), ptr(info, 3), i64(info, 4),
                              i32(info, 5), i32(info, 6), f32(info, 7), ptr(info, 8), g.stream),
           "crossEntropy");
}

/** adamw(ptrs: number[] (7 per tensor: p g m v p1 m1 v1), ns: number[], lr, beta1, beta2, eps, wd, step). */
void AdamW(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireReady(env);
  std::vector<int64_t> ptrs = ints(info, 0), ns = ints(info, 1);
  if (ptrs.size() != 7 * ns.size()) throw Napi::Error::New(env, "cuda: adamw: need 7 pointers per tensor");
  std::vector<AdamWTensor> table(ns.size());
  int64_t maxN = 0;
  for (size_t t = 0; t < ns.size(); t++) {
    auto p = [&](int k) { return reinterpret_cast<float*>(static_cast<uintptr_t>(ptrs[7 * t + k])); };
    table[t] = {p(0), p(1), p(2), p(3), p(4), p(5), p(6), ns[t]};
    maxN = std::max(maxN, ns[t]);
  }
  float lr = f32(info, 2), b1 = f32(info, 3), b2 = f32(info, 4);
  double step = info[7].As<Napi::Number>().DoubleValue();
  AdamWHyper h{lr, b1, b2, f32(info, 5), f32(info, 6), static_cast<float>(1 - std::pow((double)b1, step)),
               static_cast<float>(1 - std::pow((double)b2, step))};
  size_t bytes = table.size() * sizeof(AdamWTensor);
  void* dtable = g.allocator->allocate(bytes);
  if (!dtable) throw Napi::Error::New(env, "cuda: " + g.allocator->lastError());
  check(env, cudaMemcpyAsync(dtable, table.data(), bytes, cudaMemcpyHostToDevice, g.stream), "adamw table");
  cudaError_t err = launchAdamW(static_cast<AdamWTensor*>(dtable), static_cast<int>(table.size()), maxN, h, g.stream);
  g.allocator->release(dtable);  // stream-ordered reuse: see the note at the top
  launched(env, err, "adamw");
}

/** attentionSoftmax(scores, B, H, Tq, Tk, biasDims[4], scale, causal, mask, bias). */
void AttentionSoftmax(const Napi::CallbackInfo& info) {
  requireReady(info.Env());
  AttentionDims d{i32(info, 1), i32(info, 2), i32(info, 3), i32(info, 4), {1, 1, 1, 1}};
  std::vector<int64_t> bd = ints(info, 5);
  for (int k = 0; k < 4 && k < (int)bd.size(); k++) d.biasDims[k] = static_cast<int>(bd[k]);
  launched(info.Env(),
           launchAttentionSoftmax(ptr(info, 0), d, f32(info, 6), flag(info, 7), ptr(info, 8), ptr(info, 9), g.stream),
           "attentionSoftmax");
}

void SoftmaxBackward(const Napi::CallbackInfo& info) {
  requireReady(info.Env());
  launched(info.Env(), launchSoftmaxBackward(ptr(info, 0), ptr(info, 1), i64(info, 2), i32(info, 3), g.stream),
           "softmaxBackward");
}

/** gather(x, rows, indices, count, out, rowSize) -> first out-of-range position, or -1 (synchronises). */
Napi::Value Gather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireReady(env);
  int32_t* bad = static_cast<int32_t*>(g.allocator->allocate(4));
  if (!bad) throw Napi::Error::New(env, "cuda: " + g.allocator->lastError());
  check(env, cudaMemsetAsync(bad, 0xff, 4, g.stream), "gather");
  launched(env,
           launchGather(ptr(info, 0), i64(info, 1), ptr<int32_t>(info, 2), i64(info, 3), ptr(info, 4), i64(info, 5),
                        bad, g.stream),
           "gather");
  int32_t host = -1;
  check(env, cudaMemcpyAsync(&host, bad, 4, cudaMemcpyDeviceToHost, g.stream), "gather");
  check(env, cudaStreamSynchronize(g.stream), "gather");
  g.allocator->release(bad);
  return Napi::Number::New(env, host);
}

void ScatterAdd(const Napi::CallbackInfo& info) {
  requireReady(info.Env());
  launched(info.Env(),
           launchScatterAdd(ptr(info, 0), ptr<int32_t>(info, 1), i64(info, 2), ptr(info, 3), i64(info, 4),
                            i64(info, 5), g.stream),
           "scatterAdd");
}

/** stridedCopy(x, inOffset, out, outOffset, dims[], inStrides[], outStrides[]) (element units). */
void StridedCopy(const Napi::CallbackInfo& info) {
  requireReady(info.Env());
  std::vector<int64_t> dims = ints(info, 4), is = ints(info, 5), os = ints(info, 6);
  if (dims.size() > kMaxRank) throw Napi::Error::New(info.Env(), "cuda: stridedCopy: rank over 6");
  StridedDims d{};
  d.rank = static_cast<int>(dims.size());
  int64_t n = 1;
  for (int k = 0; k < d.rank; k++) {
    d.dims[k] = dims[k];
    d.inStrides[k] = is[k];
    d.outStrides[k] = os[k];
    n *= dims[k];
  }
  launched(info.Env(), launchStridedCopy(ptr(info, 0), i64(info, 1), ptr(info, 2), i64(info, 3), d, n, g.stream),
           "stridedCopy");
}

}  // namespace

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  exports.Set("probe", Napi::Function::New(env, Probe));
  exports.Set("init", Napi::Function::New(env, Init));
  exports.Set("malloc", Napi::Function::New(env, Malloc));
  exports.Set("free", Napi::Function::New(env, Free));
  exports.Set("upload", Napi::Function::New(env, Upload));
  exports.Set("download", Napi::Function::New(env, Download));
  exports.Set("downloadAsync", Napi::Function::New(env, DownloadAsync));
  exports.Set("memset", Napi::Function::New(env, Memset));
  exports.Set("copy", Napi::Function::New(env, Copy));
  exports.Set("synchronize", Napi::Function::New(env, Synchronize));
  exports.Set("stats", Napi::Function::New(env, Stats));
  exports.Set("emptyCache", Napi::Function::New(env, EmptyCache));
  exports.Set("gemm", Napi::Function::New(env, Gemm));
  exports.Set("binary", Napi::Function::New(env, Binary));
  exports.Set("unary", Napi::Function::New(env, Unary));
  exports.Set("fill", Napi::Function::New(env, Fill));
  exports.Set("reduce", Napi::Function::New(env, Reduce));
  exports.Set("softmax", Napi::Function::New(env, Softmax));
  exports.Set("gelu", Napi::Function::New(env, Gelu));
  exports.Set("geluGrad", Napi::Function::New(env, GeluGrad));
  exports.Set("layerNorm", Napi::Function::New(env, LayerNorm));
  exports.Set("layerNormGrad", Napi::Function::New(env, LayerNormGrad));
  exports.Set("rmsNorm", Napi::Function::New(env, RmsNorm));
  exports.Set("rmsNormGrad", Napi::Function::New(env, RmsNormGrad));
  exports.Set("crossEntropy", Napi::Function::New(env, CrossEntropy));
  exports.Set("adamw", Napi::Function::New(env, AdamW));
  exports.Set("attentionSoftmax", Napi::Function::New(env, AttentionSoftmax));
  exports.Set("softmaxBackward", Napi::Function::New(env, SoftmaxBackward));
  exports.Set("gather", Napi::Function::New(env, Gather));
  exports.Set("scatterAdd", Napi::Function::New(env, ScatterAdd));
  exports.Set("stridedCopy", Napi::Function::New(env, StridedCopy));
  return exports;
}

}  // namespace tessera

using tessera::InitModule;
NODE_API_MODULE(tessera_cuda, InitModule)
