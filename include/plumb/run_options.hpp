#pragma once
// SPDX-License-Identifier: MIT
// plumb/run_options.hpp: Mode, RunOptions and the progress report passed to the callback.

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <stop_token>

namespace plumb {

/// Where the workers of a stage run.
enum class Mode {
  /// In the calling thread, chained (the whole pipeline), or fused into the workers of the
  /// previous stage (one stage marked with `.mode(Mode::sequential)`).
  sequential,
  /// Each worker is a thread of the calling process (the default).
  thread,
  /// Each worker is a forked process.
  process,
};

/// A snapshot of a run's progress, passed to `RunOptions::progress`.
struct Progress {
  /// Time since the run started.
  std::chrono::steady_clock::duration elapsed{};
  /// `packets[i]`: packets stage i has produced so far (one entry per stage except the sink).
  std::span<const std::uint64_t> packets;
  /// True for the last report of a run that completed.
  bool finished = false;
};

/// How `Pipeline::run()` runs; an aggregate, so designated initializers work:
/// `pipeline.run({.mode = plumb::Mode::process, .inactivity_timeout = std::chrono::seconds(30)})`.
struct RunOptions {
  /// The mode of every stage that does not set its own with `.mode()`.
  Mode mode = Mode::thread;
  /// If no packet moves on any link for this long, `run()` throws `InactivityError`. Zero: off.
  /// In sequential mode the gap is checked when a packet moves (one thread cannot interrupt a
  /// stage body that never returns).
  std::chrono::steady_clock::duration inactivity_timeout = std::chrono::steady_clock::duration::zero();
  /// After the first error, how long worker processes get to stop on their own before they are
  /// killed (all at once).
  std::chrono::steady_clock::duration grace_period = std::chrono::seconds(5);
  /// Requesting stop on the matching `std::stop_source` makes `run()` stop every stage and throw
  /// `CancelledError`.
  std::stop_token stop_token{};
  /// Called every `progress_interval` and once when the run completes, from the supervising
  /// thread: the thread that called `run()` (in sequential mode: between packets), or a helper
  /// thread while the calling thread runs a sequential source in a threaded run. If it throws,
  /// that exception becomes the run's error.
  std::function<void(const Progress&)> progress{};
  /// How often `progress` is called.
  std::chrono::steady_clock::duration progress_interval = std::chrono::seconds(1);
};

}  // namespace plumb
