#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/monitor.hpp: progress reports and the inactivity timeout of one run.

#include <plumb/detail/run_state.hpp>
#include <plumb/error.hpp>
#include <plumb/run_options.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <vector>

namespace plumb::detail {

inline std::string format_seconds(std::chrono::steady_clock::duration duration) {
  return fmt::format("{:.3f} s", std::chrono::duration<double>(duration).count());
}

// Packets produced per stage, one counter block per worker. Each counter has one writer (the
// worker that owns the block); readers sum the blocks.
//
// The counters live in the caller's heap, or in the run's shared mapping when workers run in
// processes (so that the caller's monitor sees their packets too).
class PacketCounters {
 public:
  // Bytes of external memory for `workers` x `stages` counters.
  static std::size_t bytes_for(std::size_t workers, std::size_t stages) noexcept {
    return workers * stages * sizeof(std::atomic<std::uint64_t>);
  }

  // Counters in the caller's heap.
  PacketCounters(std::size_t workers, std::size_t stages)
      : stages_(stages),
        count_(workers * stages),
        owned_(std::make_unique<std::atomic<std::uint64_t>[]>(count_)),
        counters_(owned_.get()) {}

  // Counters in `memory` (bytes_for(workers, stages) bytes, zeroed: a fresh mapping).
  PacketCounters(std::size_t workers, std::size_t stages, std::byte* memory) noexcept
      : stages_(stages), count_(workers * stages), counters_(construct(memory, count_)) {}

  [[nodiscard]] std::atomic<std::uint64_t>* block(std::size_t worker) noexcept {
    return counters_ + worker * stages_;
  }

  // One writer per counter, so load + store is enough (no read-modify-write needed); relaxed
  // because readers only need an eventually-current total.
  static void increment(std::atomic<std::uint64_t>& counter) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  // Sums every block into `totals` (size: stages). Racy while workers run: best effort.
  void snapshot_approx(std::span<std::uint64_t> totals) const noexcept {
    std::fill(totals.begin(), totals.end(), 0);
    for (std::size_t i = 0; i < count_; ++i) {
      totals[i % stages_] += counters_[i].load(std::memory_order_relaxed);  // best effort
    }
  }

 private:
  static std::atomic<std::uint64_t>* construct(std::byte* memory, std::size_t count) noexcept {
    for (std::size_t i = 0; i < count; ++i) {
      new (memory + i * sizeof(std::atomic<std::uint64_t>)) std::atomic<std::uint64_t>(0);
    }
    return std::launder(reinterpret_cast<std::atomic<std::uint64_t>*>(memory));
  }

  std::size_t stages_;
  std::size_t count_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> owned_;
  std::atomic<std::uint64_t>* counters_;
};

// Calls the progress callback every progress_interval, and raises InactivityError when no packet
// moved for inactivity_timeout. In sequential mode it is driven by on_packet() from the pulling
// thread; it is only created when one of the two features is on.
class Monitor {
 public:
  using Clock = std::chrono::steady_clock;

  Monitor(const RunOptions& options, RunState& state, const PacketCounters& counters,
          std::size_t producing_stages)
      : options_(options),
        state_(state),
        counters_(counters),
        totals_(producing_stages),
        start_(Clock::now()),
        last_activity_(start_),
        next_report_(start_ + options.progress_interval) {}

  [[nodiscard]] static bool wanted(const RunOptions& options) noexcept {
    return options.inactivity_timeout > Clock::duration::zero() ||
           static_cast<bool>(options.progress);
  }

  // Sequential mode: a packet just moved. Throws Stopped after recording an InactivityError
  // when the gap since the previous packet exceeded the timeout.
  void on_packet() {
    const auto now = Clock::now();
    const auto timeout = options_.inactivity_timeout;
    if (timeout > Clock::duration::zero() && now - last_activity_ > timeout) {
      state_.fail(std::make_exception_ptr(inactivity_error(now - last_activity_)), std::nullopt);
      throw Stopped{};
    }
    last_activity_ = now;
    if (options_.progress && now >= next_report_) report(now, false);
  }

  // Thread mode: called by the supervising thread every tick(). Records an InactivityError when
  // no counter moved for the timeout.
  void poll() {
    const auto now = Clock::now();
    counters_.snapshot_approx(totals_);
    std::uint64_t moved = 0;
    for (const std::uint64_t count : totals_) moved += count;
    if (moved != last_moved_) {
      last_moved_ = moved;
      last_activity_ = now;
    } else if (options_.inactivity_timeout > Clock::duration::zero() &&
               now - last_activity_ > options_.inactivity_timeout) {
      state_.fail(std::make_exception_ptr(inactivity_error(now - last_activity_)), std::nullopt);
      return;
    }
    if (options_.progress && now >= next_report_) report(now, false);
  }

  // How often poll() should run: often enough for both features, at most every 100 ms.
  [[nodiscard]] Clock::duration tick() const noexcept {
    Clock::duration tick = std::chrono::milliseconds(100);
    if (options_.inactivity_timeout > Clock::duration::zero()) {
      tick = std::min(tick, options_.inactivity_timeout / 8);
    }
    if (options_.progress) tick = std::min(tick, options_.progress_interval);
    return std::max<Clock::duration>(tick, std::chrono::milliseconds(1));
  }

  // The run completed: the last report.
  void report_finished() {
    if (options_.progress) report(Clock::now(), true);
  }

  [[nodiscard]] InactivityError inactivity_error(Clock::duration idle) const {
    return InactivityError(fmt::format(
        "plumb.inactivity_error: no packet moved on any link for {} (inactivity_timeout is {}); "
        "raise RunOptions::inactivity_timeout if a stage legitimately takes longer",
        format_seconds(idle), format_seconds(options_.inactivity_timeout)));
  }

 private:
  void report(Clock::time_point now, bool finished) {
    counters_.snapshot_approx(totals_);
    options_.progress(Progress{now - start_, totals_, finished});
    next_report_ = now + options_.progress_interval;
  }

  const RunOptions& options_;
  RunState& state_;
  const PacketCounters& counters_;
  std::vector<std::uint64_t> totals_;
  Clock::time_point start_;
  Clock::time_point last_activity_;
  Clock::time_point next_report_;
  std::uint64_t last_moved_ = 0;
};

}  // namespace plumb::detail
