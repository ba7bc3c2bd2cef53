// N-API binding to MPI: the collectives data-parallel training needs, on float32 / float64 /
// int32 / byte buffers owned by JavaScript.
//
// Every collective runs on a libuv worker thread (Napi::AsyncWorker) and resolves a
// promise, so the JS thread stays free while it waits: signals (mpirun's SIGTERM when a
// peer dies) are handled, and a bucket can be packed while the previous one is reduced.
// The JS side keeps at most one collective in flight, in the same order on every rank, so
// MPI_THREAD_SERIALIZED is enough; MULTIPLE is requested so abort() may run meanwhile.
#include <mpi.h>
#include <napi.h>

#include <cstring>
#include <functional>
#include <vector>
#include <string>

namespace {

bool g_initialized_here = false;

std::string mpi_error(int code, const char* what) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  return std::string(what) + " failed: " + std::string(text, len);
}

bool is_initialized() {
  int flag = 0;
  MPI_Initialized(&flag);
  int done = 0;
  MPI_Finalized(&done);
  return flag && !done;
}

void require_initialized(const Napi::Env& env) {
  if (!is_initialized()) throw Napi::Error::New(env, "MPI is not initialized: call init() first.");
}

struct Buffer {
  void* data = nullptr;
  int count = 0;
  MPI_Datatype type = MPI_BYTE;
  size_t element = 1;
};

Buffer buffer_of(const Napi::Env& env, const Napi::Value& value, const char* name) {
  if (!value.IsTypedArray()) throw Napi::TypeError::New(env, std::string(name) + " must be a typed array.");
  auto array = value.As<Napi::TypedArray>();
  Buffer b;
  switch (array.TypedArrayType()) {
    case napi_float32_array: b.type = MPI_FLOAT; b.element = 4; break;
    case napi_float64_array: b.type = MPI_DOUBLE; b.element = 8; break;
    case napi_int32_array: b.type = MPI_INT; b.element = 4; break;
    case napi_uint8_array: b.type = MPI_BYTE; b.element = 1; break;
    default:
      throw Napi::TypeError::New(env, std::string(name) + " must be a Float32Array, Float64Array, Int32Array or Uint8Array.");
  }
  if (array.ElementLength() > static_cast<size_t>(INT32_MAX))
    throw Napi::RangeError::New(env, std::string(name) + " has more than 2^31-1 elements: split it into buckets.");
  b.count = static_cast<int>(array.ElementLength());
  b.data = static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
  return b;
}

MPI_Op op_of(const Napi::Env& env, const std::string& name) {
  if (name == "sum" || name == "avg") return MPI_SUM;
  if (name == "max") return MPI_MAX;
  if (name == "min") return MPI_MIN;
  throw Napi::TypeError::New(env, "reduction must be \"sum\", \"avg\", \"max\" or \"min\"; got \"" + name + "\".");
}

// One collective on a worker thread; keeps its JS buffers alive until it resolves.
class Collective : public Napi::AsyncWorker {
 public:
  using Body = std::function<int()>;
  Collective(Napi::Env env, const char* what, Body body, std::initializer_list<Napi::Value> keep)
      : Napi::AsyncWorker(env), what_(what), body_(std::move(body)), deferred_(Napi::Promise::Deferred::New(env)) {
    for (const auto& v : keep) keep_.push_back(Napi::Persistent(v.As<Napi::Object>()));
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    double start = MPI_Wtime();
    int code = body_();
    seconds_ = MPI_Wtime() - start;
    if (code != MPI_SUCCESS) SetError(mpi_error(code, what_));
  }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), seconds_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  const char* what_;
  Body body_;
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> keep_;
  double seconds_ = 0;
};

Napi::Value Queue(Napi::Env env, Collective* work) {
  auto promise = work->Promise();
  work->Queue();
  return promise;
}

Napi::Value Init(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int provided = MPI_THREAD_SINGLE;
  if (!is_initialized()) {
    int done = 0;
    MPI_Finalized(&done);
    if (done) throw Napi::Error::New(env, "MPI was already finalized in this process; it cannot be initialized again.");
    int code = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
    if (code != MPI_SUCCESS) throw Napi::Error::New(env, mpi_error(code, "MPI_Init_thread"));
    g_initialized_here = true;
  } else {
    MPI_Query_thread(&provided);
  }
  // Errors come back as codes (and so as JS exceptions naming the call) instead of aborting.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(version, &len);
  std::string library(version, strnlen(version, len));
  auto nl = library.find('\n');
  if (nl != std::string::npos) library.resize(nl);
  char host[MPI_MAX_PROCESSOR_NAME];
  int hostLen = 0;
  MPI_Get_processor_name(host, &hostLen);
  auto out = Napi::Object::New(env);
  out.Set("rank", rank);
  out.Set("size", size);
  out.Set("threadLevel", provided == MPI_THREAD_MULTIPLE     ? "multiple"
                         : provided == MPI_THREAD_SERIALIZED ? "serialized"
                         : provided == MPI_THREAD_FUNNELED   ? "funneled"
                                                             : "single");
  out.Set("library", library);
  out.Set("host", std::string(host, hostLen));
  return out;
}

Napi::Value Finalize(const Napi::CallbackInfo& info) {
  if (is_initialized() && g_initialized_here) MPI_Finalize();
  return info.Env().Undefined();
}

Napi::Value Abort(const Napi::CallbackInfo& info) {
  int code = info.Length() > 0 ? info[0].As<Napi::Number>().Int32Value() : 1;
  if (is_initialized()) MPI_Abort(MPI_COMM_WORLD, code);
  return info.Env().Undefined();
}

