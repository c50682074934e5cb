#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/run/run_state.hpp: the state one run shares between its workers: first error, stop.

#include <plumb/error.hpp>
#include <plumb/detail/core/describe.hpp>
#include <plumb/detail/run/remote_error.hpp>
#include <plumb/detail/run/shared_memory.hpp>
#include <plumb/detail/sync/stop_flag.hpp>
#include <plumb/worker.hpp>

#include <atomic>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

namespace plumb::detail {

// The first error of a run and the stop flag every worker polls.
//
// Invariants:
//   I1: error_ is set at most once per run, under mutex_; the first caller of fail() wins.
//   I2: the stop word goes 0 -> 1 once, never back; it is 1 whenever error_ is set. In a run
//       with worker processes it lives in shared memory and any process may set it.
// Written by: any worker thread (fail), the stop_token callback (fail), the supervisor (fail).
class RunState {
 public:
  RunState() = default;
  RunState(const RunState&) = delete;
  RunState& operator=(const RunState&) = delete;

  // Polled per packet. Relaxed is enough: the flag only decides whether to unwind; the error
  // object itself is read under mutex_ (or after the workers are joined, which synchronizes).
  [[nodiscard]] bool stopping() const noexcept {
    return stop_word_->load(std::memory_order_relaxed) != 0;
  }
  // The word stopping() reads, for links and gates. It moves in share(), before any worker
  // starts: take the flag after that.
  [[nodiscard]] StopFlag stop_flag() const noexcept { return StopFlag(*stop_word_); }

  // A run with worker processes: the stop flag and the first-error claim live in shared memory
  // from now on. Call before the first fork.
  void share(SharedControl& control) noexcept {
    stop_word_ = &control.stop;
    shared_failure_ = &control.failure;
  }

  // In a worker process, right after fork(): fail() now writes the error into shared memory
  // for the caller to rebuild.
  void become_worker_process() noexcept { in_worker_process_ = true; }

  // The caller, after a worker process reported the run's error (claimed in shared memory):
  // installs the rebuilt exception and stops the rest.
  void adopt(std::exception_ptr error, std::optional<Failure> failure) {
    std::lock_guard lock(mutex_);
    if (!error_) {
      error_ = std::move(error);
      failure_ = std::move(failure);
    }
    stop_locked();
  }

  // Records `error` as the run's error if none was recorded yet (I1), starts stopping (I2) and
  // wakes every blocked link operation. Returns true if this call was the first.
  bool fail(std::exception_ptr error, std::optional<Failure> failure) {
    std::lock_guard lock(mutex_);
    if (error_) return false;
    if (shared_failure_ != nullptr) {
      // Across processes the first error is decided in shared memory (I1 for the whole run).
      if (!shared_failure_->claim()) {
        stop_locked();  // another process's error won; it has stopped the run already
        return false;
      }
      if (in_worker_process_) write_remote(*shared_failure_, error, failure);
      shared_failure_->publish();
    }
    error_ = std::move(error);
    failure_ = std::move(failure);
    stop_locked();
    return true;
  }

  // The caller's supervisor, once it sees the run stopping (possibly because a worker process
  // set the shared stop word): wakes this process's own links, whose futexes only this process
  // can wake.
  void wake_local() {
    std::lock_guard lock(mutex_);
    stop_locked();
  }

  // Whether some process (this one included) claimed the run's first error.
  [[nodiscard]] bool failed_anywhere() const noexcept {
    return shared_failure_ != nullptr ? shared_failure_->state.load(std::memory_order_acquire) != 0
                                      : stopping();
  }

  // Registers what fail() must wake (a link's events). Call before the workers start.
  void on_stop(std::function<void()> wake) {
    std::lock_guard lock(mutex_);
    wakers_.push_back(std::move(wake));
  }

  // Forgets every waker; call before what they wake is destroyed. A stop request can still
  // arrive (through the stop_token) after the links are gone; fail() runs the wakers under
  // mutex_, so after this returns none can touch a destroyed link.
  void clear_wakers() noexcept {
    std::lock_guard lock(mutex_);
    wakers_.clear();
  }

  // The recorded error, or null. Call after the workers are joined.
  [[nodiscard]] std::exception_ptr error() const {
    std::lock_guard lock(mutex_);
    return error_;
  }
  [[nodiscard]] std::optional<Failure> failure() const {
    std::lock_guard lock(mutex_);
    return failure_;
  }

 private:
  void stop_locked() noexcept {
    // Relaxed: the wakers below publish it; each bumps an Event epoch with release, which a
    // waiter reads with acquire before it re-checks stopping() (wait.hpp, E3).
    stop_word_->store(1, std::memory_order_relaxed);
    for (const auto& wake : wakers_) wake();
  }

  std::atomic<std::uint32_t> local_stop_{0};
  std::atomic<std::uint32_t>* stop_word_ = &local_stop_;  // local_stop_, or the shared one (I2)
  SharedFailure* shared_failure_ = nullptr;
  bool in_worker_process_ = false;
  mutable std::mutex mutex_;
  std::exception_ptr error_;          // I1
  std::optional<Failure> failure_;    // recorded with error_
  std::vector<std::function<void()>> wakers_;
};

// The failure report of `error`, raised by the worker `info`.
inline Failure make_failure(const WorkerInfo& info, const std::exception_ptr& error) {
  return Failure{info.stage_index, info.stage_name, info.index,
                 describe_exception(error)};
}

// The marker error of a stream the caller closed before its end (Pipeline::stream(),
// Graph::stream()): it stops the run like any error and never reaches the caller.
struct StreamClosed {};

// The callback of a run's std::stop_callback on RunOptions::stop_token: fails the run with
// CancelledError (held by the runner while the run is in progress).
struct CancelRun {
  RunState* state;
  void operator()() const {
    state->fail(std::make_exception_ptr(
                    CancelledError("plumb.cancelled: the run was cancelled through RunOptions::stop_token")),
                std::nullopt);
  }
};

}  // namespace plumb::detail
