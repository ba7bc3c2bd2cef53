#include "allocator.h"

#include <algorithm>
#include <sstream>
#include <vector>

namespace tessera {

struct CachingAllocator::Block {
  char* ptr;
  size_t size;
  size_t requested = 0;
  bool allocated = false;
  bool small;
  // Neighbours inside the same device segment: splitting makes them, coalescing undoes them.
  Block* prev = nullptr;
  Block* next = nullptr;
  Block(char* p, size_t s, bool isSmall) : ptr(p), size(s), small(isSmall) {}
};

bool CachingAllocator::BySizeThenAddress::operator()(const Block* a, const Block* b) const {
  if (a->size != b->size) return a->size < b->size;
  return reinterpret_cast<uintptr_t>(a->ptr) < reinterpret_cast<uintptr_t>(b->ptr);
}

CachingAllocator::CachingAllocator(DeviceApi* device) : device_(device) {}

CachingAllocator::~CachingAllocator() {
  // Blocks still handed out belong to tensors that outlive the backend (process exit):
  // their segments are left to the driver, only the bookkeeping goes.
  emptyCache();
  std::set<Block*> live;
  for (auto& kv : active_) {
    Block* b = kv.second;
    while (b->prev) b = b->prev;
    live.insert(b);
  }
  for (Block* head : live) {
    for (Block* b = head; b;) {
      Block* next = b->next;
      delete b;
      b = next;
    }
  }
}

size_t CachingAllocator::roundSize(size_t bytes) {
  // 512 B granularity keeps every block aligned for vector loads and makes equal-ish
  // requests hit the same cached blocks.
  if (bytes < kMinBlockSize) return kMinBlockSize;
  return kMinBlockSize * ((bytes + kMinBlockSize - 1) / kMinBlockSize);
}

size_t CachingAllocator::segmentSize(size_t rounded) {
  if (rounded <= kSmallSize) return kSmallBuffer;  // many small tensors share one 2 MiB segment
  if (rounded < kMinLargeAlloc) return kLargeBuffer;  // medium ones split a 20 MiB segment
  return kRoundLarge * ((rounded + kRoundLarge - 1) / kRoundLarge);
}

CachingAllocator::Block* CachingAllocator::findFree(Pool& pool, size_t rounded) {
  Block key(nullptr, rounded, false);
  auto it = pool.lower_bound(&key);  // best fit: the smallest free block that is big enough
  if (it == pool.end()) return nullptr;
  Block* b = *it;
  pool.erase(it);
  return b;
}

CachingAllocator::Block* CachingAllocator::mallocSegment(Pool& pool, size_t bytes) {
  void* p = device_->malloc(bytes);
  if (!p) {
    // PyTorch's order: free one cached segment big enough, then every cached segment.
    if (releaseOneCachedSegment(bytes)) {
      stats_.oomRetries++;
      p = device_->malloc(bytes);
    }
    if (!p && (stats_.cachedBlocks > 0)) {
      stats_.oomRetries++;
      releaseCachedSegments();
      p = device_->malloc(bytes);
    }
    if (!p) return nullptr;
  }
  stats_.deviceMallocs++;
  stats_.segments++;
  stats_.reservedBytes += bytes;
  stats_.peakReservedBytes = std::max(stats_.peakReservedBytes, stats_.reservedBytes);
  return new Block(static_cast<char*>(p), bytes, &pool == &small_);
}

bool CachingAllocator::releaseOneCachedSegment(size_t atLeast) {
  Block* best = nullptr;
  for (Pool* pool : {&large_, &small_}) {
    for (Block* b : *pool) {
      if (b->prev || b->next || b->size < atLeast) continue;  // only wholly free segments go back
      if (!best || b->size < best->size) best = b;
      break;  // the pool is ordered by size: the first match is its smallest
    }
  }
  if (!best) return false;
  (best->small ? small_ : large_).erase(best);
  freeSegment(best);
  return true;
}

void CachingAllocator::releaseCachedSegments() {
  for (Pool* pool : {&small_, &large_}) {
    std::vector<Block*> whole;
    for (Block* b : *pool)
      if (!b->prev && !b->next) whole.push_back(b);
    for (Block* b : whole) {
      pool->erase(b);
      freeSegment(b);
    }
  }
}

void CachingAllocator::freeSegment(Block* block) {
  device_->free(block->ptr);
  stats_.deviceFrees++;
  stats_.segments--;
  stats_.cachedBlocks--;
  stats_.reservedBytes -= block->size;
  delete block;
}

CachingAllocator::Block* CachingAllocator::maybeSplit(Block* block, size_t rounded) {
  size_t remaining = block->size - rounded;
  // A small block splits whenever a 512 B block is left over; a large one only when more
  // than 1 MiB is, so the large pool is not littered with slivers.
  bool split = block->small ? remaining >= kMinBlockSize : remaining > kSmallSize;
  if (!split) return nullptr;
  Block* rest = new Block(block->ptr + rounded, remaining, block->small);
  rest->prev = block;
  rest->next = block->next;
  if (block->next) block->next->prev = rest;
  block->next = rest;
  block->size = rounded;
  stats_.splits++;
  return rest;
}

void* CachingAllocator::allocate(size_t bytes) {
  size_t rounded = roundSize(bytes);
  Pool& pool = poolFor(rounded);
  Block* block = findFree(pool, rounded);
  if (block) {
    stats_.cacheHits++;
    stats_.cachedBlocks--;
  } else {
    size_t segment = segmentSize(rounded);
    block = mallocSegment(pool, segment);
    if (!block) {
      stats_.ooms++;
      std::ostringstream msg;
      msg << "out of device memory: asked for " << bytes << " B (a " << segment << " B segment); "
          << stats_.allocatedBytes << " B are in live tensors and " << stats_.reservedBytes
          << " B are held after freeing every cached block. Dispose tensors you no longer need "
          << "(tf.tidy, dispose()), or use a smaller batch or sequence length.";
      lastError_ = msg.str();
      return nullptr;
    }
  }
  if (Block* rest = maybeSplit(block, rounded)) {
    pool.insert(rest);
    stats_.cachedBlocks++;
  }
  block->allocated = true;
  block->requested = bytes;
  active_[block->ptr] = block;
  stats_.allocations++;
  stats_.activeBlocks++;
  stats_.allocatedBytes += block->size;
  stats_.requestedBytes += bytes;
  stats_.peakAllocatedBytes = std::max(stats_.peakAllocatedBytes, stats_.allocatedBytes);
  return block->ptr;
}

void CachingAllocator::coalesce(Block* block) {
  Pool& pool = block->small ? small_ : large_;
  for (Block* neighbour : {block->prev, block->next}) {
    if (!neighbour || neighbour->allocated) continue;
    pool.erase(neighbour);
    stats_.cachedBlocks--;
    stats_.merges++;
    if (neighbour == block->prev) {
      block->ptr = neighbour->ptr;
      block->prev = neighbour->prev;
      if (block->prev) block->prev->next = block;
    } else {
      block->next = neighbour->next;
      if (block->next) block->next->prev = block;
    }
    block->size += neighbour->size;
    delete neighbour;
  }
}

bool CachingAllocator::release(void* ptr) {
  auto it = active_.find(ptr);
  if (it == active_.end()) return false;
  Block* block = it->second;
  active_.erase(it);
  block->allocated = false;
  stats_.activeBlocks--;
  stats_.allocatedBytes -= block->size;
  stats_.requestedBytes -= block->requested;
  block->requested = 0;
  coalesce(block);
  (block->small ? small_ : large_).insert(block);
  stats_.cachedBlocks++;
  return true;
}

void CachingAllocator::emptyCache() { releaseCachedSegments(); }

size_t CachingAllocator::blockSize(void* ptr) const {
  auto it = active_.find(ptr);
  return it == active_.end() ? 0 : it->second->size;
}

void CachingAllocator::resetPeaks() {
  stats_.peakAllocatedBytes = stats_.allocatedBytes;
  stats_.peakReservedBytes = stats_.reservedBytes;
}

}  // namespace tessera