Napi::Value Barrier(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  require_initialized(env);
  return Queue(env, new Collective(env, "MPI_Barrier", [] { return MPI_Barrier(MPI_COMM_WORLD); }, {}));
}

// allReduce(buffer, op): in place. "avg" divides float buffers by the world size after the sum.
Napi::Value AllReduce(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  require_initialized(env);
  Buffer b = buffer_of(env, info[0], "allReduce buffer");
  std::string name = info[1].As<Napi::String>().Utf8Value();
  MPI_Op op = op_of(env, name);
  if (b.type == MPI_BYTE) throw Napi::TypeError::New(env, "allReduce needs a numeric typed array, not bytes.");
  bool avg = name == "avg";
  if (avg && b.type == MPI_INT) throw Napi::TypeError::New(env, "\"avg\" needs a float buffer.");
  return Queue(env, new Collective(
                        env, "MPI_Allreduce",
                        [b, op, avg] {
                          int code = MPI_Allreduce(MPI_IN_PLACE, b.data, b.count, b.type, op, MPI_COMM_WORLD);
                          if (code != MPI_SUCCESS || !avg) return code;
                          int size = 1;
                          MPI_Comm_size(MPI_COMM_WORLD, &size);
                          if (b.type == MPI_FLOAT) {
                            float* p = static_cast<float*>(b.data);
                            const float inv = 1.0f / static_cast<float>(size);
                            for (int i = 0; i < b.count; i++) p[i] *= inv;
                          } else {
                            double* p = static_cast<double*>(b.data);
                            const double inv = 1.0 / size;
                            for (int i = 0; i < b.count; i++) p[i] *= inv;
                          }
                          return code;
                        },
                        {info[0]}));
}

// broadcast(buffer, root): the root's bytes land in every rank's buffer.
Napi::Value Broadcast(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  require_initialized(env);
  Buffer b = buffer_of(env, info[0], "broadcast buffer");
  int root = info[1].As<Napi::Number>().Int32Value();
  return Queue(env, new Collective(
                        env, "MPI_Bcast", [b, root] { return MPI_Bcast(b.data, b.count, b.type, root, MPI_COMM_WORLD); },
                        {info[0]}));
}

// allGather(send, recv): recv holds size × send.length elements, rank r's at offset r·send.length.
Napi::Value AllGather(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  require_initialized(env);
  Buffer s = buffer_of(env, info[0], "allGather send");
  Buffer r = buffer_of(env, info[1], "allGather recv");
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (s.type != r.type) throw Napi::TypeError::New(env, "allGather: send and recv must have the same element type.");
  if (static_cast<long long>(r.count) != static_cast<long long>(s.count) * size)
    throw Napi::RangeError::New(env, "allGather: recv must hold worldSize × send.length = " +
                                         std::to_string(static_cast<long long>(s.count) * size) + " elements; it holds " +
                                         std::to_string(r.count) + ".");
  return Queue(env, new Collective(
                        env, "MPI_Allgather",
                        [s, r] { return MPI_Allgather(s.data, s.count, s.type, r.data, s.count, r.type, MPI_COMM_WORLD); },
                        {info[0], info[1]}));
}

// reduceScatter(send, recv, op): send holds size × recv.length; rank r receives the reduced block r.
Napi::Value ReduceScatter(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  require_initialized(env);
  Buffer s = buffer_of(env, info[0], "reduceScatter send");
  Buffer r = buffer_of(env, info[1], "reduceScatter recv");
  std::string name = info[2].As<Napi::String>().Utf8Value();
  MPI_Op op = op_of(env, name);
  bool avg = name == "avg";
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (s.type != r.type || s.type == MPI_BYTE)
    throw Napi::TypeError::New(env, "reduceScatter: send and recv must be numeric arrays of the same element type.");
  if (static_cast<long long>(s.count) != static_cast<long long>(r.count) * size)
    throw Napi::RangeError::New(env, "reduceScatter: send must hold worldSize × recv.length = " +
                                         std::to_string(static_cast<long long>(r.count) * size) + " elements; it holds " +
                                         std::to_string(s.count) + ".");
  if (avg && s.type == MPI_INT) throw Napi::TypeError::New(env, "\"avg\" needs a float buffer.");
  return Queue(env, new Collective(
                        env, "MPI_Reduce_scatter_block",
                        [s, r, op, avg, size] {
                          int code = MPI_Reduce_scatter_block(s.data, r.data, r.count, r.type, op, MPI_COMM_WORLD);
                          if (code != MPI_SUCCESS || !avg) return code;
                          if (r.type == MPI_FLOAT) {
                            float* p = static_cast<float*>(r.data);
                            for (int i = 0; i < r.count; i++) p[i] /= static_cast<float>(size);
                          } else {
                            double* p = static_cast<double*>(r.data);
                            for (int i = 0; i < r.count; i++) p[i] /= size;
                          }
                          return code;
                        },
                        {info[0], info[1]}));
}

Napi::Object Register(Napi::Env env, Napi::Object exports) {
  exports.Set("init", Napi::Function::New(env, Init));
  exports.Set("finalize", Napi::Function::New(env, Finalize));
  exports.Set("abort", Napi::Function::New(env, Abort));
  exports.Set("barrier", Napi::Function::New(env, Barrier));
  exports.Set("allReduce", Napi::Function::New(env, AllReduce));
  exports.Set("broadcast", Napi::Function::New(env, Broadcast));
  exports.Set("allGather", Napi::Function::New(env, AllGather));
  exports.Set("reduceScatter", Napi::Function::New(env, ReduceScatter));
  return exports;
}

}  // namespace

NODE_API_MODULE(tessera_mpi, Register)
