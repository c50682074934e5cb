#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/exec/thread_executor.hpp: ThreadExecutor, which runs workers as threads of the
// calling process (and counts the calling thread while it works as one).

#include <plumb/detail/exec/done_signal.hpp>
#include <plumb/detail/exec/executor.hpp>
#include <plumb/detail/run/run_state.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

namespace plumb::detail {

// Invariant T1: running_ counts the threads started and not yet ended, plus the calling thread
//   while it works as a worker (enter() .. leave()); it changes under mutex_ only.
// Each end is signalled on the run's DoneSignal after the count went down, so a supervisor
// that saw a non-zero count before its poll() is woken.
class ThreadExecutor final : public Executor {
 public:
  ThreadExecutor(RunState& state, const DoneSignal& done) noexcept : state_(state), done_(done) {}
  ~ThreadExecutor() { join(); }

  // Starts `count` threads, the i-th running `work(i)` (noexcept). A thread that cannot start
  // becomes the run's error; those that started run on.
  template <class Work>
  void start(std::size_t count, Work work) noexcept {
    {
      std::lock_guard lock(mutex_);
      running_ += count;
    }
    std::size_t started = 0;
    try {
      threads_.reserve(threads_.size() + count);
      for (; started < count; ++started) {
        threads_.emplace_back([this, work, started]() noexcept {
          work(started);
          leave();
        });
      }
    } catch (...) {
      state_.fail(std::current_exception(), std::nullopt);
      std::lock_guard lock(mutex_);
      running_ -= count - started;  // never started: counted as ended
    }
  }

  // The calling thread works as a worker from now until leave().
  void enter() noexcept {
    std::lock_guard lock(mutex_);
    ++running_;
  }
  // A worker (a thread of this executor, or the calling thread) ended.
  void leave() noexcept {
    {
      std::lock_guard lock(mutex_);
      --running_;
    }
    done_.notify();
  }

  // Once collect() returned false.
  void join() noexcept {
    for (std::thread& thread : threads_) thread.join();
    threads_.clear();
  }

  bool collect() noexcept override {
    std::lock_guard lock(mutex_);
    return running_ != 0;
  }
  std::chrono::milliseconds wait_on(std::vector<pollfd>& /*fds*/) const override {
    return std::chrono::milliseconds::max();  // the DoneSignal wakes the supervisor
  }
  void kill_now() noexcept override {}

 private:
  RunState& state_;
  const DoneSignal& done_;
  std::mutex mutex_;
  std::size_t running_ = 0;  // T1
  std::vector<std::thread> threads_;
};

}  // namespace plumb::detail
