// Host test binary: drives the caching allocator against a fake device and the cuBLASLt
// loader against whatever files it is pointed at, printing one JSON line per step. Built
// with g++ alone (no CUDA), so test/allocator.test.ts and test/cublas.test.ts run on every
// machine, GPU or not.
//
//   hosttest alloc            commands on stdin, one per line:
//     device <capacity-bytes>   the fake device's memory (default: unlimited)
//     alloc <name> <bytes>      -> {"op":"alloc","name","ok","offset","size"}
//     free <name>               -> {"op":"free","name","ok"}
//     empty                     empty the cache
//     stats                     -> {"op":"stats",...every AllocatorStats field}
//   hosttest dlopen <major> <dir>...   -> {"ok","path","version","attempts":[{"dir","file","error"}]}
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "allocator.h"
#include "cublas_loader.h"

namespace {

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

/** Hands out addresses from a pretend address space; never touches them. Fails past `capacity`. */
class FakeDevice : public tessera::DeviceApi {
 public:
  size_t capacity = SIZE_MAX;
  size_t used = 0;
  uintptr_t next = 0x100000000ull;  // aligned, non-null, easy to read offsets from
  std::map<void*, size_t> live;
  uint64_t mallocCalls = 0;  // including the ones that failed

  void* malloc(size_t bytes) override {
    mallocCalls++;
    if (bytes > capacity - used) return nullptr;
    void* p = reinterpret_cast<void*>(next);
    next += bytes + (1 << 20);  // a gap, so segments never look contiguous
    used += bytes;
    live[p] = bytes;
    return p;
  }
  void free(void* p) override {
    used -= live[p];
    live.erase(p);
  }
};

int runAllocator() {
  FakeDevice device;
  tessera::CachingAllocator alloc(&device);
  std::map<std::string, void*> named;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string op, name;
    in >> op;
    if (op.empty() || op[0] == '#') continue;
    if (op == "device") {
      in >> device.capacity;
      std::cout << "{\"op\":\"device\",\"capacity\":" << device.capacity << "}\n";
    } else if (op == "alloc") {
      size_t bytes = 0;
      in >> name >> bytes;
      void* p = alloc.allocate(bytes);
      if (p) named[name] = p;
      std::cout << "{\"op\":\"alloc\",\"name\":" << quote(name) << ",\"ok\":" << (p ? "true" : "false");
      if (p) {
        std::cout << ",\"address\":" << reinterpret_cast<uintptr_t>(p) << ",\"size\":" << alloc.blockSize(p);
      } else {
        std::cout << ",\"error\":" << quote(alloc.lastError());
      }
      std::cout << "}\n";
    } else if (op == "free") {
      in >> name;
      bool ok = named.count(name) && alloc.release(named[name]);
      named.erase(name);
      std::cout << "{\"op\":\"free\",\"name\":" << quote(name) << ",\"ok\":" << (ok ? "true" : "false") << "}\n";
    } else if (op == "empty") {
      alloc.emptyCache();
      std::cout << "{\"op\":\"empty\"}\n";
    } else if (op == "stats") {
      const tessera::AllocatorStats& s = alloc.stats();
      std::cout << "{\"op\":\"stats\",\"allocatedBytes\":" << s.allocatedBytes << ",\"requestedBytes\":"
                << s.requestedBytes << ",\"reservedBytes\":" << s.reservedBytes << ",\"peakAllocatedBytes\":"
                << s.peakAllocatedBytes << ",\"peakReservedBytes\":" << s.peakReservedBytes
                << ",\"deviceMallocs\":" << s.deviceMallocs << ",\"deviceFrees\":" << s.deviceFrees
                << ",\"allocations\":" << s.allocations << ",\"cacheHits\":" << s.cacheHits
                << ",\"oomRetries\":" << s.oomRetries << ",\"ooms\":" << s.ooms << ",\"splits\":" << s.splits
                << ",\"merges\":" << s.merges << ",\"activeBlocks\":" << s.activeBlocks
                << ",\"cachedBlocks\":" << s.cachedBlocks << ",\"segments\":" << s.segments
                << ",\"deviceUsed\":" << device.used << ",\"deviceMallocCalls\":" << device.mallocCalls << "}\n";
    } else {
      std::cout << "{\"op\":" << quote(op) << ",\"error\":\"unknown command\"}\n";
      return 2;
    }
  }
  return 0;
}

int runDlopen(int argc, char** argv) {
  int major = std::stoi(argv[2]);
  std::vector<std::string> dirs(argv + 3, argv + argc);
  tessera::CublasLtApi api;
  std::vector<tessera::LoadAttempt> attempts;
  bool ok = tessera::loadCublasLt(dirs, major, &api, &attempts);
  std::cout << "{\"ok\":" << (ok ? "true" : "false") << ",\"path\":" << quote(api.path)
            << ",\"blasPath\":" << quote(api.blasPath) << ",\"version\":" << api.version << ",\"attempts\":[";
  for (size_t i = 0; i < attempts.size(); i++) {
    std::cout << (i ? "," : "") << "{\"dir\":" << quote(attempts[i].dir) << ",\"file\":" << quote(attempts[i].file)
              << ",\"error\":" << quote(attempts[i].error) << "}";
  }
  std::cout << "]}\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "alloc") return runAllocator();
  if (mode == "dlopen" && argc >= 3) return runDlopen(argc, argv);
  std::fprintf(stderr, "usage: hosttest alloc < commands | hosttest dlopen <major> <dir>...\n");
  return 2;
}
