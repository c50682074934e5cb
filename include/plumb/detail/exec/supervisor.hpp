#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/exec/supervisor.hpp: the one loop that watches a run until every worker ended:
// it drives the monitor, notices each worker's end at once, and ends what still runs once the
// grace period after the first error has passed.

#include <plumb/detail/core/deadline.hpp>
#include <plumb/detail/exec/done_signal.hpp>
#include <plumb/detail/exec/executor.hpp>
#include <plumb/detail/run/monitor.hpp>
#include <plumb/detail/run/run_state.hpp>

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <optional>
#include <span>
#include <vector>

namespace plumb::detail {

// What the supervisor also checks every period() while a run goes on (the Runner's: lent
// workers that stall, links.hpp).
class Watch {
 public:
  [[nodiscard]] virtual std::chrono::milliseconds period() const noexcept = 0;
  virtual void check() noexcept = 0;

 protected:
  Watch() = default;
  ~Watch() = default;
  Watch(const Watch&) = default;
  Watch& operator=(const Watch&) = default;
};

// After an InactivityError the workers are stuck by definition: worker processes get at most
// this long to end on their own (a worker blocked on a link ends at once) before all are killed,
// whatever RunOptions::grace_period.
inline constexpr std::chrono::milliseconds kInactivityGrace{200};

// After the kill, what run() still waits for: thread workers inside their own code (a thread
// cannot be interrupted). Said once on stderr, naming them, since the caller is blocked in run().
inline void report_stuck_threads(const Monitor& monitor, std::chrono::steady_clock::duration waited) {
  const Stats stats = monitor.snapshot(false);
  std::string stuck;
  std::size_t count = 0;
  for (std::size_t i = 0; i < stats.stages.size(); ++i) {
    const StageStats& stage = stats.stages[i];
    for (std::size_t w = 0; w < stage.per_worker.size(); ++w) {
      if (!stage.per_worker[w].running || stage.mode == Mode::process) continue;
      if (count++ < 8) detail::format_to(stuck, "{}stage {} ('{}') worker {}", stuck.empty() ? "" : ", ", i, stage.name, w);
    }
  }
  if (count == 0) return;
  if (count > 8) detail::format_to(stuck, " and {} more", count - 8);
  const std::string line = detail::format(
      "plumb: the run stopped {} ago and run() still waits for {} thread worker(s) that have not "
      "ended: {}. One of them is inside its own code (or in a step another of them runs for it); a "
      "thread cannot be interrupted: run() returns when that code returns to plumb (run code "
      "that may hang in Mode::process, where it is killed)\n",
      format_seconds(waited), count, stuck);
  std::fputs(line.c_str(), stderr);
}

// Returns once no executor has a worker running. Never throws: a failing monitor (the user's
// progress callback) becomes the run's error, and the loop goes on without it.
//
// Wake-ups: a worker thread's end (DoneSignal), a worker process's end (its pidfd), the
// monitor's next tick, the end of the grace period; at most 100 ms apart otherwise.
inline void supervise(std::span<Executor* const> executors, const DoneSignal& done,
                      Monitor& monitor, RunState& state,
                      std::chrono::steady_clock::duration grace_period, Watch* watch = nullptr) noexcept {
  using Clock = std::chrono::steady_clock;
  using std::chrono::milliseconds;
  std::optional<Clock::time_point> kill_at;
  std::optional<Clock::time_point> stopped_at;
  bool killed = false;
  bool reported = false;
  bool monitoring = true;  // until the progress callback throws
  std::vector<pollfd> fds;
  Clock::time_point next_watch = Clock::now();
  for (;;) {
    bool running = false;
    for (Executor* executor : executors) running = executor->collect() || running;
    if (!running) return;
    if (state.stopping() && !kill_at) {
      // A worker process may have set the shared stop word: wake this process's own links
      // too (their futexes are private to it).
      try {
        state.wake_local();
      } catch (...) {
      }
      stopped_at = Clock::now();
      const auto grace = monitor.timed_out() ? std::min<Clock::duration>(grace_period, kInactivityGrace) : grace_period;
      kill_at = later_by(*stopped_at, grace);  // saturated: max() never kills
    }
    if (kill_at && !killed && Clock::now() >= *kill_at) {
      killed = true;
      for (Executor* executor : executors) executor->kill_now();
    }
    // Killed processes are gone within a poll or two; what runs a moment later is a thread.
    if (killed && !reported && Clock::now() >= *kill_at + kInactivityGrace) {
      reported = true;
      try {
        report_stuck_threads(monitor, Clock::now() - *stopped_at);
      } catch (...) {
      }
    }

    auto timeout = milliseconds(100);
    // Rounded up: a tick due in under a millisecond must not become a poll() that returns at once.
    if (monitoring) timeout = std::min(timeout, std::chrono::ceil<milliseconds>(monitor.tick()));
    if (watch != nullptr) {
      const Clock::time_point now = Clock::now();
      if (now >= next_watch) {
        watch->check();
        next_watch = now + watch->period();
      }
      timeout = std::min(timeout, std::chrono::ceil<milliseconds>(next_watch - now));
    }
    if (kill_at && (!killed || !reported)) {
      const Clock::time_point due = killed ? *kill_at + kInactivityGrace : *kill_at;
      const auto left = std::chrono::duration_cast<milliseconds>(due - Clock::now());
      timeout = std::clamp(left + milliseconds(1), milliseconds(0), timeout);
    }
    fds.clear();
    fds.push_back(pollfd{done.fd(), POLLIN, 0});
    for (Executor* executor : executors) timeout = std::min(timeout, executor->wait_on(fds));
    ::poll(fds.data(), fds.size(), static_cast<int>(timeout.count()));
    done.drain();

    if (monitoring) {
      try {
        monitor.poll();
      } catch (...) {
        state.fail(std::current_exception(), std::nullopt);
        monitoring = false;
      }
    }
  }
}

}  // namespace plumb::detail
