// A small fixed-size thread pool for the kernels.
//
// Why our own and not OpenMP: the addon must build with a plain g++ call and no runtime
// beyond libstdc++, and the kernels need one property OpenMP's schedules do not promise:
// a given element is always computed by the same code path in the same order, so results
// are bit-identical run to run. Work is split statically ([t*n/T, (t+1)*n/T)), and every
// reduction goes through fixed-size blocks summed in block order (see kernels.cc), which
// makes the results independent of the thread count as well.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tessera {

class ThreadPool {
 public:
  explicit ThreadPool(int n) { Resize(n); }
  ~ThreadPool() { Stop(); }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int Size() const { return n_; }

  void Resize(int n) {
    n = std::max(1, std::min(n, 256));
    if (n == n_ && (n == 1 || !threads_.empty())) return;
    Stop();
    n_ = n;
    stop_ = false;
    // New workers must not mistake the last finished job for a new one.
    const uint64_t current = gen_.load(std::memory_order_acquire);
    for (int t = 1; t < n_; t++) threads_.emplace_back([this, t, current] { Worker(t, current); });
  }

  // Runs fn(t) for every t in [0, Size()); t = 0 runs on the calling thread. Blocks until all return.
  void Run(const std::function<void(int)>& fn) {
    if (n_ == 1) {
      fn(0);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &fn;
      pending_.store(n_ - 1, std::memory_order_relaxed);
      gen_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    fn(0);
    // Kernels are short (tens of microseconds to milliseconds): spin briefly before sleeping.
    for (int i = 0; i < 4000 && pending_.load(std::memory_order_acquire) != 0; i++) Pause();
    if (pending_.load(std::memory_order_acquire) != 0) {
      std::unique_lock<std::mutex> lock(mu_);
      done_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
    }
    job_ = nullptr;
  }

 private:
  static void Pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
  }

  void Worker(int t, uint64_t seen) {
    for (;;) {
      // Spin a little for the next job (kernels come in quick succession during a step), then sleep.
      for (int i = 0; i < 4000 && gen_.load(std::memory_order_acquire) == seen && !stop_.load(); i++) Pause();
      const std::function<void(int)>* job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_.load() || gen_.load(std::memory_order_acquire) != seen; });
        if (stop_.load()) return;
        seen = gen_.load(std::memory_order_acquire);
        job = job_;
      }
      (*job)(t);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mu_);
        done_.notify_one();
      }
    }
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& th : threads_) th.join();
    threads_.clear();
  }

  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable done_;
  const std::function<void(int)>* job_ = nullptr;
  std::atomic<uint64_t> gen_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  int n_ = 0;
};

ThreadPool& Pool();

// Splits [0, n) into one contiguous range per thread and runs fn(begin, end) on each.
// Ranges smaller than `grain` items are merged so tiny kernels stay on one thread.
inline void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  ThreadPool& pool = Pool();
  const int64_t maxThreads = std::max<int64_t>(1, n / std::max<int64_t>(1, grain));
  const int64_t T = std::min<int64_t>(pool.Size(), maxThreads);
  if (T <= 1) {
    fn(0, n);
    return;
  }
  pool.Run([&](int t) {
    if (t >= T) return;
    const int64_t begin = n * t / T;
    const int64_t end = n * (t + 1) / T;
    if (begin < end) fn(begin, end);
  });
}

}  // namespace tessera
