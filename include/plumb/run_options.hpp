#pragma once
// SPDX-License-Identifier: MIT
// plumb/run_options.hpp: Mode and RunOptions.

#include <chrono>
#include <cstddef>
#include <functional>
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

/// Which thread may run a worker of a thread-mode stage (see the guide, "What runs where").
enum class Scheduling {
  /// Each worker has a thread of its own ("home"), which runs its set-up and every packet of
  /// an expensive or blocking stage. A cheap worker whose packets the next stage waits for may
  /// instead be run by that stage's thread (never by two threads at once), so that cheap stages
  /// pay no wake-up per packet. `.pinned()` stages, `.ordered()` stages and stages whose output
  /// crosses a process boundary always run on their own threads.
  adaptive,
  /// Every worker runs only on its own thread, as in a pipeline of plain threads: for code that
  /// depends on its thread (`thread_local` state, thread-affine handles) throughout a run.
  pinned,
};

class Stats;

/// How `Pipeline::run()` runs. An aggregate, so designated initializers work:
/// `pipeline.run({.mode = plumb::Mode::process, .inactivity_timeout = std::chrono::seconds(30)})`.
struct RunOptions {
  /// The mode of every stage that does not set its own with `.mode()`.
  Mode mode = Mode::thread;
  /// If no packet moves on any link for this long, `run()` throws `InactivityError`. Zero: off.
  /// In sequential mode the gap is checked when a packet moves (one thread cannot interrupt a
  /// stage body that never returns).
  std::chrono::steady_clock::duration inactivity_timeout = std::chrono::steady_clock::duration::zero();
  /// After the first error, how long worker processes get to stop on their own before they are
  /// killed (all at once). After an `InactivityError` (the workers are stuck) at most 200 ms.
  /// Thread workers cannot be killed: once this is over, plumb says on stderr which ones
  /// `run()` still waits for.
  std::chrono::steady_clock::duration grace_period = std::chrono::seconds(5);
  /// Requesting stop on the matching `std::stop_source` makes `run()` stop every stage and throw
  /// `CancelledError`.
  std::stop_token stop_token{};
  /// Called every `progress_interval` with a snapshot of the run's statistics (plumb/stats.hpp),
  /// and once more when the run completes (`Stats::finished` set), from the supervising thread:
  /// the thread that called `run()` (in sequential mode: between packets), or a helper thread
  /// while the calling thread runs a sequential source in a threaded run. If it throws, that
  /// exception becomes the run's error. `plumb::ProgressLine` (plumb/progress.hpp) is a
  /// ready-made one: a status line on the terminal.
  std::function<void(const Stats&)> progress{};
  /// How often `progress` is called.
  std::chrono::steady_clock::duration progress_interval = std::chrono::seconds(1);
  /// Measure busy, starved and blocked time per worker (`Pipeline::last_stats()`). The cost is
  /// two clock reads each time a worker has to wait on a link (a wait costs far more), and a
  /// timed sample of about one packet in 1000 inside runs of fused stages. Off: only packets
  /// are counted.
  bool timing = true;
  /// Which thread may run a worker (see `Scheduling`); `.pinned()` pins a single stage.
  Scheduling scheduling = Scheduling::adaptive;
  /// The least `max_message_size` of every stage, in bytes: a link that crosses a process
  /// boundary has slots of the larger of this and its stage's own `.max_message_size()` (which
  /// is 128 KiB unless set), and so does a sink's value returned from a worker process. One
  /// setting for a pipeline whose packets are all large. Zero: each stage's own.
  std::size_t max_message_size = 0;
};

}  // namespace plumb
