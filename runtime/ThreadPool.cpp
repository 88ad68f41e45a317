// runtime/ThreadPool.cpp - wake, share tasks through a counter, wait.
#include "runtime/ThreadPool.h"

namespace graphc::runtime {

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0)
    threads = int(std::max(1u, std::thread::hardware_concurrency()));
  for (int t = 1; t < threads; ++t)
    workers_.emplace_back([this, t] { work(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto &w : workers_)
    w.join();
}

void ThreadPool::drain(int thread) {
  for (int64_t t; (t = next_.fetch_add(1)) < tasks_;)
    (*fn_)(t, thread);
}

void ThreadPool::work(int thread) {
  uint64_t seen = 0;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_)
        return;
      seen = generation_;
    }
    drain(thread);
    std::lock_guard<std::mutex> lock(mu_);
    if (--busy_ == 0)
      done_.notify_one();
  }
}

void ThreadPool::run(int64_t tasks, const std::function<void(int64_t, int)> &fn) {
  if (tasks <= 0)
    return;
  if (workers_.empty() || tasks == 1) {
    for (int64_t t = 0; t < tasks; ++t)
      fn(t, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    tasks_ = tasks;
    next_ = 0;
    busy_ = int(workers_.size());
    ++generation_;
  }
  wake_.notify_all();
  drain(0);
  std::unique_lock<std::mutex> lock(mu_);
  done_.wait(lock, [&] { return busy_ == 0; });
}

} // namespace graphc::runtime
