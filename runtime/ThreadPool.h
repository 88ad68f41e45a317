// runtime/ThreadPool.h - a small persistent pool for the CPU step's kernels.
//
// The step launches a handful of parallel loops per call, so threads are
// started once and woken per loop; the calling thread takes part in the
// work. Tasks are handed out by an atomic counter, so uneven tasks balance.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace graphc::runtime {

class ThreadPool {
public:
  /// `threads` workers in all, the caller included; 0 means one per core.
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  int size() const { return int(workers_.size()) + 1; }

  /// Runs fn(task, thread) for task in [0, tasks) and returns when all are done.
  void run(int64_t tasks, const std::function<void(int64_t, int)> &fn);

private:
  void work(int thread);
  void drain(int thread);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t, int)> *fn_ = nullptr;
  int64_t tasks_ = 0;
  std::atomic<int64_t> next_{0};
  int busy_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

} // namespace graphc::runtime
