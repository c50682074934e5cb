#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/run_state.hpp: the state one run shares between its workers: first error, stop.

#include <plumb/error.hpp>
#include <plumb/worker.hpp>

#include <fmt/format.h>

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

// Thrown inside a worker to unwind it once the run is stopping (another worker failed, the run
// was cancelled or timed out). Not derived from std::exception so that a stage's
// `catch (const std::exception&)` does not swallow it. Never reported as the run's error.
struct Stopped {};

// "stage 2 ('parse')" for a named stage, "stage 2" for one that kept its default name.
inline std::string describe_stage(std::size_t index, std::string_view name) {
  if (name == fmt::format("stage {}", index)) return fmt::format("stage {}", index);
  return fmt::format("stage {} ('{}')", index, name);
}

inline std::string describe_exception(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& exception) {
    return exception.what();
  } catch (...) {
    return "an exception of a type not derived from std::exception";
  }
}

// The first error of a run and the stop flag every worker polls.
//
// Invariants:
//   I1: error_ is set at most once per run, under mutex_; the first caller of fail() wins.
//   I2: stopping_ goes false -> true once, never back; it is true whenever error_ is set.
// Written by: any worker thread (fail), the stop_token callback (fail), the supervisor (fail).
class RunState {
 public:
  RunState() = default;
  RunState(const RunState&) = delete;
  RunState& operator=(const RunState&) = delete;

  // Polled per packet. Relaxed is enough: the flag only decides whether to unwind; the error
  // object itself is read under mutex_ (or after the workers are joined, which synchronizes).
  [[nodiscard]] bool stopping() const noexcept { return stopping_.load(std::memory_order_relaxed); }

  // Records `error` as the run's error if none was recorded yet (I1), starts stopping (I2) and
  // wakes every blocked link operation. Returns true if this call was the first.
  bool fail(std::exception_ptr error, std::optional<Failure> failure) {
    std::lock_guard lock(mutex_);
    if (error_) return false;
    error_ = std::move(error);
    failure_ = std::move(failure);
    // Relaxed: the wakers below publish it; each bumps an Event epoch with release, which a
    // waiter reads with acquire before it re-checks stopping() (wait.hpp, E3).
    stopping_.store(true, std::memory_order_relaxed);
    for (const auto& wake : wakers_) wake();
    return true;
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
  std::atomic<bool> stopping_{false};
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

}  // namespace plumb::detail
