// A caching device-memory allocator in the spirit of PyTorch's CUDACachingAllocator
// (c10/cuda/CUDACachingAllocator.cpp), written against an abstract DeviceApi so that the
// bookkeeping (rounding, pools, splitting, coalescing, free-and-retry, stats) is unit-tested
// on a CPU with a fake device (native/hosttest.cc), and the addon plugs in cudaMalloc.
//
// Differences from PyTorch, on purpose: one compute stream (so no per-stream pools and no
// cross-stream events), no expandable segments, no oversize/max_split_size knob, no
// graph pools. Not thread-safe: every call comes from the JS thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <unordered_map>

namespace tessera {

/** What the allocator needs from a device. cudaMalloc/cudaFree in the addon; a fake in tests. */
class DeviceApi {
 public:
  virtual ~DeviceApi() = default;
  /** Returns nullptr when the device is out of memory (never throws). */
  virtual void* malloc(size_t bytes) = 0;
  virtual void free(void* ptr) = 0;
};

struct AllocatorStats {
  uint64_t allocatedBytes = 0;      // in blocks handed out (rounded sizes)
  uint64_t requestedBytes = 0;      // what callers asked for
  uint64_t reservedBytes = 0;       // held from the device (allocated + cached)
  uint64_t peakAllocatedBytes = 0;
  uint64_t peakReservedBytes = 0;
  uint64_t deviceMallocs = 0;       // cudaMalloc calls that succeeded
  uint64_t deviceFrees = 0;         // cudaFree calls
  uint64_t allocations = 0;         // allocate() calls that succeeded
  uint64_t cacheHits = 0;           // allocations served from a cached block
  uint64_t oomRetries = 0;          // device OOMs that freed cached blocks and tried again
  uint64_t ooms = 0;                // allocations that failed even after the retries
  uint64_t splits = 0;
  uint64_t merges = 0;
  uint64_t activeBlocks = 0;
  uint64_t cachedBlocks = 0;        // free blocks in the pools
  uint64_t segments = 0;            // device allocations currently held
};

class CachingAllocator {
 public:
  // Sizes, as PyTorch uses them: why each is what it is is said where it is used.
  static constexpr size_t kMinBlockSize = 512;
  static constexpr size_t kSmallSize = 1 << 20;          // requests up to 1 MiB use the small pool
  static constexpr size_t kSmallBuffer = 2 << 20;        // small requests are packed into 2 MiB segments
  static constexpr size_t kLargeBuffer = 20 << 20;       // 1-10 MiB requests get a 20 MiB segment to split
  static constexpr size_t kMinLargeAlloc = 10 << 20;
  static constexpr size_t kRoundLarge = 2 << 20;

  explicit CachingAllocator(DeviceApi* device);
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  /** A block of at least `bytes` (0 gives a 512 B block), or nullptr when the device is out of memory. */
  void* allocate(size_t bytes);
  /** Returns a block to its pool (merging with free neighbours); unknown pointers return false. */
  bool release(void* ptr);
  /** Frees every cached segment that is wholly free (torch.cuda.empty_cache()). */
  void emptyCache();
  /** Size of the block behind `ptr` (0 when unknown). */
  size_t blockSize(void* ptr) const;

  const AllocatorStats& stats() const { return stats_; }
  void resetPeaks();
  /** The message for the last failed allocate(): sizes, what is held, what to do. */
  const std::string& lastError() const { return lastError_; }

  static size_t roundSize(size_t bytes);
  /** Bytes asked of the device for a request of `rounded` bytes with no cached block to serve it. */
  static size_t segmentSize(size_t rounded);

 private:
  struct Block;
  struct BySizeThenAddress {
    bool operator()(const Block* a, const Block* b) const;
  };
  using Pool = std::set<Block*, BySizeThenAddress>;

  Pool& poolFor(size_t rounded) { return rounded <= kSmallSize ? small_ : large_; }
  Block* findFree(Pool& pool, size_t rounded);
  Block* mallocSegment(Pool& pool, size_t bytes);
  bool releaseOneCachedSegment(size_t atLeast);
  void releaseCachedSegments();
  void freeSegment(Block* block);
  Block* maybeSplit(Block* block, size_t rounded);
  void coalesce(Block* block);

  DeviceApi* device_;
  Pool small_;
  Pool large_;
  std::unordered_map<void*, Block*> active_;
  AllocatorStats stats_;
  std::string lastError_;
};

}  // namespace tessera
