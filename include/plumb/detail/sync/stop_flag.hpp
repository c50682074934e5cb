#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/sync/stop_flag.hpp: StopFlag, the one thing a link or a gate reads of its run: whether
// the run is stopping. And Stopped, which unwinds a worker once it is.

#include <atomic>
#include <cstdint>

namespace plumb::detail {

// Thrown inside a worker to unwind it once the run is stopping (another worker failed, the run
// was cancelled or timed out). Not derived from std::exception so that a stage's
// `catch (const std::exception&)` does not swallow it. Never reported as the run's error.
struct Stopped {};

// A view of a run's stop word: 0 while the run goes on, 1 once it stops (never back). The word
// belongs to the run (RunState), in heap memory or, with worker processes, in the run's shared
// mapping; a StopFlag is a pointer to it, cheap to copy, valid while the run's state is.
//
// Memory order: stopping() is a relaxed load. The flag only decides whether to unwind; whoever
// sets it publishes it to waiters by bumping an Event epoch with release (wait.hpp, E3), and a
// waiter re-checks the flag after its acquire load of the epoch.
class StopFlag {
 public:
  explicit StopFlag(const std::atomic<std::uint32_t>& word) noexcept : word_(&word) {}

  [[nodiscard]] bool stopping() const noexcept {
    return word_->load(std::memory_order_relaxed) != 0;
  }
  // Throws Stopped once the run is stopping.
  void check() const {
    if (stopping()) throw Stopped{};
  }
  [[nodiscard]] const std::atomic<std::uint32_t>& word() const noexcept { return *word_; }

 private:
  const std::atomic<std::uint32_t>* word_;
};

}  // namespace plumb::detail
